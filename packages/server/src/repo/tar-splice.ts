/**
 * Appends entries to the tar stream of `git archive --format=tar`.
 *
 * Big files live in the chunk store, not in git's object store, so git cannot archive them:
 * Grove runs `git archive … -- . ':(exclude)<big path>' …` and splices the big files in after
 * git's last entry. git's stream is walked header by header (POSIX ustar and pax,
 * git's archive-tar.c) only to find where its end-of-archive starts; everything before it is
 * passed through byte for byte.
 *
 *   archive  = *(header *data-block) end-of-archive
 *   header   = 512 bytes; size at offset 124 (12 bytes, octal, or base-256 when the high bit
 *              of its first byte is set); a pax 'x' header's size= record overrides the size
 *              of the header after it
 *   data     = ceil(size / 512) blocks
 *   end      = two or more all-zero blocks; git pads the whole stream to 10240 bytes
 *
 * Memory stays bounded: git's chunks and the appended content are yielded as they arrive,
 * only a header split across two chunks (512 bytes) or a pax 'x' header's records are copied.
 */
import { createHash } from 'node:crypto';

/** A file to add at the end of the archive. */
export interface AppendedTarEntry {
  /** The full path inside the archive, prefix included, e.g. 'repo-main/data/model.bin'. */
  readonly path: string;
  /**
   * Permission bits written as they are. git writes its tree modes through tar.umask
   * (default 002): 100644 becomes 0o664 and 100755 becomes 0o775.
   */
  readonly mode: number;
  /** The content's length in bytes (up to several GiB). */
  readonly size: number;
  /** The content, exactly `size` bytes. Chunks are yielded without copying. */
  readonly open: () => Promise<AsyncIterable<Uint8Array>> | AsyncIterable<Uint8Array>;
}

/** git's tar stream is malformed or truncated, or an entry's content is not `size` bytes long. */
export class TarSpliceError extends Error {
  override name = 'TarSpliceError';
}

const BLOCK = 512;
/** git writes in records of 20 blocks (archive-tar.c BLOCKSIZE) and so do we. */
const RECORD = 20 * BLOCK;
/** The largest value of an 11-digit octal field (archive-tar.c USTAR_MAX_SIZE, USTAR_MAX_MTIME). */
const USTAR_MAX = 0o77777777777;
/** A pax 'x' header is buffered to read its size= record; git's hold a path and a size. */
const MAX_PAX_HEADER = 1024 * 1024;

const NAME_LENGTH = 100;
const PREFIX_LENGTH = 155;
const CHECKSUM_OFFSET = 148;
const CHECKSUM_LENGTH = 8;
const TYPEFLAG_OFFSET = 156;
const TYPEFLAG_EXTENDED = 0x78; // 'x'
const SPACE = 0x20;

/**
 * git archive's tar stream with `entries` added at its end: passes git's entries through
 * unchanged, drops its end-of-archive blocks and padding, writes each appended entry
 * (header + content + padding to 512), then the end-of-archive (two zero blocks) padded to git's
 * 10240-byte record size.
 */
export async function* spliceTar(gitTar: AsyncIterable<Uint8Array>, entries: readonly AppendedTarEntry[], mtimeSeconds: number): AsyncGenerator<Uint8Array> {
  // Headers are built before the first byte goes out, so a bad entry fails before a response starts.
  const mtime = headerMtime(mtimeSeconds);
  const headers = entries.map((entry) => entryHeaders(entry, mtime));
  let written = 0;
  for await (const chunk of gitEntries(gitTar)) {
    written += chunk.length;
    yield chunk;
  }
  for (const [i, entry] of entries.entries()) {
    const header = headers[i]!;
    written += header.length;
    yield header;
    let seen = 0;
    for await (const piece of await entry.open()) {
      if (piece.length === 0) continue;
      // Checked before yielding: a consumer never gets bytes past the declared size.
      if (seen + piece.length > entry.size) throw new TarSpliceError(`the content of ${entry.path} is longer than its ${entry.size} bytes`);
      seen += piece.length;
      yield piece;
    }
    if (seen < entry.size) throw new TarSpliceError(`the content of ${entry.path} ended after ${seen} of its ${entry.size} bytes`);
    written += seen;
    const padding = paddingFor(entry.size);
    if (padding > 0) {
      written += padding;
      yield Buffer.alloc(padding);
    }
  }
  // As git's write_trailer: at least two zero blocks, then zeros to the end of the record.
  yield Buffer.alloc(2 * BLOCK + ((RECORD - ((written + 2 * BLOCK) % RECORD)) % RECORD));
}

