import { GroveApiError } from './errors.ts';
import { buffered, conditionalHeaders, fileStreamOf, repoPath, type ByteRange, type FileMeta, type FileStream } from './contents.ts';
import { seg, type Transport } from './transport.ts';
import { Chunker } from './chunker.ts';

export interface BlobReadOptions {
  /** Only these bytes (answered 206). */
  range?: ByteRange;
  /** An ETag from an earlier read: answers `notModified` when it still matches (a blob never changes). */
  ifNoneMatch?: string;
  signal?: AbortSignal;
}

export interface BlobContent extends FileMeta {
  bytes: Uint8Array;
}

export interface BlobInfo {
  oid: string;
  size: number;
  etag: string;
}

export interface DownloadOptions {
  /** Start at this offset (resume a download that already has these bytes). */
  start?: number;
  /** Reconnections after a dropped connection, each resuming where the bytes stopped (default 3). */
  retries?: number;
  signal?: AbortSignal;
}

/** A big blob's chunks as the server's chunk store cut them (`grove.blobs.chunks`). */
export interface ChunkListing {
  oid: string;
  size: number;
  chunks: Array<{ hash: string; offset: number; length: number }>;
}

/** An older version of a blob the caller holds (a file, a buffer): what `downloadReusing` copies chunks from. */
export interface LocalBytes {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** A piece of a reconstructed blob, and where it came from. */
export interface ReusedPiece {
  bytes: Uint8Array;
  /** True when the bytes came from the local copy, false when they were downloaded. */
  reused: boolean;
}

/** How much of `previous` is read at a time while it is chunked. */
const LOCAL_READ_BYTES = 1024 * 1024;
/** The most one Range request of `downloadReusing` asks for (it is buffered to check each chunk's hash). */
const RUN_BYTES = 8 * 1024 * 1024;

/** `grove.blobs`: blobs by object id — ranges, sizes, and downloads that resume. */
export class Blobs {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  /** The blob's size and ETag (a HEAD request: no bytes move). */
  async stat(org: string, repo: string, oid: string, options: { signal?: AbortSignal } = {}): Promise<BlobInfo> {
    const response = await this.#http.raw('HEAD', blobPath(org, repo, oid), options.signal ? { signal: options.signal } : {});
    return { oid, size: Number(response.headers.get('content-length')), etag: response.headers.get('etag') ?? `"${oid}"` };
  }

  /** The blob (or one range of it) as a stream; nothing is buffered. */
  async open(org: string, repo: string, oid: string, options: BlobReadOptions = {}): Promise<FileStream> {
    const response = await this.#http.raw('GET', blobPath(org, repo, oid), { headers: conditionalHeaders(options), allow: [304], ...(options.signal ? { signal: options.signal } : {}) });
    return fileStreamOf(response);
  }

  /** The blob (or one range of it), buffered: for ranges and small blobs; see download() for big ones. */
  async read(org: string, repo: string, oid: string, options: BlobReadOptions = {}): Promise<BlobContent> {
    return buffered(await this.open(org, repo, oid, options));
  }

  /** A big blob's chunks (SHA-256, offset, length); 422 for a blob under 50 MiB. */
  async chunks(org: string, repo: string, oid: string): Promise<ChunkListing> {
    return this.#http.request<ChunkListing>('GET', `${blobPath(org, repo, oid)}/chunks`);
  }

