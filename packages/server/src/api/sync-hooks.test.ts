import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { verifyDelivery } from './sync-hooks.ts';

const SECRET = 'whsec_3q2-7w9xYzAbCdEfGhIjKlMnOpQrStUv';
const BODY = Buffer.from(JSON.stringify({ ref: 'refs/heads/main', after: 'a'.repeat(40), repository: { full_name: 'acme/app' } }));
const hmac = (secret: string, body: Buffer): string => createHmac('sha256', secret).update(body).digest('hex');

describe('verifyDelivery', () => {
  describe('GitHub (X-Hub-Signature-256)', () => {
    it('accepts sha256=<hex HMAC> of the body under the secret', () => {
      assert.equal(verifyDelivery({ 'x-hub-signature-256': `sha256=${hmac(SECRET, BODY)}`, 'x-github-event': 'push' }, BODY, SECRET), true);
    });

    it('refuses a signature made with another secret', () => {
      assert.equal(verifyDelivery({ 'x-hub-signature-256': `sha256=${hmac('whsec_other', BODY)}` }, BODY, SECRET), false);
    });

    it('refuses a body changed after it was signed', () => {
      const tampered = Buffer.from(BODY.toString('utf8').replace('refs/heads/main', 'refs/heads/evil'));
      assert.equal(verifyDelivery({ 'x-hub-signature-256': `sha256=${hmac(SECRET, BODY)}` }, tampered, SECRET), false);
      assert.equal(verifyDelivery({ 'x-hub-signature-256': `sha256=${hmac(SECRET, BODY)}` }, Buffer.concat([BODY, Buffer.from('\n')]), SECRET), false);
    });

    it('refuses the bare hex without the sha256= prefix, and the older sha1= form', () => {
      assert.equal(verifyDelivery({ 'x-hub-signature-256': hmac(SECRET, BODY) }, BODY, SECRET), false);
      assert.equal(verifyDelivery({ 'x-hub-signature-256': `sha1=${createHmac('sha1', SECRET).update(BODY).digest('hex')}` }, BODY, SECRET), false);
    });

    it('refuses a signature of the wrong length without throwing', () => {
      const good = `sha256=${hmac(SECRET, BODY)}`;
      for (const signature of [good.slice(0, -1), `${good}0`, 'sha256=', '']) {
        assert.equal(verifyDelivery({ 'x-hub-signature-256': signature }, BODY, SECRET), false, signature);
      }
    });

    it('refuses an upper-case hex signature (GitHub sends lower case)', () => {
      assert.equal(verifyDelivery({ 'x-hub-signature-256': `sha256=${hmac(SECRET, BODY).toUpperCase()}` }, BODY, SECRET), false);
    });

    it('reads the first value of a repeated header', () => {
      assert.equal(verifyDelivery({ 'x-hub-signature-256': [`sha256=${hmac(SECRET, BODY)}`, 'sha256=00'] }, BODY, SECRET), true);
      assert.equal(verifyDelivery({ 'x-hub-signature-256': ['sha256=00', `sha256=${hmac(SECRET, BODY)}`] }, BODY, SECRET), false);
    });

    it('goes by the GitHub header alone when present: a valid Gitea or GitLab proof beside a bad one does not help', () => {
      assert.equal(verifyDelivery({ 'x-hub-signature-256': 'sha256=00', 'x-gitea-signature': hmac(SECRET, BODY), 'x-gitlab-token': SECRET }, BODY, SECRET), false);
    });
  });

  describe('Gitea (X-Gitea-Signature)', () => {
    it('accepts the hex HMAC of the body under the secret', () => {
      assert.equal(verifyDelivery({ 'x-gitea-signature': hmac(SECRET, BODY), 'x-gitea-event': 'push' }, BODY, SECRET), true);
    });

    it('refuses another secret, a changed body, a prefixed or a truncated signature', () => {
      assert.equal(verifyDelivery({ 'x-gitea-signature': hmac('whsec_other', BODY) }, BODY, SECRET), false);
      assert.equal(verifyDelivery({ 'x-gitea-signature': hmac(SECRET, BODY) }, Buffer.from('{}'), SECRET), false);
      assert.equal(verifyDelivery({ 'x-gitea-signature': `sha256=${hmac(SECRET, BODY)}` }, BODY, SECRET), false);
      assert.equal(verifyDelivery({ 'x-gitea-signature': hmac(SECRET, BODY).slice(0, 32) }, BODY, SECRET), false);
      assert.equal(verifyDelivery({ 'x-gitea-signature': '' }, BODY, SECRET), false);
    });
  });

  describe('GitLab (X-Gitlab-Token)', () => {
    it('accepts the secret itself', () => {
      assert.equal(verifyDelivery({ 'x-gitlab-token': SECRET, 'x-gitlab-event': 'Push Hook' }, BODY, SECRET), true);
    });

    it('accepts the secret whatever the body, since GitLab signs nothing', () => {
      assert.equal(verifyDelivery({ 'x-gitlab-token': SECRET }, Buffer.alloc(0), SECRET), true);
    });

    it('refuses another token, a prefix of the secret, the secret with more after it, and an empty token', () => {
      for (const token of ['whsec_other', SECRET.slice(0, -1), `${SECRET}x`, '', SECRET.toUpperCase()]) {
        assert.equal(verifyDelivery({ 'x-gitlab-token': token }, BODY, SECRET), false, token);
      }
    });

    it('refuses an HMAC in place of the token', () => {
      assert.equal(verifyDelivery({ 'x-gitlab-token': hmac(SECRET, BODY) }, BODY, SECRET), false);
    });
  });

  it('refuses a delivery with no proof at all', () => {
    assert.equal(verifyDelivery({}, BODY, SECRET), false);
    assert.equal(verifyDelivery({ 'x-github-event': 'push', 'content-type': 'application/json' }, BODY, SECRET), false);
    assert.equal(verifyDelivery({ 'x-hub-signature': `sha1=${createHmac('sha1', SECRET).update(BODY).digest('hex')}` }, BODY, SECRET), false);
    assert.equal(verifyDelivery({ 'x-hub-signature-256': undefined }, BODY, SECRET), false);
  });

  it('signs over the bytes as sent, not their decoding', () => {
    const body = Buffer.from([0x7b, 0x22, 0x78, 0x22, 0x3a, 0x22, 0xc3, 0xa9, 0x22, 0x7d]); // {"x":"é"}
    const reencoded = Buffer.from(JSON.stringify({ x: '\u00e9' }).replace('\u00e9', '\\u00e9'));
    assert.equal(verifyDelivery({ 'x-hub-signature-256': `sha256=${hmac(SECRET, body)}` }, body, SECRET), true);
    assert.equal(verifyDelivery({ 'x-hub-signature-256': `sha256=${hmac(SECRET, body)}` }, reencoded, SECRET), false);
  });

  it('accepts exactly the deliveries signed with the secret, for every forge (property)', () => {
    const forge = fc.constantFrom('github', 'gitea', 'gitlab');
    const secret = fc.string({ minLength: 16, maxLength: 48 });
    fc.assert(fc.property(forge, fc.uint8Array({ maxLength: 200 }), secret, secret, (f, bytes, right, signedWith) => {
      const body = Buffer.from(bytes);
      const headers = f === 'github' ? { 'x-hub-signature-256': `sha256=${hmac(signedWith, body)}` } : f === 'gitea' ? { 'x-gitea-signature': hmac(signedWith, body) } : { 'x-gitlab-token': signedWith };
      assert.equal(verifyDelivery(headers, body, right), right === signedWith || (f !== 'gitlab' && hmac(right, body) === hmac(signedWith, body)));
    }), { numRuns: 300 });
  });
});