/**
 * The bytes of git's stream before its end-of-archive, in git's own chunks where a chunk holds
 * whole headers. Reads the stream to its end (so git can exit) and checks that only zeros follow.
 */
async function* gitEntries(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let contentLeft = 0; // data bytes of the current entry not yet read
  let paddingLeft = 0;
  let pax: Uint8Array[] | null = null; // the records of a pax 'x' header being read
  let sizeOverride: number | null = null; // size= of the last 'x' header, for the header after it
  let partial: Buffer | null = null; // a header split across chunks
  let partialLength = 0;
  let ended = false;
  let trailer = 0; // bytes from the first zero header on
  let total = 0;

  for await (const chunk of source) {
    total += chunk.length;
    if (ended) {
      requireZeros(chunk, 0);
      trailer += chunk.length;
      continue;
    }
    let pos = 0;
    let from = 0; // start of the bytes of this chunk not yet yielded
    while (pos < chunk.length) {
      if (contentLeft > 0) {
        const n = Math.min(contentLeft, chunk.length - pos);
        if (pax !== null) pax.push(Buffer.from(chunk.subarray(pos, pos + n)));
        contentLeft -= n;
        pos += n;
        if (contentLeft === 0 && pax !== null) {
          sizeOverride = paxSize(Buffer.concat(pax));
          pax = null;
        }
        continue;
      }
      if (paddingLeft > 0) {
        const n = Math.min(paddingLeft, chunk.length - pos);
        paddingLeft -= n;
        pos += n;
        continue;
      }

      let header: Uint8Array;
      let split = false;
      if (partial === null && chunk.length - pos >= BLOCK) {
        header = chunk.subarray(pos, pos + BLOCK);
        pos += BLOCK;
      } else {
        // Held back until complete: it may be the end-of-archive, which must not go out.
        if (pos > from) yield chunk.subarray(from, pos);
        partial ??= Buffer.alloc(BLOCK);
        const n = Math.min(BLOCK - partialLength, chunk.length - pos);
        partial.set(chunk.subarray(pos, pos + n), partialLength);
        partialLength += n;
        pos += n;
        from = pos;
        if (partialLength < BLOCK) continue;
        header = partial;
        split = true;
        partial = null;
        partialLength = 0;
      }

      if (isZero(header)) {
        if (!split && pos - BLOCK > from) yield chunk.subarray(from, pos - BLOCK);
        requireZeros(chunk, pos);
        ended = true;
        trailer = BLOCK + chunk.length - pos;
        from = pos = chunk.length;
        break;
      }
      requireChecksum(header, total - chunk.length + pos - BLOCK);
      if (header[TYPEFLAG_OFFSET] === TYPEFLAG_EXTENDED) {
        contentLeft = headerSize(header);
        if (contentLeft > MAX_PAX_HEADER) throw new TarSpliceError(`git archive wrote a pax header of ${contentLeft} bytes`);
        pax = contentLeft > 0 ? [] : null;
      } else {
        contentLeft = sizeOverride ?? headerSize(header);
        sizeOverride = null;
      }
      paddingLeft = paddingFor(contentLeft);
      if (split) yield header;
    }
    if (pos > from) yield chunk.subarray(from, pos);
  }

  if (!ended) {
    const where = partialLength > 0 || contentLeft > 0 || paddingLeft > 0 ? 'inside an entry' : 'before its end-of-archive';
    throw new TarSpliceError(`git archive's tar stream ended ${where} (after ${total} bytes)`);
  }
  if (trailer < 2 * BLOCK || total % BLOCK !== 0) throw new TarSpliceError(`git archive's tar stream ended inside its end-of-archive (after ${total} bytes)`);
}

