import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { inflateSync } from 'node:zlib';
import { Chunker } from '@grove/sdk';
import { adler32 } from './adler32.ts';
import { CompressionPolicy, encodeFrame } from './frames.ts';
import { bigBlobPackEntry, packEntryHeader } from './pack-entry.ts';
import type { RawFrame } from './reader.ts';

function framesOf(bytes: Buffer, keepChecksums: boolean): RawFrame[] {
  const chunker = new Chunker();
  const cuts = [...chunker.push(bytes)];
  if (chunker.end()) cuts.push(bytes.length);
  const policy = new CompressionPolicy();
  let from = 0;
  return cuts.map((cut) => {
    const chunk = bytes.subarray(from, cut);
    from = cut;
    return { bytes: encodeFrame(chunk, policy).bytes, length: chunk.length, adler32: keepChecksums ? adler32(chunk) : null };
  });
}

async function collect(pieces: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const piece of pieces) parts.push(piece);
  return Buffer.concat(parts);
}

async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

test('a pack entry header carries the type and the size in little-endian groups of 7 bits after the first 4', () => {
  assert.deepEqual([...packEntryHeader(3, 10)], [0x3a]);
  assert.deepEqual([...packEntryHeader(3, 16)], [0xb0, 0x01]);
  // 5 GiB: more than 32 bits.
  const size = 5 * 2 ** 30;
  const header = packEntryHeader(3, size);
  let decoded = header[0]! & 15;
  let shift = 4;
  for (let i = 1; i < header.length; i++, shift += 7) decoded += (header[i]! & 0x7f) * 2 ** shift;
  assert.equal(decoded, size);
  assert.equal((header[0]! >> 4) & 7, 3);
});

test('the spliced entry is a zlib stream that inflates to the blob, with or without stored checksums', async () => {
  const text = Buffer.from('a,b,c\n1,2,3\n'.repeat(40_000));
  const bytes = Buffer.concat([randomBytes(300_000), text, randomBytes(100_000)]);
  for (const keep of [true, false]) {
    const entry = await collect(bigBlobPackEntry(bytes.length, iterate(framesOf(bytes, keep))));
    const header = packEntryHeader(3, bytes.length);
    assert.deepEqual(entry.subarray(0, header.length), header);
    const inflated = inflateSync(entry.subarray(header.length)); // checks the Adler-32 too
    assert.equal(createHash('sha256').update(inflated).digest('hex'), createHash('sha256').update(bytes).digest('hex'));
  }
});

test('frames that do not add up to the size are refused', async () => {
  const bytes = randomBytes(200_000);
  await assert.rejects(collect(bigBlobPackEntry(bytes.length + 1, iterate(framesOf(bytes, true)))), /store is damaged/);
});
