/**
 * The hot path of the read API, a file at a ref, in one git process: `cat-file
 * --batch` is asked for the commit and for `<commit>:<path>`, and the blob's bytes
 * are streamed straight from its output (git streams blobs in batch mode, so a big
 * file is never held in memory, here or in git).
 */
import { Readable } from 'node:stream';
import { exitCode, killTree, type GitChild, type GitRunner } from './git-command.ts';
import type { ByteRange, ObjectInfo, ObjectType } from './read-objects.ts';

const HEADER = /^([0-9a-f]{40}) (blob|tree|commit|tag) (\d+)$/;
const REVISION = /^[0-9a-f]{4,40}$/;

export interface PathRead {
  /** The commit the revision names; null when it names none (nothing else is then set). */
  readonly commit: string | null;
  /** What is at the path; null when nothing is. */
  readonly object: ObjectInfo | null;
  /**
   * For a blob: its bytes (or one range of them), read once. Call exactly once, or
   * call discard(); either way git is gone when the stream ends or is destroyed.
   */
  readonly open: (range: ByteRange | null) => Readable;
  readonly discard: () => void;
  /**
   * The blob at the path when git lacks it (a big blob evicted to the chunk store, read from
   * there): `object` is then null. cat-file names no oid for a missing `<rev>:<path>`, so
   * ls-tree is asked, on this path only.
   */
  readonly lacking?: string;
}

/** Reads `<revision>^{commit}` and `<revision>^{commit}:<path>` ('' is the root tree) with one `cat-file --batch`. */
export async function readPath(git: GitRunner, gitDir: string, revision: string, path: string, signal?: AbortSignal): Promise<PathRead> {
  if (!REVISION.test(revision)) throw new Error('readPath needs a hex revision');
  if (/[\n\0]/.test(path)) throw new Error('paths cannot contain a newline or NUL');
  const child = await git.spawn(['cat-file', '--batch'], { gitDir, ...(signal ? { signal } : {}) });
  child.stdin.end(`${revision}^{commit}\n${revision}^{commit}:${path}\n`);
  child.stderr.resume();
  const reader = new OutputReader(child);
  const discard = () => reader.close();
  const none = { open: () => { throw new Error('no blob to open'); }, discard };
  try {
    const commit = parseHeader(await reader.line());
    if (commit === null || commit.type !== 'commit') {
      discard();
      return { commit: null, object: null, ...none };
    }
    await reader.skip(commit.size + 1);
    const line = await reader.line();
    const object = parseHeader(line);
    if (object === null && line !== null && line.endsWith(' missing') && path !== '') {
      discard();
      const lacking = await blobAtPath(git, gitDir, commit.oid, path, signal);
      return { commit: commit.oid, object: null, ...none, ...(lacking !== null ? { lacking } : {}) };
    }
    if (object === null || object.type !== 'blob') {
      discard();
      return { commit: commit.oid, object, ...none };
    }
    return { commit: commit.oid, object, open: opener(reader, object), discard };
  } catch (error) {
    discard();
    throw error;
  }
}

/** The oid of the blob at `path` in the commit's tree, from the trees alone (null when there is none). */
export async function blobAtPath(git: GitRunner, gitDir: string, commit: string, path: string, signal: AbortSignal | undefined): Promise<string | null> {
  const out = (await git.check(['ls-tree', '-z', '--full-tree', commit, '--', path], { gitDir, ...(signal ? { signal } : {}) })).toString('utf8');
  const match = /^\d+ blob ([0-9a-f]{40})\t(.*)$/s.exec(out.split('\0')[0] ?? '');
  return match !== null && match[2] === path ? match[1]! : null;
}

/** A blob by its object id, from the repository's objects (its network: alternates included). */
export async function readBlob(git: GitRunner, gitDir: string, oid: string, signal?: AbortSignal): Promise<Pick<PathRead, 'object' | 'open' | 'discard'>> {
  if (!/^[0-9a-f]{40}$/.test(oid)) throw new Error('readBlob needs a full object id');
  const child = await git.spawn(['cat-file', '--batch'], { gitDir, ...(signal ? { signal } : {}) });
  child.stdin.end(`${oid}\n`);
  child.stderr.resume();
  const reader = new OutputReader(child);
  const discard = () => reader.close();
  try {
    const object = parseHeader(await reader.line());
    if (object === null || object.type !== 'blob') {
      discard();
      return { object, open: () => { throw new Error('no blob to open'); }, discard };
    }
    return { object, open: opener(reader, object), discard };
  } catch (error) {
    discard();
    throw error;
  }
}

function opener(reader: OutputReader, object: ObjectInfo): (range: ByteRange | null) => Readable {
  let opened = false;
  return (range) => {
    if (opened) throw new Error('the blob was already opened');
    opened = true;
    return Readable.from(reader.body(object.size, range), { objectMode: false });
  };
}

function parseHeader(line: string | null): ObjectInfo | null {
  const match = line === null ? null : HEADER.exec(line);
  return match ? { oid: match[1]!, type: match[2] as ObjectType, size: Number(match[3]) } : null;
}

/** Pulls from a child's stdout: lines, skipped bytes, then a counted body as a stream. */
class OutputReader {
  readonly #child: GitChild;
  readonly #chunks: AsyncIterator<Buffer>;
  #buffer: Buffer = Buffer.alloc(0);
  #done = false;

  constructor(child: GitChild) {
    this.#child = child;
    this.#chunks = (child.stdout as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    const next = await this.#chunks.next();
    if (next.done) {
      this.#done = true;
      return false;
    }
    this.#buffer = this.#buffer.length === 0 ? next.value : Buffer.concat([this.#buffer, next.value]);
    return true;
  }

  /** The next line without its newline; null at the end of the output. */
  async line(): Promise<string | null> {
    for (;;) {
      const at = this.#buffer.indexOf(0x0a);
      if (at !== -1) {
        const line = this.#buffer.subarray(0, at).toString('utf8');
        this.#buffer = this.#buffer.subarray(at + 1);
        return line;
      }
      if (this.#buffer.length > 64 * 1024 || !(await this.#fill())) return null;
    }
  }

  async skip(bytes: number): Promise<void> {
    let left = bytes;
    for (;;) {
      const take = Math.min(left, this.#buffer.length);
      this.#buffer = this.#buffer.subarray(take);
      left -= take;
      if (left === 0) return;
      if (!(await this.#fill())) throw new Error('git cat-file output ended early');
    }
  }

  /** `size` bytes of object content (or the part of them in `range`), then git is stopped. */
  async *body(size: number, range: ByteRange | null): AsyncGenerator<Buffer> {
    const start = range?.start ?? 0;
    const end = range === null ? size : range.end + 1; // exclusive
    let offset = 0;
    try {
      while (offset < end) {
        if (this.#buffer.length === 0 && !(await this.#fill())) throw new Error(`git cat-file output ended after ${offset} of ${size} bytes`);
        const chunk = this.#buffer.subarray(0, Math.min(this.#buffer.length, end - offset));
        this.#buffer = this.#buffer.subarray(chunk.length);
        const from = Math.max(start - offset, 0);
        offset += chunk.length;
        if (from < chunk.length) yield chunk.subarray(from);
      }
    } finally {
      this.close();
    }
  }

  close(): void {
    killTree(this.#child);
    void exitCode(this.#child);
    void this.#chunks.return?.();
  }
}