/** The header blocks of one appended entry: a pax 'x' header when needed, then the ustar header. */
function entryHeaders(entry: AppendedTarEntry, mtime: number): Buffer {
  const path = Buffer.from(entry.path, 'utf8');
  if (path.length === 0 || path.includes(0) || path[path.length - 1] === 0x2f) throw new RangeError(`bad tar entry path ${JSON.stringify(entry.path)}`);
  if (!Number.isInteger(entry.mode) || entry.mode < 0 || entry.mode > 0o7777) throw new RangeError(`bad tar entry mode ${entry.mode} for ${entry.path}`);
  if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw new RangeError(`bad tar entry size ${entry.size} for ${entry.path}`);

  // git names pax headers and unsplittable paths after the blob id; we have none, so the path's hash stands in.
  const stand = () => createHash('sha1').update(path).digest('hex');
  const records: Buffer[] = [];
  let name: Uint8Array = path;
  let prefix: Uint8Array = Buffer.alloc(0);
  if (path.length > NAME_LENGTH) {
    const prefixLength = pathPrefix(path, PREFIX_LENGTH);
    const rest = path.length - prefixLength - 1;
    if (prefixLength > 0 && rest <= NAME_LENGTH) {
      prefix = path.subarray(0, prefixLength);
      name = path.subarray(prefixLength + 1);
    } else {
      name = Buffer.from(`${stand()}.data`, 'latin1');
      records.push(paxRecord('path', path));
    }
  }
  let sizeInHeader = entry.size;
  if (entry.size > USTAR_MAX) {
    sizeInHeader = 0;
    records.push(paxRecord('size', Buffer.from(String(entry.size), 'latin1')));
  }

  const file = ustarHeader(name, prefix, entry.mode, sizeInHeader, mtime, 0x30 /* '0' */);
  if (records.length === 0) return file;
  const extended = Buffer.concat(records);
  const paxName = Buffer.from(`${stand()}.paxheader`, 'latin1');
  return Buffer.concat([ustarHeader(paxName, Buffer.alloc(0), 0o666, extended.length, mtime, TYPEFLAG_EXTENDED), extended, Buffer.alloc(paddingFor(extended.length)), file]);
}

/** A ustar header as git's prepare_header writes one. */
function ustarHeader(name: Uint8Array, prefix: Uint8Array, mode: number, size: number, mtime: number, typeflag: number): Buffer {
  const header = Buffer.alloc(BLOCK);
  header.set(name, 0);
  writeOctal(header, 100, 8, mode);
  writeOctal(header, 108, 8, 0); // uid
  writeOctal(header, 116, 8, 0); // gid
  writeOctal(header, 124, 12, size);
  writeOctal(header, 136, 12, mtime);
  header[TYPEFLAG_OFFSET] = typeflag;
  header.write('ustar\0', 257, 'latin1');
  header.write('00', 263, 'latin1');
  header.write('root', 265, 'latin1'); // uname
  header.write('root', 297, 'latin1'); // gname
  writeOctal(header, 329, 8, 0); // devmajor
  writeOctal(header, 337, 8, 0); // devminor
  header.set(prefix, 345);
  writeOctal(header, CHECKSUM_OFFSET, CHECKSUM_LENGTH, checksum(header));
  return header;
}

/** Zero-padded octal filling the field but its last byte, which stays NUL (git's "%07o", "%011o"). */
function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  const digits = value.toString(8).padStart(length - 1, '0');
  if (digits.length > length - 1) throw new RangeError(`${value} does not fit a ${length}-byte tar field`);
  header.write(digits, offset, 'latin1');
}

/**
 * git's get_path_prefix: the length of the longest leading part of `path`, shorter than
 * `max`, that ends before a '/' (0 when there is none).
 */
function pathPrefix(path: Uint8Array, max: number): number {
  let i = path.length;
  if (i > 1 && path[i - 1] === 0x2f) i--;
  if (i > max) i = max;
  do i--;
  while (i > 0 && path[i] !== 0x2f);
  return i;
}

