/**
 * Parsers for what the read API asks git to print: commit records (`git log -z` with
 * COMMIT_FORMAT), tree listings (`git ls-tree -l -z`) and `git blame --porcelain`.
 * Pure: bytes or lines in, plain objects out.
 */

export interface Signature {
  readonly name: string;
  readonly email: string;
  /** ISO 8601 with the author's or committer's own offset, e.g. 2024-05-01T12:00:00+02:00. */
  readonly date: string;
}

export interface CommitInfo {
  readonly sha: string;
  readonly parents: string[];
  readonly tree: string;
  readonly message: string;
  readonly author: Signature;
  readonly committer: Signature;
}

/** Ten NUL-separated fields per commit; with `-z` each record also ends in a NUL. */
export const COMMIT_FORMAT = '--format=%H%x00%P%x00%T%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B';
const COMMIT_FIELDS = 10;

/** Parses `git log -z ${COMMIT_FORMAT}` output. */
export function parseCommitRecords(output: Buffer | string): CommitInfo[] {
  const text = typeof output === 'string' ? output : output.toString('utf8');
  if (text === '') return [];
  const fields = text.split('\0');
  if (fields[fields.length - 1] === '') fields.pop();
  const commits: CommitInfo[] = [];
  for (let i = 0; i + COMMIT_FIELDS <= fields.length; i += COMMIT_FIELDS) {
    const f = fields.slice(i, i + COMMIT_FIELDS) as [string, string, string, string, string, string, string, string, string, string];
    commits.push({
      sha: f[0],
      parents: f[1] === '' ? [] : f[1].split(' '),
      tree: f[2],
      author: { name: f[3], email: f[4], date: f[5] },
      committer: { name: f[6], email: f[7], date: f[8] },
      message: f[9].replace(/\n+$/, ''),
    });
  }
  return commits;
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'submodule';

export interface TreeEntry {
  readonly name: string;
  /** Full path from the repository root. */
  readonly path: string;
  readonly type: EntryType;
  /** Octal mode as git stores it: 100644, 100755, 120000, 040000, 160000. */
  readonly mode: string;
  readonly sha: string;
  /** Bytes, for files and symlinks only. */
  readonly size?: number;
}

export function entryType(mode: string): EntryType {
  if (mode === '040000') return 'dir';
  if (mode === '120000') return 'symlink';
  if (mode === '160000') return 'submodule';
  return 'file';
}

const LS_TREE_LINE = /^(\d{6}) [a-z]+ ([0-9a-f]{40}) +(-|\d+)\t([\s\S]*)$/;

/**
 * One NUL-terminated record of `git ls-tree -l -z`; `prefix` is the listed tree's
 * path ('' for the root), joined to the record's path (relative to that tree).
 */
export function parseLsTreeRecord(record: string, prefix: string): TreeEntry | null {
  const match = LS_TREE_LINE.exec(record);
  if (match === null) return null;
  const [, mode, sha, size, relative] = match as unknown as [string, string, string, string, string];
  const path = prefix === '' ? relative : `${prefix}/${relative}`;
  const slash = path.lastIndexOf('/');
  return {
    name: slash === -1 ? path : path.slice(slash + 1),
    path,
    type: entryType(mode),
    mode,
    sha,
    ...(size === '-' ? {} : { size: Number(size) }),
  };
}

export interface BlameRange {
  /** First line (1-based) of the range in the blamed file. */
  readonly start: number;
  readonly lines: number;
  readonly commit: { readonly sha: string; readonly author: { readonly name: string; readonly email: string }; readonly date: string; readonly summary: string };
}

interface BlameCommit {
  name: string;
  email: string;
  time: number;
  tz: string;
  summary: string;
}

const BLAME_HEADER = /^([0-9a-f]{40}) (\d+) (\d+)(?: (\d+))?$/;

/** Feeds `git blame --porcelain` line by line (without the newline); ranges() merges adjacent groups of one commit. */
export class BlameParser {
  readonly #commits = new Map<string, BlameCommit>();
  readonly #groups: { sha: string; start: number; lines: number }[] = [];
  #current: string | null = null;

  push(line: string): void {
    if (line.startsWith('\t')) return; // the line's content
    const header = BLAME_HEADER.exec(line);
    if (header !== null) {
      const [, sha, , final, count] = header as unknown as [string, string, string, string, string | undefined];
      this.#current = sha;
      if (!this.#commits.has(sha)) this.#commits.set(sha, { name: '', email: '', time: 0, tz: '+0000', summary: '' });
      if (count !== undefined) this.#groups.push({ sha, start: Number(final), lines: Number(count) });
      return;
    }
    if (this.#current === null) return;
    const commit = this.#commits.get(this.#current)!;
    const space = line.indexOf(' ');
    const key = space === -1 ? line : line.slice(0, space);
    const value = space === -1 ? '' : line.slice(space + 1);
    if (key === 'author') commit.name = value;
    else if (key === 'author-mail') commit.email = value.replace(/^<|>$/g, '');
    else if (key === 'author-time') commit.time = Number(value);
    else if (key === 'author-tz') commit.tz = value;
    else if (key === 'summary') commit.summary = value;
  }

  ranges(): BlameRange[] {
    const ranges: BlameRange[] = [];
    const groups = [...this.#groups].sort((a, b) => a.start - b.start);
    for (const group of groups) {
      const last = ranges[ranges.length - 1];
      if (last !== undefined && last.commit.sha === group.sha && last.start + last.lines === group.start) {
        ranges[ranges.length - 1] = { ...last, lines: last.lines + group.lines };
        continue;
      }
      const commit = this.#commits.get(group.sha)!;
      ranges.push({
        start: group.start,
        lines: group.lines,
        commit: { sha: group.sha, author: { name: commit.name, email: commit.email }, date: isoWithOffset(commit.time, commit.tz), summary: commit.summary },
      });
    }
    return ranges;
  }
}

/** Unix seconds and a git offset (+0200) → 2024-05-01T12:00:00+02:00, as %aI prints. */
export function isoWithOffset(seconds: number, tz: string): string {
  const match = /^([+-])(\d{2})(\d{2})$/.exec(tz);
  const sign = match?.[1] === '-' ? -1 : 1;
  const offsetMinutes = match ? sign * (Number(match[2]) * 60 + Number(match[3])) : 0;
  const local = new Date((seconds + offsetMinutes * 60) * 1000).toISOString().slice(0, 19);
  const offset = match ? `${match[1]}${match[2]}:${match[3]}` : '+00:00';
  return `${local}${offset}`;
}
