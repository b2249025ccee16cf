import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { COMPRESSION_RETRY_INTERVAL, CompressionPolicy, decodeFrame, encodeFrame, storedBytes, storedFrame } from './frames.ts';
import { worthScanningForBigBlobs } from './push-scan.ts';

describe('chunk frames', () => {
  it('deflates a compressible chunk and stores an incompressible one, and both decode to the chunk', async () => {
    const text = Buffer.alloc(64 * 1024, 'a line of text\n');
    const noise = randomBytes(64 * 1024);
    const policy = new CompressionPolicy();
    const packed = encodeFrame(text, policy);
    assert.ok(packed.compressed && packed.bytes.length < text.length / 10);
    const stored = encodeFrame(noise, new CompressionPolicy());
    assert.ok(!stored.compressed && stored.bytes.length < noise.length + 64);
    assert.ok((await decodeFrame(packed.bytes, text.length)).equals(text));
    assert.ok((await decodeFrame(stored.bytes, noise.length)).equals(noise));
  });

  it('ends each frame with a sync flush, so frames concatenated are one deflate stream of the chunks', () => {
    const policy = new CompressionPolicy();
    const a = Buffer.alloc(20_000, 'x');
    const b = randomBytes(20_000);
    const joined = Buffer.concat([encodeFrame(a, policy).bytes, encodeFrame(b, policy).bytes]);
    assert.ok(inflateRawSync(joined, { finishFlush: 2 }).equals(Buffer.concat([a, b])));
  });

  it('writes stored blocks by hand that zlib inflates to the chunk, for chunks over and under a block\'s 65,535 bytes', () => {
    for (const size of [1, 65_535, 65_536, 131_072]) {
      const chunk = randomBytes(size);
      assert.ok(inflateRawSync(storedFrame(chunk), { finishFlush: 2 }).equals(chunk), `${size} bytes`);
    }
  });

  it('reads a frame of stored blocks without zlib, and leaves a deflated one to zlib', () => {
    const noise = randomBytes(100_000);
    const stored = encodeFrame(noise, new CompressionPolicy()).bytes;
    assert.ok(storedBytes(stored)?.equals(noise));
    assert.equal(storedBytes(encodeFrame(Buffer.alloc(100_000, 'a'), new CompressionPolicy()).bytes), null);
  });

  it('refuses a frame that inflates to another length than the index says', async () => {
    const frame = encodeFrame(Buffer.alloc(100, 1), new CompressionPolicy()).bytes;
    await assert.rejects(decodeFrame(frame, 99), /damaged/);
  });

  it('stops trying to compress after a chunk it cannot shrink by 5%, and tries again every 32 chunks', () => {
    const policy = new CompressionPolicy();
    assert.equal(policy.shouldTry(), true);
    policy.record(true, 1000, 990);
    const tries: boolean[] = [];
    for (let i = 0; i < COMPRESSION_RETRY_INTERVAL; i++) {
      const tried = policy.shouldTry();
      tries.push(tried);
      policy.record(tried, 1000, 1000);
    }
    assert.deepEqual(tries.map((t, i) => (t ? i : -1)).filter((i) => i >= 0), [COMPRESSION_RETRY_INTERVAL - 1]);
    policy.record(true, 1000, 500);
    assert.equal(policy.shouldTry(), true);
  });
});

describe('which pushes are scanned for big blobs', () => {
  it('scans a push of a mebibyte or more, and any push to a repository known to hold big blobs', () => {
    assert.equal(worthScanningForBigBlobs(1024 * 1024, () => false), true);
    assert.equal(worthScanningForBigBlobs(1024 * 1024 - 1, () => false), false);
    assert.equal(worthScanningForBigBlobs(200, () => true), true);
  });
});
