import { GroveApiError } from './errors.ts';
import { seg, segs, type Transport } from './transport.ts';
import type { Page } from './types.ts';

export interface CommitSignature {
  name: string;
  email: string;
  /** ISO 8601 with the original offset. */
  date: string;
}

export interface CommitInfo {
  sha: string;
  parents: string[];
  tree: string;
  message: string;
  author: CommitSignature;
  committer: CommitSignature;
}

export type ChangeStatus = 'added' | 'modified' | 'deleted' | 'renamed' | 'copied' | 'typechange';

export interface ChangedFile {
  path: string;
  /** The path before a rename or copy. */
  previousPath?: string;
  status: ChangeStatus;
  additions: number;
  deletions: number;
  binary: boolean;
  /** Binary files: the size in bytes before the change (absent when the file was added). */
  oldSize?: number;
  /** Binary files: the size in bytes after the change (absent when the file was deleted). */
  newSize?: number;
}

/** A commit and the files it changed against its first parent. */
export interface CommitDetail extends CommitInfo {
  files: ChangedFile[];
  /** True when more files changed than are listed. */
  truncated: boolean;
}

export interface TreeEntry {
  name: string;
  /** From the repository root. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'submodule';
  mode: string;
  sha: string;
  /** Bytes, for files and symlinks. */
  size?: number;
}

export interface DirectoryListing {
  type: 'dir';
  path: string;
  ref: string;
  /** The commit read. */
  sha: string;
  entries: TreeEntry[];
  truncated: boolean;
}

export interface TreeListing {
  ref: string;
  sha: string;
  path: string;
  entries: TreeEntry[];
  truncated: boolean;
}

export interface BlameRange {
  /** First line, 1-based. */
  start: number;
  lines: number;
  commit: { sha: string; author: { name: string; email: string }; date: string; summary: string };
}

export interface Blame {
  path: string;
  ref: string;
  sha: string;
  ranges: BlameRange[];
}

export interface ReadOptions {
  /** Branch, tag or commit sha; the default branch when left out. */
  ref?: string;
}

/** One byte range: `{start, end?}` (end inclusive) or the last `suffix` bytes. */
export type ByteRange = { start: number; end?: number } | { suffix: number };

function rangeHeader(range: ByteRange): string {
  return 'suffix' in range ? `bytes=-${range.suffix}` : `bytes=${range.start}-${range.end ?? ''}`;
}

/** `If-None-Match` and `Range` for a read of bytes (a file or a blob). */
export function conditionalHeaders(options: { ifNoneMatch?: string; range?: ByteRange }): Record<string, string> {
  const headers: Record<string, string> = {};
  if (options.ifNoneMatch !== undefined) headers['if-none-match'] = options.ifNoneMatch;
  if (options.range !== undefined) headers.range = rangeHeader(options.range);
  return headers;
}

/** What an answer of bytes (200, 206 or 304) says about them, and its body unread. */
export function fileStreamOf(response: Response): FileStream {
  const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
  const length = response.headers.get('content-length');
  return {
    status: response.status,
    notModified: response.status === 304,
    etag: response.headers.get('etag'),
    commit: response.headers.get('x-grove-commit'),
    contentType: response.headers.get('content-type'),
    size: contentRange ? Number(contentRange[3]) : response.status === 200 && length !== null ? Number(length) : null,
    range: contentRange ? { start: Number(contentRange[1]), end: Number(contentRange[2]) } : null,
    body: response.status === 304 ? null : response.body,
  };
}

/** A byte stream read whole. */
export async function buffered(stream: FileStream): Promise<FileContent> {
  const { body, ...meta } = stream;
  const bytes = body === null ? new Uint8Array(0) : new Uint8Array(await new Response(body).arrayBuffer());
  return { ...meta, bytes };
}

export interface FileOptions extends ReadOptions {
  /** An ETag from an earlier read: answers `notModified` instead of the bytes when it still matches. */
  ifNoneMatch?: string;
  range?: ByteRange;
}

export interface FileMeta {
  /** 200, 206 (a range) or 304 (not modified). */
  status: number;
  notModified: boolean;
  /** `"<blob sha>"`, quotes included, as sent in ETag. */
  etag: string | null;
  /** The commit the file was read from. */
  commit: string | null;
  contentType: string | null;
  /** The whole file's size (also for a range), when known. */
  size: number | null;
  /** The bytes returned, for a 206. */
  range: { start: number; end: number } | null;
}

export interface FileContent extends FileMeta {
  bytes: Uint8Array;
}

