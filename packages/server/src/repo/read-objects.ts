/**
 * Reading a repository for the read API: naming a commit, looking up a path in it,
 * streaming a blob (whole or a byte range), listing a tree, streaming an archive.
 *
 * User strings never reach git's argument list: a ref is looked up in the in-memory
 * ref view and replaced by its object id, full or abbreviated ids are checked to be
 * hex, and `<commit>:<path>` lookups go through `cat-file --batch-check` on stdin
 * (paths with a newline or NUL are refused). Reading a file's bytes is in
 * path-reader.ts.
 */
import { Readable } from 'node:stream';
import { parseLsTreeRecord, type TreeEntry } from '../git/log-format.ts';
import { exitCode, killTree, type GitChild, type GitRunner } from './git-command.ts';
import { findRef, type RefSnapshot } from './ref-snapshot.ts';

export type ObjectType = 'blob' | 'tree' | 'commit' | 'tag';

export interface ObjectInfo {
  readonly oid: string;
  readonly type: ObjectType;
  readonly size: number;
}

/** The tree of no files; git knows it without storing it. */
export const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

const FULL_OID = /^[0-9a-f]{40}$/;
const SHORT_OID = /^[0-9a-f]{4,39}$/;

/**
 * What `ref` names, as an object id (or an abbreviated one) that is safe to hand to
 * git: a full id; a branch, tag or full ref name from the snapshot; HEAD; or an
 * abbreviated id. Null when it names nothing.
 */
export function revisionOf(snapshot: RefSnapshot, ref: string): string | null {
  if (FULL_OID.test(ref)) return ref;
  const candidates = ref === 'HEAD' ? (snapshot.head ? [snapshot.head.target] : []) : ref.startsWith('refs/') ? [ref] : [`refs/heads/${ref}`, `refs/tags/${ref}`];
  for (const name of candidates) {
    const entry = findRef(snapshot, name);
    if (entry !== undefined) return entry.oid;
  }
  return SHORT_OID.test(ref) ? ref : null;
}

const CHECK_LINE = /^([0-9a-f]{40}) (blob|tree|commit|tag) (\d+)$/;

/** `git cat-file --batch-check` for each name (one process); null for a missing or ambiguous name. */
export async function batchCheck(git: GitRunner, gitDir: string, names: readonly string[], signal?: AbortSignal): Promise<(ObjectInfo | null)[]> {
  for (const name of names) if (/[\n\0]/.test(name)) throw new Error('object names cannot contain a newline or NUL');
  const out = await git.check(['cat-file', '--batch-check=%(objectname) %(objecttype) %(objectsize)'], {
    gitDir,
    input: names.map((name) => `${name}\n`).join(''),
    ...(signal ? { signal } : {}),
  });
  const lines = out.toString('utf8').split('\n');
  return names.map((_, i) => {
    const match = CHECK_LINE.exec(lines[i] ?? '');
    return match ? { oid: match[1]!, type: match[2] as ObjectType, size: Number(match[3]) } : null;
  });
}

export interface Resolved {
  /** The commit the revision names. */
  readonly commit: string;
  /** The object at each requested path of that commit ('' is the root tree), null when absent. */
  readonly objects: (ObjectInfo | null)[];
}

/** Resolves a revision (see revisionOf) to a commit and looks up paths in it, with one git process. */
export async function resolveRevision(git: GitRunner, gitDir: string, revision: string, paths: readonly string[] = [], signal?: AbortSignal): Promise<Resolved | null> {
  if (!FULL_OID.test(revision) && !SHORT_OID.test(revision)) return null;
  const [commit, ...objects] = await batchCheck(git, gitDir, [`${revision}^{commit}`, ...paths.map((p) => `${revision}^{commit}:${p}`)], signal);
  if (commit === null || commit === undefined || commit.type !== 'commit') return null;
  return { commit: commit.oid, objects };
}

export interface ByteRange {
  readonly start: number;
  /** Inclusive. */
  readonly end: number;
}

