/**
 * A big blob as one pack entry, made from its chunk frames without recompressing them
 * (docs/large-files.md, "Serving evicted blobs"): the entry header (type blob, size), a
 * zlib header, the frames as stored — each a raw-deflate stream ended by a sync flush, so
 * together one valid deflate stream — then an empty final block and the Adler-32 of the
 * whole, combined from the chunks' checksums. A client's index-pack inflates and hashes it
 * like any other entry.
 */
import { adler32, adler32Combine, ADLER32_EMPTY } from './adler32.ts';
import { decodeFrame } from './frames.ts';
import type { RawFrame } from './reader.ts';

/** Pack object type 3 (blob). */
const OBJ_BLOB = 3;
/** CMF/FLG of a zlib stream: deflate, 32 KiB window, no dictionary, fastest (0x7801 % 31 = 0). */
const ZLIB_HEADER = Buffer.from([0x78, 0x01]);
/** A final fixed-Huffman block holding only end-of-block: ends the deflate stream at a byte boundary. */
const FINAL_EMPTY_BLOCK = Buffer.from([0x03, 0x00]);

/** The header of a pack entry: type in bits 4-6 of the first byte, the size in 4 + 7·n bits, little-endian. */
export function packEntryHeader(type: number, size: number): Buffer {
  const bytes: number[] = [];
  let byte = (type << 4) | (size % 16);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest % 128;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}

/** The entry's bytes, in pieces; throws if the frames do not add up to `size`. */
export async function* bigBlobPackEntry(size: number, frames: AsyncIterable<RawFrame>): AsyncGenerator<Buffer> {
  yield Buffer.concat([packEntryHeader(OBJ_BLOB, size), ZLIB_HEADER]);
  let checksum = ADLER32_EMPTY;
  let total = 0;
  for await (const frame of frames) {
    const chunkAdler = frame.adler32 ?? adler32(await decodeFrame(frame.bytes, frame.length));
    checksum = adler32Combine(checksum, chunkAdler, frame.length);
    total += frame.length;
    yield frame.bytes;
  }
  if (total !== size) throw new Error(`the frames of a ${size}-byte blob hold ${total} bytes: the store is damaged`);
  const trailer = Buffer.alloc(6);
  FINAL_EMPTY_BLOCK.copy(trailer);
  trailer.writeUInt32BE(checksum, 2);
  yield trailer;
}
