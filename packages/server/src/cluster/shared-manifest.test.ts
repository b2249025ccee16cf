import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chunksToUpload, decodeSharedManifest, encodeSharedManifest, sharedManifestSize } from './shared-manifest.ts';

const hash = (n: number) => n.toString(16).padStart(64, '0');

describe('the catalogue\'s manifest of a big blob', () => {
  it('keeps each chunk\'s SHA-256 and length in 36 bytes, in order', () => {
    const chunks = [{ hash: hash(1), length: 65_536 }, { hash: hash(2), length: 1 }, { hash: hash(1), length: 65_536 }];
    const bytes = encodeSharedManifest(chunks);
    assert.equal(bytes.length, 3 * 36);
    assert.deepEqual(decodeSharedManifest(bytes), chunks);
    assert.equal(sharedManifestSize(chunks), 131_073);
  });

  it('refuses a hash that is not a SHA-256 and bytes that are not whole entries', () => {
    assert.throws(() => encodeSharedManifest([{ hash: 'abc', length: 1 }]), /not a SHA-256/);
    assert.throws(() => decodeSharedManifest(Buffer.alloc(37)), /whole number/);
  });

  it('uploads each chunk the catalogue lacks once, in the order the blob first uses it', () => {
    const chunks = [hash(3), hash(1), hash(3), hash(2), hash(4)].map((h) => ({ hash: h, length: 10 }));
    assert.deepEqual(chunksToUpload(chunks, new Set([hash(1)])), [hash(3), hash(2), hash(4)]);
    assert.deepEqual(chunksToUpload(chunks, new Set(chunks.map((c) => c.hash))), []);
  });
});
