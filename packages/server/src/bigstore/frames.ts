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
  return { bytes: storedFrame(chunk), compressed: false };
}

/** The largest stored block deflate allows (LEN is 16 bits). */
const MAX_STORED_BLOCK = 0xffff;

/**
 * A frame of stored blocks written by hand (what zlib's level 0 writes, without its
 * copies): non-final blocks of at most 65,535 bytes, then the empty stored block that a
 * sync flush ends with.
 */
export function storedFrame(chunk: Uint8Array): Buffer {
  const blocks = Math.ceil(chunk.length / MAX_STORED_BLOCK);
  const frame = Buffer.allocUnsafe(chunk.length + 5 * (blocks + 1));
  let at = 0;
  for (let from = 0; from < chunk.length; from += MAX_STORED_BLOCK) {
    const length = Math.min(MAX_STORED_BLOCK, chunk.length - from);
    frame[at] = 0x00;
    frame.writeUInt16LE(length, at + 1);
    frame.writeUInt16LE(length ^ 0xffff, at + 3);
    frame.set(chunk.subarray(from, from + length), at + 5);
    at += 5 + length;
  }
  frame[at] = 0x00;
  frame.writeUInt32LE(0xffff0000, at + 1);
  return frame;
}

/**
 * The bytes of a frame made only of stored blocks (RFC 1951 §3.2.4: a 3-bit header of type
 * 00, padding to the byte, LEN, NLEN, then LEN bytes as they are), read without zlib; null
 * when any block is compressed. Incompressible chunks, most of a big binary blob, are such.
 */
export function storedBytes(frame: Uint8Array): Buffer | null {
  const view = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  const parts: Buffer[] = [];
  let at = 0;
  while (at < view.length) {
    if ((view[at]! & 0x06) !== 0 || at + 5 > view.length) return null; // a compressed block
    const length = view.readUInt16LE(at + 1);
    if ((length ^ view.readUInt16LE(at + 3)) !== 0xffff || at + 5 + length > view.length) return null;
    if (length > 0) parts.push(view.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** The chunk a frame holds: stored blocks copied out directly, deflate on the thread pool (never on the event loop). */
export async function decodeFrame(frame: Uint8Array, expectedLength: number): Promise<Buffer> {
  const chunk = storedBytes(frame) ?? (await inflateRawAsync(frame, SYNC));
  if (chunk.length !== expectedLength) throw new Error(`a chunk frame inflated to ${chunk.length} bytes, not ${expectedLength}: the segment is damaged`);
  return chunk;
}
