import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isSealed, keyIdOf, SecretBox, SecretOpenError } from './secret-box.ts';

describe('SecretBox', () => {
  const key = randomBytes(32);
  const box = new SecretBox([key]);

  it('opens what it sealed, for the same owner, and seals the same secret differently every time', () => {
    const sealed = box.seal('whsec_the-secret', 'webhook:wh_1');
    assert.ok(isSealed(sealed));
    assert.ok(!sealed.includes('the-secret'));
    assert.equal(box.open(sealed, 'webhook:wh_1'), 'whsec_the-secret');
    assert.notEqual(box.seal('whsec_the-secret', 'webhook:wh_1'), sealed);
  });

  it('refuses a sealed value moved to another owner, tampered with, or sealed under an unknown key', () => {
    const sealed = box.seal('whsec_the-secret', 'webhook:wh_1');
    assert.throws(() => box.open(sealed, 'webhook:wh_2'), SecretOpenError);
    const parts = sealed.split(':');
    const body = Buffer.from(parts[4]!, 'base64url');
    body[0]! ^= 1;
    assert.throws(() => box.open([...parts.slice(0, 4), body.toString('base64url')].join(':'), 'webhook:wh_1'), SecretOpenError);
    assert.throws(() => new SecretBox([randomBytes(32)]).open(sealed, 'webhook:wh_1'), /which this server does not have/);
    assert.throws(() => box.open('plain text', 'webhook:wh_1'), SecretOpenError);
    assert.throws(() => box.open('grove-sealed:v1:abc', 'webhook:wh_1'), /malformed/);
  });

  it('names the sealing key, opens values of older keys after a rotation and says which need re-sealing', () => {
    const sealed = box.seal('s', 'o');
    assert.equal(sealed.split(':')[2], keyIdOf(key));
    const rotated = new SecretBox([randomBytes(32), key]);
    assert.equal(rotated.open(sealed, 'o'), 's');
    assert.equal(rotated.needsReseal(sealed), true);
    assert.equal(rotated.needsReseal(rotated.seal('s', 'o')), false);
  });

  it('accepts only 32-byte keys', () => {
    assert.throws(() => new SecretBox([randomBytes(16)]), /32 bytes/);
    assert.throws(() => new SecretBox([]), /needs a key/);
  });
});
