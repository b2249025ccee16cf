/**
 * Walks the entries of a git pack file (gitformat-pack, "pack-*.pack files") without
 * resolving deltas:
 *
 *   header  = "PACK" version:u32be count:u32be      ; version 2 or 3
 *   entry   = type-and-size [ofs-delta-offset | ref-delta-oid] zlib-stream
 *   trailer = 20-byte SHA-1 of everything before it
 *
 * type-and-size: bits 6-4 of the first byte are the type, its low 4 bits the lowest
 * size bits, then 7 bits per byte, little-endian, while the MSB is set. The size is the
 * inflated size of the object (or of the delta). An ofs-delta's base offset is
 * big-endian 7-bit groups where each continuation adds one before shifting, and counts
 * back from the entry's own offset. A ref-delta names its base by 20 raw bytes.
 *
 * Entry lengths are not recorded anywhere, so the only way to find where an entry ends
 * is to inflate its zlib stream and see how much input zlib consumed. Memory stays
 * bounded: inflated output is counted and dropped, and no entry is buffered whole.
 */

import { createReadStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import { createInflate, inflateSync, type Inflate } from 'node:zlib';

export interface PackEntry {
  /** Byte offset of the entry header in the pack. */
  readonly offset: number;
  readonly type: PackEntryType;
  /** The size in the entry header: the inflated size of the object or of the delta. */
  readonly size: number;
  /** ref-delta only: the 40-hex base object id. */
  readonly baseOid?: string;
  /** ofs-delta only: the absolute offset of the base entry. */
  readonly baseOffset?: number;
}

export type PackEntryType = 'commit' | 'tree' | 'blob' | 'tag' | 'ofs-delta' | 'ref-delta';

/** A malformed or truncated pack. The message is safe to show to a client. */
export class PackFormatError extends Error {
  override name = 'PackFormatError';
}

const HEADER_LENGTH = 12;
const TRAILER_LENGTH = 20;
/** type-and-size (10 bytes covers 64 bits) plus the longer of an ofs (10) or an oid (20). */
const MAX_ENTRY_HEADER = 32;
/**
 * Entries that inflate to at most this many bytes are inflated with one synchronous call
 * over the buffered input: a zlib stream per small entry would cost a thread-pool round
 * trip per entry, which dominates for packs of many small objects.
 */
const SYNC_INFLATE_LIMIT = 1 << 20;
/** Smallest write into a streaming inflater, so that a source of tiny chunks stays fast. */
const MIN_STREAM_WRITE = 64 * 1024;
/** Output chunk of a streaming inflater: fewer thread-pool round trips per inflated byte. */
const STREAM_OUTPUT_CHUNK = 256 * 1024;

const TYPES: readonly (PackEntryType | null)[] = [null, 'commit', 'tree', 'blob', 'tag', null, 'ofs-delta', 'ref-delta'];

/** Reads a git pack file (version 2 or 3 header) entry by entry with bounded memory. */
export async function* packEntries(source: AsyncIterable<Uint8Array>): AsyncGenerator<PackEntry> {
  const reader = new ChunkReader(source);
  try {
    const header = await reader.fill(HEADER_LENGTH);
    if (header.length < HEADER_LENGTH) throw new PackFormatError('pack is truncated: incomplete pack header');
    if (header.toString('latin1', 0, 4) !== 'PACK') throw new PackFormatError('bad pack header: no PACK signature');
    const version = header.readUInt32BE(4);
    if (version !== 2 && version !== 3) throw new PackFormatError(`bad pack header: unsupported pack version ${version}`);
    const count = header.readUInt32BE(8);
    reader.skip(HEADER_LENGTH);

    for (let index = 0; index < count; index++) {
      // Awaits only when the buffered bytes run short: for packs of millions of small
      // entries the per-entry promise ticks are a measurable share of the scan.
      const head = reader.holds(MAX_ENTRY_HEADER) ? reader.buffered : await reader.fill(MAX_ENTRY_HEADER);
      const { entry, headerLength } = parseEntryHeader(head, reader.offset, index, count);
      reader.skip(headerLength);
      const bound = entry.size <= SYNC_INFLATE_LIMIT ? deflateBound(entry.size) : 0;
      const consumed = bound === 0 ? null : inflateBuffered(reader.holds(bound) ? reader.buffered : await reader.fill(bound), entry, reader.ended);
      if (consumed === null) await inflateStreaming(reader, entry);
      else reader.skip(consumed);
      yield entry;
    }

    const trailer = await reader.fill(TRAILER_LENGTH + 1);
    if (trailer.length < TRAILER_LENGTH) throw new PackFormatError(`pack is truncated: incomplete trailer after ${count} entries`);
    // A pack that claims fewer objects than it holds has its extra entries here.
    if (trailer.length > TRAILER_LENGTH) throw new PackFormatError(`pack has junk after the trailer: more data than its ${count} entries`);
  } finally {
    await reader.close();
  }
}

/** The distinct ref-delta base oids of a pack file on disk (what a thin pack needs from the receiver). */
export async function refDeltaBases(packPath: string): Promise<string[]> {
  // A pack written with --no-delta-base-offset names in-pack bases by oid too, so this
  // can include objects the pack itself holds: telling those apart would take hashing
  // every resolved object.
  const bases = new Set<string>();
  for await (const entry of packEntries(createReadStream(packPath, { highWaterMark: 1 << 20 }))) {
    if (entry.baseOid !== undefined) bases.add(entry.baseOid);
  }
  return [...bases];
}

/** Decodes the entry header at the start of `bytes`, which hold MAX_ENTRY_HEADER bytes unless the pack ends sooner. */
function parseEntryHeader(bytes: Buffer, offset: number, index: number, count: number): { entry: PackEntry; headerLength: number } {
  const truncated = (): PackFormatError => new PackFormatError(`pack is truncated: entry ${index + 1} of ${count} at offset ${offset} is incomplete`);
  if (bytes.length === 0) throw truncated();

  let at = 0;
  let c = bytes[at++]!;
  const type = TYPES[(c >> 4) & 7] ?? null;
  if (type === null) throw new PackFormatError(`bad pack entry at offset ${offset}: invalid object type ${(c >> 4) & 7}`);
  // Arithmetic rather than bit shifts: sizes of 4 GiB and more do not fit in 32 bits.
  let size = c & 0x0f;
  let scale = 16;
  while (c & 0x80) {
    if (at >= bytes.length) throw truncated();
    c = bytes[at++]!;
    size += (c & 0x7f) * scale;
    scale *= 128;
    if (size > Number.MAX_SAFE_INTEGER) throw new PackFormatError(`bad pack entry at offset ${offset}: size is too large`);
  }

  let entry: PackEntry;
  if (type === 'ofs-delta') {
    if (at >= bytes.length) throw truncated();
    c = bytes[at++]!;
    let distance = c & 0x7f;
    while (c & 0x80) {
      if (at >= bytes.length) throw truncated();
      c = bytes[at++]!;
      distance = (distance + 1) * 128 + (c & 0x7f);
      if (distance > Number.MAX_SAFE_INTEGER) throw new PackFormatError(`bad pack entry at offset ${offset}: delta base offset is too large`);
    }
    const baseOffset = offset - distance;
    if (distance === 0 || baseOffset < HEADER_LENGTH) throw new PackFormatError(`bad pack entry at offset ${offset}: delta base offset is out of bounds`);
    entry = { offset, type, size, baseOffset };
  } else if (type === 'ref-delta') {
    if (bytes.length - at < 20) throw truncated();
    entry = { offset, type, size, baseOid: bytes.toString('hex', at, at + 20) };
    at += 20;
  } else {
    entry = { offset, type, size };
  }
  return { entry, headerLength: at };
}

/** Generous upper bound of zlib's output for `size` input bytes (zlib's deflateBound plus slack). */
function deflateBound(size: number): number {
  return size + (size >>> 12) + (size >>> 14) + 64;
}

/** What `inflateSync` returns when given `info: true` (its declared type omits the overload). */
interface InflateInfo {
  readonly buffer: Buffer;
  readonly engine: { readonly bytesWritten: number };
}

/**
 * Inflates one small entry from `input` in one call; returns the input bytes it used, or
 * null when its stream runs past `input` (only possible from a non-standard compressor,
 * given deflateBound) and more of the pack is still to come.
 */
function inflateBuffered(input: Buffer, entry: PackEntry, atEnd: boolean): number | null {
  let result: InflateInfo;
  try {
    result = inflateSync(input, {
      info: true,
      // A close fit avoids allocating and filling 16 KiB of output for a 200-byte tree.
      chunkSize: Math.min(Math.max(entry.size + 1, 1024), 64 * 1024),
      maxOutputLength: Math.max(entry.size, 1),
    }) as unknown as InflateInfo;
  } catch (error) {
    if (zlibCode(error) === 'Z_BUF_ERROR' && !atEnd) return null;
    throw zlibFailure(error, entry);
  }
  if (result.buffer.length !== entry.size) throw sizeMismatch(entry, result.buffer.length);
  return result.engine.bytesWritten;
}

/** Streams one entry of any size through an inflater, one chunk in flight at a time. */
async function inflateStreaming(reader: ChunkReader, entry: PackEntry): Promise<void> {
  const inflate = createInflate({ chunkSize: STREAM_OUTPUT_CHUNK });
  let produced = 0;
  let failure: unknown = null;
  inflate.on('data', (chunk: Buffer) => {
    produced += chunk.length;
  });
  inflate.on('error', (error) => {
    failure ??= error;
  });
  try {
    let fed = 0;
    for (;;) {
      if (produced > entry.size) throw sizeMismatch(entry, produced);
      const chunk = await reader.take(MIN_STREAM_WRITE);
      if (chunk === null) {
        // The source ended with the stream still open: finishing tells a complete stream
        // that ended exactly at a chunk boundary from a truncated one.
        inflate.end();
        await finished(inflate, { writable: false });
        break;
      }
      const before = fed;
      fed += chunk.length;
      await written(inflate, chunk);
      // zlib stops consuming at the end of its stream; what it left is the next entry's.
      if (inflate.bytesWritten < fed) {
        reader.unread(chunk.subarray(inflate.bytesWritten - before));
        await finished(inflate, { writable: false });
        break;
      }
    }
  } catch (error) {
    throw error instanceof PackFormatError ? error : zlibFailure(failure ?? error, entry);
  } finally {
    inflate.destroy();
  }
  if (produced !== entry.size) throw sizeMismatch(entry, produced);
}

function written(inflate: Inflate, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    // A zlib error destroys the stream, which may drop the write callback: listen for it too.
    const onError = (error: Error): void => reject(error);
    inflate.once('error', onError);
    inflate.write(chunk, (error) => {
      inflate.off('error', onError);
      if (error) reject(error);
      else resolve();
    });
  });
}

