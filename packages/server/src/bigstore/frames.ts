/**
 * A chunk as the store keeps it: one raw-deflate stream ended by a sync flush and no
 * final block, so the frames of a blob, concatenated, are themselves a valid deflate
 * stream (what a pack entry is made of, once big blobs are spliced into packs).
 *
 * Deflate is worth it only on compressible data, and on incompressible data it runs at
 * ~50 MiB/s per core, slower than everything else in the store. So compression is tried
 * on the first chunk and every 32nd after it (Xet's interval); a chunk it shrinks by less
 * than 5% switches the blob to stored blocks (level 0, a copy) until the next try.
 */
import { constants, deflateRawSync, inflateRaw } from 'node:zlib';
import { promisify } from 'node:util';

const inflateRawAsync = promisify(inflateRaw);
const SYNC = { finishFlush: constants.Z_SYNC_FLUSH };

/** Chunks between two tries of compression. */
export const COMPRESSION_RETRY_INTERVAL = 32;
/** The least saving (a fraction of the chunk) that makes a compressed frame worth keeping. */
export const MIN_COMPRESSION_SAVING = 0.05;

/** Decides, chunk by chunk of one blob, whether to try deflate (pure). */
export class CompressionPolicy {
  #sinceTry = 0;
  #compressing = true;

  /** Whether to try compressing the next chunk. */
  shouldTry(): boolean {
    return this.#compressing || this.#sinceTry % COMPRESSION_RETRY_INTERVAL === 0;
  }

  /** Records what compressing the chunk saved (or that it was not tried). */
  record(tried: boolean, plainBytes: number, compressedBytes: number): void {
    if (tried) {
      this.#compressing = compressedBytes <= plainBytes * (1 - MIN_COMPRESSION_SAVING);
      this.#sinceTry = 1;
    } else {
      this.#sinceTry++;
    }
  }
}

export interface Frame {
  readonly bytes: Buffer;
  readonly compressed: boolean;
}

/** The frame of one chunk, deflated when the policy says to try and it pays. */
export function encodeFrame(chunk: Uint8Array, policy: CompressionPolicy): Frame {
  if (policy.shouldTry()) {
    const deflated = deflateRawSync(chunk, { level: 1, ...SYNC });
    policy.record(true, chunk.length, deflated.length);
    if (deflated.length <= chunk.length * (1 - MIN_COMPRESSION_SAVING)) return { bytes: deflated, compressed: true };
  } else {
    policy.record(false, chunk.length, chunk.length);
  }
  return { bytes: deflateRawSync(chunk, { level: 0, ...SYNC }), compressed: false };
}

/** The chunk a frame holds (on the thread pool: never blocks the event loop). */
export async function decodeFrame(frame: Uint8Array, expectedLength: number): Promise<Buffer> {
  const chunk = await inflateRawAsync(frame, SYNC);
  if (chunk.length !== expectedLength) throw new Error(`a chunk frame inflated to ${chunk.length} bytes, not ${expectedLength}: the segment is damaged`);
  return chunk;
}
