/**
 * Parsers for tree diffs: `git diff-tree -r -z -M --raw --numstat` (which files
 * changed, how, and by how many lines) and `git diff-tree -r -M -p` (the hunks), and
 * the pairing of the two. Pure; limits on lines and bytes are enforced here so they
 * can be tested without git.
 */

export type ChangeStatus = 'added' | 'modified' | 'deleted' | 'renamed' | 'copied' | 'typechange';

export interface FileChange {
  readonly path: string;
  /** The path before a rename or copy. */
  readonly previousPath?: string;
  readonly status: ChangeStatus;
  readonly oldMode: string;
  readonly newMode: string;
  readonly oldSha: string;
  readonly newSha: string;
  readonly additions: number;
  readonly deletions: number;
  readonly binary: boolean;
  /** Binary files only: the blob's size in bytes before and after (absent on the side where there is no blob). */
  readonly oldSize?: number;
  readonly newSize?: number;
}

export interface Hunk {
  readonly oldStart: number;
  readonly oldLines: number;
  readonly newStart: number;
  readonly newLines: number;
  /** The whole `@@ -a,b +c,d @@ context` line. */
  readonly header: string;
  /** Each line with its prefix: `+added`, `-removed`, ` context`, `\ No newline at end of file`. */
  readonly lines: string[];
}

const STATUS: Record<string, ChangeStatus> = { A: 'added', M: 'modified', D: 'deleted', R: 'renamed', C: 'copied', T: 'typechange' };
const RAW_HEADER = /^:(\d{6}) (\d{6}) ([0-9a-f]{40}) ([0-9a-f]{40}) ([AMDRCT])\d*$/;
const NUMSTAT = /^(\d+|-)\t(\d+|-)\t([\s\S]*)$/;

/** Parses the NUL-separated raw records followed by the numstat records, in the same order. */
export function parseRawNumstat(output: Buffer | string): FileChange[] {
  const tokens = (typeof output === 'string' ? output : output.toString('utf8')).split('\0');
  const raw: Omit<FileChange, 'additions' | 'deletions' | 'binary'>[] = [];
  const stats: { additions: number; deletions: number; binary: boolean }[] = [];
  let i = 0;
  while (i < tokens.length) {
    const token = tokens[i++]!;
    if (token === '') continue;
    const header = RAW_HEADER.exec(token);
    if (header !== null) {
      const [, oldMode, newMode, oldSha, newSha, letter] = header as unknown as [string, string, string, string, string, string];
      const twoPaths = letter === 'R' || letter === 'C';
      const first = tokens[i++] ?? '';
      const second = twoPaths ? (tokens[i++] ?? '') : undefined;
      raw.push({
        path: second ?? first,
        ...(second !== undefined ? { previousPath: first } : {}),
        status: STATUS[letter]!,
        oldMode,
        newMode,
        oldSha,
        newSha,
      });
      continue;
    }
    const numstat = NUMSTAT.exec(token);
    if (numstat === null) throw new Error(`unexpected diff-tree output: ${JSON.stringify(token.slice(0, 100))}`);
    const [, added, deleted, path] = numstat as unknown as [string, string, string, string];
    if (path === '') i += 2; // a rename or copy: the two paths follow
    const binary = added === '-';
    stats.push({ additions: binary ? 0 : Number(added), deletions: binary ? 0 : Number(deleted), binary });
  }
  return raw.map((change, n) => ({ ...change, ...(stats[n] ?? { additions: 0, deletions: 0, binary: false }) }));
}

/** One `diff --git` section of a patch. */
export interface PatchSection {
  readonly header: string;
  readonly hunks: Hunk[];
  binary: boolean;
  /** False when the limits stopped the parser inside this section. */
  complete: boolean;
}

export interface PatchLimits {
  /** Hunk lines (all sections together). */
  readonly maxLines: number;
  /** Bytes of hunk lines (all sections together). */
  readonly maxBytes: number;
}

const HUNK_HEADER = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;

/**
 * Feeds `git diff-tree -p` output line by line (without the newline). A hunk is kept
 * only when it is complete and within the limits; once a limit is hit, push()
 * returns false and the parser ignores the rest.
 */
