import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Chunker, chunkLengths, CHUNK_MAX_BYTES, CHUNK_MIN_BYTES } from './chunker.ts';

/** Deterministic bytes that do not repeat (xorshift), so boundaries come from the content. */
function noise(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = state & 0xff;
  }
  return out;
}

function chunkHashes(bytes: Buffer): string[] {
  let at = 0;
  return chunkLengths(bytes).map((length) => {
    const hash = createHash('sha256').update(bytes.subarray(at, at + length)).digest('hex');
    at += length;
    return hash;
  });
}

describe('content-defined chunking', () => {
  const data = noise(8 * 1024 * 1024, 7);

  it('cuts chunks of 8 KiB to 128 KiB, about 64 KiB on average, covering every byte', () => {
    const lengths = chunkLengths(data);
    assert.equal(lengths.reduce((a, b) => a + b, 0), data.length);
    for (const length of lengths.slice(0, -1)) assert.ok(length >= CHUNK_MIN_BYTES && length <= CHUNK_MAX_BYTES, `chunk of ${length} bytes`);
    const average = data.length / lengths.length;
    assert.ok(average > 40 * 1024 && average < 100 * 1024, `average ${average}`);
  });

  it('cuts the same places however the stream is split into pieces', () => {
    const whole = chunkLengths(data);
    const chunker = new Chunker();
    const lengths: number[] = [];
    let last = 0;
    for (let at = 0; at < data.length; at += 10_007) {
      const piece = data.subarray(at, Math.min(data.length, at + 10_007));
      for (const cut of chunker.push(piece)) {
        lengths.push(at + cut - last);
        last = at + cut;
      }
    }
    if (chunker.end()) lengths.push(data.length - last);
    assert.deepEqual(lengths, whole);
  });

  it('keeps every chunk but the few around an insertion, so two versions of a file share almost all of them', () => {
    const edited = Buffer.concat([data.subarray(0, 3_000_000), Buffer.from('an insertion of a few bytes'), data.subarray(3_000_000)]);
    const before = new Set(chunkHashes(data));
    const after = chunkHashes(edited);
    const changed = after.filter((hash) => !before.has(hash)).length;
    assert.ok(changed >= 1 && changed <= 3, `${changed} chunks changed of ${after.length}`);
  });

  it('cuts data with no content boundaries (all zeros) at the 128 KiB maximum', () => {
    const lengths = chunkLengths(Buffer.alloc(1024 * 1024));
    assert.deepEqual(lengths, Array(8).fill(CHUNK_MAX_BYTES));
  });

  it('gives a stream shorter than the minimum as one chunk, and an empty one as none', () => {
    assert.deepEqual(chunkLengths(Buffer.alloc(100, 1)), [100]);
    assert.deepEqual(chunkLengths(Buffer.alloc(0)), []);
  });
});
