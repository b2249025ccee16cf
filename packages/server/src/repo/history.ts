/**
 * History reads for the API: commit listings (`git log`), one commit with the files
 * it changed (`git diff-tree` against its first parent) and `git blame`. Every
 * revision given to git here is a full object id resolved by read-objects.ts; paths
 * go after `--` with literal pathspecs (no globs, no `:(magic)`).
 */
import { parseRawNumstat, type FileChange } from '../git/diff-format.ts';
import { BlameParser, COMMIT_FORMAT, parseCommitRecords, type BlameRange, type CommitInfo } from '../git/log-format.ts';
import { GitCommandError, type GitRunner } from './git-command.ts';
import { asBinary, excludingLacking, lackingBlobs, touchesLacking } from './lacking-blobs.ts';
import { batchCheck, collectStderr, EMPTY_TREE, records } from './read-objects.ts';
import { isZeroOid } from '../git/oid.ts';
import { renameFlag, type RenameFlag } from './rename-detection.ts';

const FULL_OID = /^[0-9a-f]{40}$/;

/** Paths are matched literally: `*.ts` or `:(exclude)x` name files, not patterns. */
export const LITERAL_PATHSPECS = { GIT_LITERAL_PATHSPECS: '1' } as const;

function checkOids(oids: readonly string[]): void {
  for (const oid of oids) if (!FULL_OID.test(oid)) throw new Error(`not a full object id: ${JSON.stringify(oid)}`);
}

export interface LogOptions {
  /** Commits to start from. */
  readonly tips: readonly string[];
  /** Commits (and their ancestors) to leave out. */
  readonly exclude?: readonly string[];
  /** Only commits that change this path (history simplified as `git log -- path` does). */
  readonly path?: string;
  readonly skip?: number;
  readonly limit: number;
  readonly signal?: AbortSignal;
}

/** `git log` in its default order: newest first. */
export async function listCommits(git: GitRunner, gitDir: string, options: LogOptions): Promise<CommitInfo[]> {
  const exclude = options.exclude ?? [];
  checkOids([...options.tips, ...exclude]);
  const args = [
    'log', '-z', COMMIT_FORMAT, `--max-count=${options.limit}`, `--skip=${options.skip ?? 0}`,
    '--end-of-options', ...options.tips, ...exclude.map((oid) => `^${oid}`),
    '--', ...(options.path !== undefined && options.path !== '' ? [options.path] : []),
  ];
  const out = await git.check(args, { gitDir, env: LITERAL_PATHSPECS, ...(options.signal ? { signal: options.signal } : {}) });
  return parseCommitRecords(out);
}

/** One commit's metadata, or null when the id is not a commit of this repository. */
export async function readCommit(git: GitRunner, gitDir: string, oid: string, signal?: AbortSignal): Promise<CommitInfo | null> {
  checkOids([oid]);
  const result = await git.run(['log', '-z', COMMIT_FORMAT, '--max-count=1', '--no-walk', '--end-of-options', oid, '--'], { gitDir, ...(signal ? { signal } : {}) });
  if (result.code !== 0) return null;
  return parseCommitRecords(result.stdout)[0] ?? null;
}

/**
 * What changed between two trees or commits (`from` null: the empty tree), with
 * renames found (exact ones only when a big blob is a candidate: rename-detection.ts), as git lists them: status, paths, modes, ids and line counts.
 */
/** Sizes of blobs git lacks (big blobs in the chunk store), for binary changes. */
export type StoredSize = (oid: string) => number | undefined;

