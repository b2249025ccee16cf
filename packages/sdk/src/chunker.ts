/**
 * Content-defined chunking, the one Grove's chunk store uses for big blobs: a Gear
 * rolling hash over the bytes (Xet's parameters: chunks of 8 KiB minimum, about 64 KiB on
 * average, 128 KiB maximum, a cut where the top 16 bits of the hash are zero).
 *
 * Because a cut depends only on the 32 bytes before it, an edit moves the boundaries
 * near it and no others: two versions of a file share every chunk the edit did not
 * touch. The server lists a blob's chunks (`grove.blobs.chunks`), and a client that holds
 * an older version chunks it the same way and downloads only the chunks it lacks.
 *
 * The Gear table is derived from a fixed seed, so every client and server cuts the same
 * bytes at the same places: changing anything here changes the protocol.
 */
export const CHUNK_MIN_BYTES = 8 * 1024;
export const CHUNK_MAX_BYTES = 128 * 1024;
const GEAR = gearTable();

/** 256 pseudo-random 32-bit words from a fixed xorshift32 seed (the constants are part of the protocol). */
function gearTable(): Int32Array {
  const table = new Int32Array(256);
  let state = 0x9e3779b9;
  for (let i = 0; i < 256; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    table[i] = state | 0;
  }
  return table;
}

/**
 * Cuts a stream of bytes into chunks, fed in pieces of any size. `push` returns the
 * offsets within the piece at which chunks end; `end` says whether bytes remain (the
 * last chunk, which ends with the stream).
 */
export class Chunker {
  #hash = 0;
  /** Bytes of the current, unfinished chunk. */
  #length = 0;

  /** The offsets (exclusive ends, relative to `piece`) of the chunks that end inside it. */
  push(piece: Uint8Array): number[] {
    const cuts: number[] = [];
    const gear = GEAR;
    const n = piece.length;
    let hash = this.#hash;
    let length = this.#length;
    let i = 0;
    while (i < n) {
      // Only the last 32 bytes shape the hash, so the bytes before the minimum are skipped unhashed.
      if (length < CHUNK_MIN_BYTES - 32) {
        const skip = Math.min(CHUNK_MIN_BYTES - 32 - length, n - i);
        length += skip;
        i += skip;
        continue;
      }
      const limit = Math.min(n, i + (CHUNK_MAX_BYTES - length));
      let cut = false;
      for (; i < limit; i++) {
        // `| 0` keeps the hash a small integer for the JIT (`>>> 0` would box it: 5x slower).
        hash = ((hash << 1) + gear[piece[i]!]!) | 0;
        length++;
        if (length >= CHUNK_MIN_BYTES && (hash >>> 16) === 0) {
          i++;
          cut = true;
          break;
        }
      }
      if (cut || length >= CHUNK_MAX_BYTES) {
        cuts.push(i);
        hash = 0;
        length = 0;
      }
    }
    this.#hash = hash;
    this.#length = length;
    return cuts;
  }

  /** True when the stream ended inside a chunk: its bytes since the last cut are the last chunk. */
  end(): boolean {
    const pending = this.#length > 0;
    this.#hash = 0;
    this.#length = 0;
    return pending;
  }
}

/** The lengths of the chunks of `bytes`, in order (for whole buffers; stream with Chunker). */
export function chunkLengths(bytes: Uint8Array): number[] {
  const chunker = new Chunker();
  const lengths: number[] = [];
  let previous = 0;
  for (const cut of chunker.push(bytes)) {
    lengths.push(cut - previous);
    previous = cut;
  }
  if (chunker.end()) lengths.push(bytes.length - previous);
  return lengths;
}
