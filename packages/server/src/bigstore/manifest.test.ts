import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chunkAt, chunksForRange, decodeManifest, encodeManifest, manifestSize } from './manifest.ts';

describe('a big blob manifest', () => {
  const manifest = decodeManifest(encodeManifest([{ id: 7, length: 10 }, { id: 3, length: 5 }, { id: 7, length: 10 }, { id: 9, length: 1 }]));

  it('round-trips chunk ids (one chunk may appear twice) and sums their lengths', () => {
    assert.deepEqual(Array.from(manifest.ids), [7, 3, 7, 9]);
    assert.deepEqual(Array.from(manifest.ends), [10, 15, 25, 26]);
    assert.equal(manifestSize(manifest), 26);
  });

  it('finds the chunk holding each byte, at the edges of chunks too', () => {
    assert.deepEqual([0, 9, 10, 14, 15, 24, 25].map((offset) => chunkAt(manifest, offset)), [0, 0, 1, 1, 2, 2, 3]);
  });

  it('names the chunks a range touches and how much of the first and last it keeps', () => {
    assert.deepEqual(chunksForRange(manifest, 0, 25), { first: 0, last: 3, skipFirst: 0, keepLast: 1 });
    assert.deepEqual(chunksForRange(manifest, 12, 13), { first: 1, last: 1, skipFirst: 2, keepLast: 4 });
    assert.deepEqual(chunksForRange(manifest, 9, 15), { first: 0, last: 2, skipFirst: 9, keepLast: 1 });
  });

  it('decodes a manifest from a buffer that is not 8-byte aligned', () => {
    const bytes = encodeManifest([{ id: 1, length: 4 }]);
    const unaligned = Buffer.alloc(bytes.length + 1);
    bytes.copy(unaligned, 1);
    assert.deepEqual(Array.from(decodeManifest(unaligned.subarray(1)).ids), [1]);
  });
});
