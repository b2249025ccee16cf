/**
 * A big blob's manifest: its chunks in order, as (chunk id, length) pairs, and which of
 * them a byte range needs (pure). Kept as a blob column: 16 bytes per chunk, ~256 KB per GiB.
 */

export interface Manifest {
  /** The chunk ids, in blob order. */
  readonly ids: Float64Array;
  /** The offset just past each chunk (cumulative lengths): ends[i] - length(i) is its start. */
  readonly ends: Float64Array;
}

export function encodeManifest(entries: ReadonlyArray<{ readonly id: number; readonly length: number }>): Buffer {
  const values = new Float64Array(entries.length * 2);
  entries.forEach((entry, i) => {
    values[2 * i] = entry.id;
    values[2 * i + 1] = entry.length;
  });
  return Buffer.from(values.buffer);
}

export function decodeManifest(bytes: Uint8Array): Manifest {
  // Copied: a Buffer from SQLite need not be 8-byte aligned.
  const values = new Float64Array(new Uint8Array(bytes).buffer);
  const count = values.length / 2;
  const ids = new Float64Array(count);
  const ends = new Float64Array(count);
  let end = 0;
  for (let i = 0; i < count; i++) {
    ids[i] = values[2 * i]!;
    end += values[2 * i + 1]!;
    ends[i] = end;
  }
  return { ids, ends };
}

export function manifestSize(manifest: Manifest): number {
  return manifest.ends.length === 0 ? 0 : manifest.ends[manifest.ends.length - 1]!;
}

export function chunkStart(manifest: Manifest, index: number): number {
  return index === 0 ? 0 : manifest.ends[index - 1]!;
}

/** The index of the chunk that holds byte `offset` (binary search; offset < size). */
export function chunkAt(manifest: Manifest, offset: number): number {
  let low = 0;
  let high = manifest.ends.length - 1;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (manifest.ends[middle]! > offset) high = middle;
    else low = middle + 1;
  }
  return low;
}

/** The chunks a range [start, end] (inclusive) touches, and how much of the first and last to drop. */
export function chunksForRange(manifest: Manifest, start: number, end: number): { first: number; last: number; skipFirst: number; keepLast: number } {
  const first = chunkAt(manifest, start);
  const last = chunkAt(manifest, end);
  return { first, last, skipFirst: start - chunkStart(manifest, first), keepLast: end - chunkStart(manifest, last) + 1 };
}