function zlibCode(error: unknown): string | undefined {
  if (!(error instanceof Error) || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

function zlibFailure(error: unknown, entry: PackEntry): PackFormatError {
  const code = zlibCode(error);
  if (code === 'Z_BUF_ERROR') return new PackFormatError(`pack is truncated: the data of the entry at offset ${entry.offset} is incomplete`);
  if (code === 'ERR_BUFFER_TOO_LARGE') return new PackFormatError(`bad pack entry at offset ${entry.offset}: inflates to more than its size ${entry.size}`);
  const message = error instanceof Error ? error.message : String(error);
  return new PackFormatError(`bad pack entry at offset ${entry.offset}: zlib error: ${message}`, { cause: error });
}

function sizeMismatch(entry: PackEntry, actual: number): PackFormatError {
  return new PackFormatError(`bad pack entry at offset ${entry.offset}: inflates to ${actual} bytes, not its size ${entry.size}`);
}

/**
 * The unread bytes of a chunked source with their absolute offset. Gathers chunks only
 * up to what a caller asks for, so it holds at most that plus one source chunk.
 */
class ChunkReader {
  readonly #iterator: AsyncIterator<Uint8Array>;
  #buffer: Buffer = Buffer.alloc(0);
  #offset = 0;
  #ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  /** Absolute offset of the first unread byte. */
  get offset(): number {
    return this.#offset;
  }

  /** True once the source has no more chunks (the buffered bytes may remain). */
  get ended(): boolean {
    return this.#ended;
  }

  /** The unread bytes. */
  get buffered(): Buffer {
    return this.#buffer;
  }

  /** True when at least `length` unread bytes are buffered. */
  holds(length: number): boolean {
    return this.#buffer.length >= length;
  }

  /** The unread bytes, at least `want` of them unless the source ends first. */
  async fill(want: number): Promise<Buffer> {
    if (this.#buffer.length >= want || this.#ended) return this.#buffer;
    const parts = [this.#buffer];
    let total = this.#buffer.length;
    while (total < want) {
      const chunk = await this.#next();
      if (chunk === null) break;
      parts.push(chunk);
      total += chunk.length;
    }
    // One concatenation however many chunks it took: a source of 1-byte chunks stays linear.
    this.#buffer = parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
    return this.#buffer;
  }

  skip(length: number): void {
    this.#buffer = this.#buffer.subarray(length);
    this.#offset += length;
  }

  /** Hands over the unread bytes (at least `want` unless the source ends), or null at the end. */
  async take(want: number): Promise<Buffer | null> {
    const chunk = await this.fill(want);
    if (chunk.length === 0) return null;
    this.skip(chunk.length);
    return chunk;
  }

  /** Gives back the tail of the last taken chunk. */
  unread(rest: Buffer): void {
    this.#buffer = rest;
    this.#offset -= rest.length;
  }

  async close(): Promise<void> {
    if (!this.#ended) {
      this.#ended = true;
      await this.#iterator.return?.();
    }
  }

  async #next(): Promise<Buffer | null> {
    for (;;) {
      const result = await this.#iterator.next();
      if (result.done) {
        this.#ended = true;
        return null;
      }
      const chunk = result.value;
      if (chunk.length > 0) return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
  }
}