  /**
   * The blob's bytes, in order, taking every chunk it shares with `previous` (an older
   * version the caller holds) from there and downloading only the rest, in one Range
   * request per run of missing chunks (at most 8 MiB each, so memory stays bounded).
   * Downloaded chunks are checked against the listing's SHA-256; a mismatch throws.
   */
  async *downloadReusing(org: string, repo: string, oid: string, previous: LocalBytes, options: { signal?: AbortSignal } = {}): AsyncGenerator<ReusedPiece> {
    const listing = await this.chunks(org, repo, oid);
    const local = await chunkIndex(previous);
    const chunks = listing.chunks;
    for (let i = 0; i < chunks.length;) {
      const have = local.get(chunks[i]!.hash);
      if (have !== undefined) {
        yield { bytes: await previous.read(have.offset, have.length), reused: true };
        i++;
        continue;
      }
      // A run of missing chunks, in one Range request of at most RUN_BYTES (memory stays bounded).
      let last = i;
      while (last + 1 < chunks.length && !local.has(chunks[last + 1]!.hash) && chunks[last + 1]!.offset + chunks[last + 1]!.length - chunks[i]!.offset <= RUN_BYTES) last++;
      const start = chunks[i]!.offset;
      const end = chunks[last]!.offset + chunks[last]!.length - 1;
      const { bytes } = await this.read(org, repo, oid, { range: { start, end }, ...(options.signal ? { signal: options.signal } : {}) });
      for (let j = i; j <= last; j++) {
        const chunk = bytes.subarray(chunks[j]!.offset - start, chunks[j]!.offset - start + chunks[j]!.length);
        if (await sha256(chunk) !== chunks[j]!.hash) throw new Error(`chunk ${j} of blob ${oid} does not match its listing`);
        yield { bytes: chunk, reused: false };
      }
      i = last + 1;
    }
  }

  /**
   * The blob's bytes from `start` to its end, chunk by chunk. A dropped connection is
   * resumed with a Range from the first byte not yet yielded (If-Range on the ETag), so
   * the caller sees every byte once, in order.
   */
  async *download(org: string, repo: string, oid: string, options: DownloadOptions = {}): AsyncGenerator<Uint8Array> {
    let offset = options.start ?? 0;
    let retriesLeft = options.retries ?? 3;
    let size: number | null = null;
    while (size === null || offset < size) {
      const headers: Record<string, string> = { range: `bytes=${offset}-`, 'if-range': `"${oid}"` };
      let response: Response;
      try {
        response = await this.#http.raw('GET', blobPath(org, repo, oid), { headers, allow: [416], ...(options.signal ? { signal: options.signal } : {}) });
      } catch (error) {
        if (error instanceof GroveApiError || options.signal?.aborted || retriesLeft-- <= 0) throw error;
        continue;
      }
      if (response.status === 416) {
        await response.body?.cancel();
        const total = Number(/\/(\d+)$/.exec(response.headers.get('content-range') ?? '')?.[1] ?? Number.NaN);
        if (total === offset) return; // nothing left: the download was already whole
        throw new GroveApiError(416, 'range_not_satisfiable', `offset ${offset} is past the end of blob ${oid} (${total} bytes)`);
      }
      const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
      size = contentRange ? Number(contentRange[3]) : Number(response.headers.get('content-length'));
      let skip = contentRange ? 0 : offset; // a full answer (200): drop what was already had
      if (response.body === null) return;
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          const part = skip >= chunk.length ? null : chunk.subarray(skip);
          skip = Math.max(0, skip - chunk.length);
          if (part === null) continue;
          offset += part.length;
          yield part;
        }
      } catch (error) {
        if (options.signal?.aborted || retriesLeft-- <= 0) throw error;
      }
    }
  }
}

/** The SHA-256 of `bytes`, hex (WebCrypto: in Node, Deno, Bun and browsers alike). */
async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Where each chunk of `local` is, by SHA-256: `local` read once, in order, cut as the server cuts. */
async function chunkIndex(local: LocalBytes): Promise<Map<string, { offset: number; length: number }>> {
  const chunker = new Chunker();
  const found = new Map<string, { offset: number; length: number }>();
  let pending: Uint8Array[] = [];
  let chunkStart = 0;
  const finish = async (end: number) => {
    const bytes = pending.length === 1 ? pending[0]! : concat(pending);
    found.set(await sha256(bytes), { offset: chunkStart, length: end - chunkStart });
    pending = [];
    chunkStart = end;
  };
  for (let offset = 0; offset < local.size; offset += LOCAL_READ_BYTES) {
    const piece = await local.read(offset, Math.min(LOCAL_READ_BYTES, local.size - offset));
    let from = 0;
    for (const cut of chunker.push(piece)) {
      pending.push(piece.subarray(from, cut));
      await finish(offset + cut);
      from = cut;
    }
    if (from < piece.length) pending.push(piece.subarray(from));
  }
  if (chunker.end()) await finish(local.size);
  return found;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function blobPath(org: string, repo: string, oid: string): string {
  return `${repoPath(org, repo)}/blobs/${seg(oid)}`;
}
