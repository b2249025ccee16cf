import { GroveApiError } from './errors.ts';
import { buffered, conditionalHeaders, fileStreamOf, repoPath, type ByteRange, type FileMeta, type FileStream } from './contents.ts';
import { seg, type Transport } from './transport.ts';

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

function blobPath(org: string, repo: string, oid: string): string {
  return `${repoPath(org, repo)}/blobs/${seg(oid)}`;
}