export async function listChanges(git: GitRunner, gitDir: string, from: string | null, to: string, signal?: AbortSignal, renameDetection?: RenameFlag, storedSize?: StoredSize): Promise<FileChange[]> {
  checkOids([from ?? EMPTY_TREE, to]);
  const renames = renameDetection ?? (await renameFlag(git, gitDir, from, to, signal));
  const opts = { gitDir, ...(signal ? { signal } : {}) };
  const args = ['diff-tree', '-r', '-z', renames, '--raw', '--numstat', from ?? EMPTY_TREE, to];
  const result = await git.run(args, opts);
  if (result.code === 0) return withBinarySizes(git, gitDir, parseRawNumstat(result.stdout), signal, storedSize);
  // numstat reads every changed blob: where git lacks some (evicted), they are listed from --raw.
  const raw = parseRawNumstat(await git.check(['diff-tree', '-r', '-z', renames, '--raw', from ?? EMPTY_TREE, to], opts));
  const lacking = await lackingBlobs(git, gitDir, raw, signal);
  if (lacking.size === 0) throw new GitCommandError(args, result);
  const counted = parseRawNumstat(await git.check([...args, ...excludingLacking(raw, lacking)], opts));
  const byPath = new Map(counted.map((change) => [change.path, change]));
  const merged = raw.map((change) => (touchesLacking(change, lacking) ? asBinary(change) : (byPath.get(change.path) ?? change)));
  return withBinarySizes(git, gitDir, merged, signal, storedSize);
}

/**
 * Binary files have no line counts, so they carry the sizes of their blobs instead (one
 * `cat-file --batch-check` for all of them; none when nothing is binary). A gitlink has no
 * blob here and gets no size.
 */
async function withBinarySizes(git: GitRunner, gitDir: string, changes: FileChange[], signal?: AbortSignal, storedSize?: StoredSize): Promise<FileChange[]> {
  const oids = new Set<string>();
  for (const change of changes) {
    if (!change.binary) continue;
    for (const oid of [change.oldSha, change.newSha]) if (!isZeroOid(oid)) oids.add(oid);
  }
  if (oids.size === 0) return changes;
  const names = [...oids];
  const sizes = new Map<string, number>();
  (await batchCheck(git, gitDir, names, signal)).forEach((info, i) => {
    const size = info?.type === 'blob' ? info.size : storedSize?.(names[i]!);
    if (size !== undefined) sizes.set(names[i]!, size);
  });
  return changes.map((change) => {
    if (!change.binary) return change;
    const oldSize = sizes.get(change.oldSha);
    const newSize = sizes.get(change.newSha);
    return { ...change, ...(oldSize !== undefined ? { oldSize } : {}), ...(newSize !== undefined ? { newSize } : {}) };
  });
}

/** A commit and the files it changed against its first parent (a root commit: against nothing). */
export async function commitWithChanges(git: GitRunner, gitDir: string, commit: CommitInfo, signal?: AbortSignal, storedSize?: StoredSize): Promise<FileChange[]> {
  return listChanges(git, gitDir, commit.parents[0] ?? null, commit.sha, signal, undefined, storedSize);
}

/** `git blame --porcelain <commit> -- <path>`, streamed through the parser; ranges cover every line. */
export async function blame(git: GitRunner, gitDir: string, commit: string, path: string, signal?: AbortSignal): Promise<BlameRange[]> {
  checkOids([commit]);
  const child = await git.spawn(['blame', '--porcelain', commit, '--', path], { gitDir, ...(signal ? { signal } : {}) });
  child.stdin.end();
  collectStderr(child);
  const parser = new BlameParser();
  for await (const line of records(child, 0x0a)) parser.push(line);
  return parser.ranges();
}

/** The best common ancestor of two commits, or null for unrelated histories. */
export async function mergeBase(git: GitRunner, gitDir: string, a: string, b: string, signal?: AbortSignal): Promise<string | null> {
  checkOids([a, b]);
  const result = await git.run(['merge-base', '--end-of-options', a, b], { gitDir, ...(signal ? { signal } : {}) });
  const oid = result.stdout.toString('utf8').trim();
  if (result.code === 0 && FULL_OID.test(oid)) return oid;
  if (result.code === 1) return null;
  throw new Error(`git merge-base exited with ${result.code}: ${result.stderr.trim()}`);
}