export interface FileStream extends FileMeta {
  /** Null for a 304. */
  body: ReadableStream<Uint8Array> | null;
}

/** `grove.contents`: files, trees, history, blame and archives of a repository, without a clone. */
export class Contents {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  /** A file's bytes (buffered; see openFile for a stream). Throws `not_a_file` for a directory. */
  async getFile(org: string, repo: string, path: string, options: FileOptions = {}): Promise<FileContent> {
    return buffered(await this.openFile(org, repo, path, options));
  }

  /** A file as UTF-8 text. */
  async getText(org: string, repo: string, path: string, options: ReadOptions = {}): Promise<string> {
    const file = await this.getFile(org, repo, path, options);
    return new TextDecoder().decode(file.bytes);
  }

  /** A file as a stream of bytes: nothing is buffered, for files of any size. */
  async openFile(org: string, repo: string, path: string, options: FileOptions = {}): Promise<FileStream> {
    const headers = conditionalHeaders(options);
    const response = await this.#http.raw('GET', `${repoPath(org, repo)}/contents/${segs(path)}`, { query: { ref: options.ref }, headers, allow: [304] });
    const contentType = response.headers.get('content-type');
    if (response.status !== 304 && contentType?.startsWith('application/json')) {
      await response.body?.cancel();
      throw new GroveApiError(response.status, 'not_a_file', `${path || '/'} is a directory: use contents.list`);
    }
    return fileStreamOf(response);
  }

  /** One directory's entries ('' is the root). Throws `not_a_directory` for a file. */
  async list(org: string, repo: string, path = '', options: ReadOptions = {}): Promise<DirectoryListing> {
    const response = await this.#http.raw('GET', `${repoPath(org, repo)}/contents/${segs(path)}`, { query: { ref: options.ref }, headers: { accept: 'application/json' } });
    if (!response.headers.get('content-type')?.startsWith('application/json')) {
      await response.body?.cancel();
      throw new GroveApiError(response.status, 'not_a_directory', `${path} is a file: use contents.getFile`);
    }
    return (await response.json()) as DirectoryListing;
  }

  /** The tree at a ref: one directory, or everything below it with `recursive`. */
  tree(org: string, repo: string, ref: string, options: { path?: string; recursive?: boolean; limit?: number } = {}): Promise<TreeListing> {
    return this.#http.request('GET', `${repoPath(org, repo)}/tree/${segs(ref)}`, { query: { path: options.path, recursive: options.recursive === undefined ? undefined : String(options.recursive), limit: options.limit } });
  }

  /** Commits reachable from a ref, newest first; with `path`, only those that change it. */
  commits(org: string, repo: string, options: ReadOptions & { path?: string; limit?: number; cursor?: string } = {}): Promise<Page<CommitInfo>> {
    return this.#http.request('GET', `${repoPath(org, repo)}/commits`, { query: { ref: options.ref, path: options.path, limit: options.limit, cursor: options.cursor } });
  }

  /** Every commit of commits(), page by page. */
  async *allCommits(org: string, repo: string, options: ReadOptions & { path?: string; pageSize?: number } = {}): AsyncGenerator<CommitInfo> {
    let cursor: string | undefined;
    do {
      const page = await this.commits(org, repo, { ...(options.ref ? { ref: options.ref } : {}), ...(options.path ? { path: options.path } : {}), limit: options.pageSize ?? 1000, ...(cursor ? { cursor } : {}) });
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }

  /** One commit (sha, abbreviated sha, branch or tag) and the files it changed. */
  commit(org: string, repo: string, sha: string): Promise<CommitDetail> {
    return this.#http.request('GET', `${repoPath(org, repo)}/commits/${seg(sha)}`);
  }

  blame(org: string, repo: string, path: string, options: ReadOptions = {}): Promise<Blame> {
    return this.#http.request('GET', `${repoPath(org, repo)}/blame/${segs(path)}`, { query: { ref: options.ref } });
  }

  /** The files of a ref as a .tar.gz (or .zip) stream. */
  async archive(org: string, repo: string, ref: string, options: { format?: 'tar.gz' | 'zip' } = {}): Promise<ReadableStream<Uint8Array>> {
    const response = await this.#http.raw('GET', `${repoPath(org, repo)}/archive/${segs(ref)}.${options.format ?? 'tar.gz'}`);
    if (response.body === null) throw new GroveApiError(response.status, 'http_error', 'the archive answer has no body');
    return response.body;
  }
}

export function repoPath(org: string, repo: string): string {
  return `/repos/${seg(org)}/${seg(repo)}`;
}
