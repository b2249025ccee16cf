import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { adler32, adler32Combine, ADLER32_EMPTY } from './adler32.ts';

/** zlib's own checksum: the last four bytes of a zlib stream. */
function zlibAdler(bytes: Uint8Array): number {
  const stream = deflateSync(bytes, { level: 0 });
  return stream.readUInt32BE(stream.length - 4);
}

test('adler32 agrees with zlib on empty, short, all-0xff and long inputs', () => {
  for (const bytes of [Buffer.alloc(0), Buffer.from('Wikipedia'), Buffer.alloc(100_000, 0xff), randomBytes(1_000_003)]) {
    assert.equal(adler32(bytes), zlibAdler(bytes));
  }
  assert.equal(adler32(Buffer.from('Wikipedia')), 0x11e60398);
});

test('adler32 can be updated piece by piece', () => {
  const bytes = randomBytes(200_000);
  let adler = ADLER32_EMPTY;
  for (let i = 0; i < bytes.length; i += 7777) adler = adler32(bytes.subarray(i, i + 7777), adler);
  assert.equal(adler, zlibAdler(bytes));
});

test('combining the checksums of two parts gives the checksum of the whole', () => {
  for (const [left, right] of [[0, 0], [1, 0], [0, 5], [65_521, 3], [100_000, 131_072], [70_000, 65_520]] as const) {
    const a = randomBytes(left);
    const b = randomBytes(right);
    assert.equal(adler32Combine(adler32(a), adler32(b), b.length), adler32(Buffer.concat([a, b])), `${left}+${right}`);
  }
  const ones = Buffer.alloc(65_537, 0xff);
  assert.equal(adler32Combine(adler32(ones), adler32(ones), ones.length), adler32(Buffer.concat([ones, ones])));
});