/** A child's stdout as a stream; its end or destruction kills the child, a failed exit errors it. */
export function stdoutStream(child: GitChild): Readable {
  return Readable.from(passThrough(child), { objectMode: false });
}

async function* passThrough(child: GitChild): AsyncGenerator<Buffer> {
  const exited = exitCode(child);
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
    const code = await exited;
    if (code !== 0) throw new Error(`git exited with ${code}`);
  } finally {
    killTree(child);
  }
}

/**
 * Streams a command's output split on `separator` (newline or NUL), the separator
 * removed. Returning early from the loop kills git.
 */
export async function* records(child: GitChild, separator: 0x0a | 0x00): AsyncGenerator<string> {
  const exited = exitCode(child);
  let pending: Buffer[] = [];
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      let start = 0;
      let at = chunk.indexOf(separator, start);
      while (at !== -1) {
        pending.push(chunk.subarray(start, at));
        yield Buffer.concat(pending).toString('utf8');
        pending = [];
        start = at + 1;
        at = chunk.indexOf(separator, start);
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
    }
    if (pending.length > 0) yield Buffer.concat(pending).toString('utf8');
    const code = await exited;
    if (code !== 0) throw new GitExitError(code, stderrOf(child));
  } finally {
    killTree(child);
  }
}

export class GitExitError extends Error {
  override name = 'GitExitError';
  readonly code: number;
  readonly stderr: string;
  constructor(code: number, stderr: string) {
    super(`git exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`);
    this.code = code;
    this.stderr = stderr;
  }
}

/** Collects (a bounded amount of) a child's stderr; call right after spawning. */
export function collectStderr(child: GitChild): void {
  const chunks: Buffer[] = [];
  let size = 0;
  child.stderr.on('data', (chunk: Buffer) => {
    if (size < 64 * 1024) chunks.push(chunk);
    size += chunk.length;
  });
  stderrs.set(child, chunks);
}

const stderrs = new WeakMap<GitChild, Buffer[]>();

function stderrOf(child: GitChild): string {
  return Buffer.concat(stderrs.get(child) ?? []).toString('utf8');
}

export interface TreeListing {
  readonly entries: TreeEntry[];
  /** True when the listing stopped at `max` entries. */
  readonly truncated: boolean;
}

/** `git ls-tree -l -z [-r -t] <tree>`: entries with full paths under `prefix`, at most `max`. */
export async function listTree(git: GitRunner, gitDir: string, tree: string, prefix: string, options: { recursive: boolean; max: number; signal?: AbortSignal }): Promise<TreeListing> {
  if (!FULL_OID.test(tree)) throw new Error('listTree needs a full object id');
  const child = await git.spawn(['ls-tree', '-l', '-z', ...(options.recursive ? ['-r', '-t'] : []), tree], { gitDir, ...(options.signal ? { signal: options.signal } : {}) });
  child.stdin.end();
  collectStderr(child);
  const entries: TreeEntry[] = [];
  for await (const record of records(child, 0x00)) {
    if (record === '') continue;
    if (entries.length === options.max) return { entries, truncated: true };
    const entry = parseLsTreeRecord(record, prefix);
    if (entry !== null) entries.push(entry);
  }
  return { entries, truncated: false };
}

export type ArchiveFormat = 'tar.gz' | 'zip';

/** `git archive` of a commit, streamed; every path under `prefix/`. Destroying the stream kills git. */
export async function streamArchive(git: GitRunner, gitDir: string, commit: string, format: ArchiveFormat, prefix: string, signal?: AbortSignal): Promise<Readable> {
  if (!FULL_OID.test(commit)) throw new Error('streamArchive needs a full object id');
  if (!/^[A-Za-z0-9._-]+$/.test(prefix)) throw new Error('unsafe archive prefix');
  const child = await git.spawn(['archive', `--format=${format}`, `--prefix=${prefix}/`, commit], { gitDir, ...(signal ? { signal } : {}) });
  child.stdin.end();
  child.stderr.resume();
  return stdoutStream(child);
}