export class PatchParser {
  readonly sections: PatchSection[] = [];
  #limits: PatchLimits;
  #lines = 0;
  #bytes = 0;
  #hunk: { hunk: Hunk; oldLeft: number; newLeft: number } | null = null;
  #stopped = false;

  constructor(limits: PatchLimits) {
    this.#limits = limits;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  push(line: string): boolean {
    if (this.#stopped) return false;
    const section = this.sections[this.sections.length - 1];
    const open = this.#hunk;
    if (open !== null && section !== undefined) {
      const first = line[0];
      const counts = open.oldLeft > 0 || open.newLeft > 0;
      if (first === '\\' || (counts && (first === ' ' || first === '-' || first === '+'))) {
        if (!this.#charge(line)) return false;
        open.hunk.lines.push(line);
        if (first === ' ' || first === '-') open.oldLeft--;
        if (first === ' ' || first === '+') open.newLeft--;
        return true;
      }
      this.#hunk = null;
    }
    if (line.startsWith('diff --git ')) {
      this.sections.push({ header: line, hunks: [], binary: false, complete: true });
      return true;
    }
    if (section === undefined) return true;
    const hunk = HUNK_HEADER.exec(line);
    if (hunk !== null) {
      const [, oldStart, oldLines, newStart, newLines] = hunk;
      const h: Hunk = { oldStart: Number(oldStart), oldLines: oldLines === undefined ? 1 : Number(oldLines), newStart: Number(newStart), newLines: newLines === undefined ? 1 : Number(newLines), header: line, lines: [] };
      if (!this.#charge(line)) return false;
      section.hunks.push(h);
      this.#hunk = { hunk: h, oldLeft: h.oldLines, newLeft: h.newLines };
      return true;
    }
    if (line.startsWith('Binary files ') || line === 'GIT binary patch') section.binary = true;
    return true;
  }

  /** Counts a line against the limits; at the limit drops the unfinished hunk and stops. */
  #charge(line: string): boolean {
    this.#lines += 1;
    this.#bytes += Buffer.byteLength(line, 'utf8') + 1;
    if (this.#lines <= this.#limits.maxLines && this.#bytes <= this.#limits.maxBytes) return true;
    const section = this.sections[this.sections.length - 1]!;
    if (this.#hunk !== null) section.hunks.pop();
    section.complete = false;
    this.#hunk = null;
    this.#stopped = true;
    return false;
  }
}

export interface FileDiff extends Omit<FileChange, 'oldMode' | 'newMode' | 'oldSha' | 'newSha'> {
  readonly hunks: Hunk[];
  /** True when this file's hunks were left out or cut short by a limit. */
  readonly truncated: boolean;
}

/**
 * Pairs the patch sections with the changes, in order. git writes one section per
 * change, except a type change (file ↔ symlink or submodule), which it writes as a
 * deletion followed by a creation. Sections that do not line up with the changes
 * (a safety net: paths are compared when git printed them unquoted) end the pairing.
 */
export function attachHunks(changes: readonly FileChange[], sections: readonly PatchSection[]): FileDiff[] {
  const result: FileDiff[] = [];
  let s = 0;
  let aligned = true;
  for (const change of changes) {
    const { oldMode: _o, newMode: _n, oldSha: _a, newSha: _b, ...rest } = change;
    const want = change.status === 'typechange' ? 2 : 1;
    const mine = sections.slice(s, s + want);
    s += want;
    if (aligned && mine.length === want && !mine.every((section) => headerMatches(section.header, change.path))) aligned = false;
    const complete = aligned && mine.length === want && mine.every((section) => section.complete);
    const seen = aligned && mine.length > 0;
    // A binary file has no hunks to lose; anything else not fully seen was cut by a limit.
    const truncated = !complete && !change.binary;
    result.push({ ...rest, hunks: seen ? mine.flatMap((section) => section.hunks) : [], truncated });
  }
  return result;
}

function headerMatches(header: string, path: string): boolean {
  if (header.includes('"')) return true; // quoted (unusual characters): not worth unquoting for a sanity check
  return header.endsWith(` b/${path}`);
}