/** One pax record, "<length> key=value\n", where the length counts its own digits. */
function paxRecord(key: string, value: Uint8Array): Buffer {
  const body = 1 + key.length + 1 + value.length + 1;
  let length = body + 1;
  while (body + String(length).length !== length) length = body + String(length).length;
  return Buffer.concat([Buffer.from(`${length} ${key}=`, 'latin1'), value, Buffer.from('\n', 'latin1')]);
}

/** The size= record of a pax 'x' header, or null when it has none. */
function paxSize(records: Buffer): number | null {
  let size: number | null = null;
  let pos = 0;
  while (pos < records.length) {
    const space = records.indexOf(SPACE, pos);
    const lengthText = space < 0 ? '' : records.toString('latin1', pos, space);
    const length = /^[0-9]{1,8}$/.test(lengthText) ? Number(lengthText) : NaN;
    if (!(length > space - pos + 1) || pos + length > records.length || records[pos + length - 1] !== 0x0a) throw new TarSpliceError('git archive wrote a malformed pax header');
    const record = records.toString('latin1', space + 1, pos + length - 1);
    if (record.startsWith('size=')) {
      const value = record.slice(5);
      if (!/^[0-9]{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) throw new TarSpliceError(`git archive wrote a bad pax size ${JSON.stringify(value)}`);
      size = Number(value);
    }
    pos += length;
  }
  return size;
}

/** The size field: octal digits (optionally space-led, NUL- or space-ended), or base-256. */
function headerSize(header: Uint8Array): number {
  const field = header.subarray(124, 136);
  if ((field[0]! & 0x80) !== 0) {
    if (field[0] === 0xff) throw new TarSpliceError('git archive wrote a negative entry size');
    let value = field[0]! & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    if (!Number.isSafeInteger(value)) throw new TarSpliceError('git archive wrote an entry size too large to handle');
    return value;
  }
  const value = parseOctal(field);
  if (value === null) throw new TarSpliceError(`git archive wrote a bad entry size ${JSON.stringify(Buffer.from(field).toString('latin1'))}`);
  return value;
}

function parseOctal(field: Uint8Array): number | null {
  let i = 0;
  while (i < field.length && field[i] === SPACE) i++;
  const start = i;
  let value = 0;
  for (; i < field.length && field[i]! >= 0x30 && field[i]! <= 0x37; i++) value = value * 8 + field[i]! - 0x30;
  if (i === start) return null;
  for (; i < field.length; i++) if (field[i] !== 0 && field[i] !== SPACE) return null;
  return value;
}

/** POSIX: the unsigned sum of the header's bytes with the checksum field taken as spaces. */
function checksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= CHECKSUM_OFFSET && i < CHECKSUM_OFFSET + CHECKSUM_LENGTH ? SPACE : header[i]!;
  return sum;
}

/** A block that is not a header (misread size, corruption) is caught here rather than passed on. */
function requireChecksum(header: Uint8Array, offset: number): void {
  const stored = parseOctal(header.subarray(CHECKSUM_OFFSET, CHECKSUM_OFFSET + CHECKSUM_LENGTH));
  if (stored !== null && stored === checksum(header)) return;
  // Old tars summed signed bytes; accept that too.
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) signed += i >= CHECKSUM_OFFSET && i < CHECKSUM_OFFSET + CHECKSUM_LENGTH ? SPACE : (header[i]! << 24) >> 24;
  if (stored !== null && stored === signed) return;
  throw new TarSpliceError(`git archive's tar stream has a bad header checksum at byte ${offset}`);
}

function requireZeros(chunk: Uint8Array, from: number): void {
  for (let i = from; i < chunk.length; i++) if (chunk[i] !== 0) throw new TarSpliceError("git archive's tar stream has data after its end-of-archive");
}

function isZero(block: Uint8Array): boolean {
  for (const byte of block) if (byte !== 0) return false;
  return true;
}

function paddingFor(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** The commit time, clamped as git clamps it (git's pax global header then carries the real one). */
function headerMtime(seconds: number): number {
  if (!Number.isSafeInteger(seconds) || seconds < 0) throw new RangeError(`bad tar mtime ${seconds}`);
  return Math.min(seconds, USTAR_MAX);
}
