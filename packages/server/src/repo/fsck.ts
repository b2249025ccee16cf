/**
 * A repository check that knows about the chunk store (docs/large-files.md). A repository
 * whose big blobs were evicted fails a plain `git fsck`: each evicted blob is reported as
 * "missing blob X", with a "broken link from tree T to blob X" per tree naming it. Here those
 * two reports are accepted exactly when the store holds X for this repository, and then the
 * store's copy is read back and hashed (`sha1("blob <size>\0" + bytes)` must be X), so a
 * clean result means git and the store hold the whole history between them. Everything
 * else git says is a problem.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { GitRunner } from './git-command.ts';

/** At most this many problems are listed (a broken repository can report one per object). */
const MAX_PROBLEMS = 100;

export interface FsckProblem {
  /** `git`: git fsck reported it; `missing`: a blob neither git nor the store holds for the repository; `store`: the store's copy does not hash to its id. */
  readonly kind: 'git' | 'missing' | 'store';
  readonly oid?: string;
  readonly message: string;
}

export interface FsckReport {
  readonly ok: boolean;
  readonly problems: readonly FsckProblem[];
  /** Problems found beyond the MAX_PROBLEMS listed. */
  readonly moreProblems: number;
  /** Blobs git lacks that the chunk store holds for the repository, each read back and verified. */
  readonly storedBlobs: { readonly count: number; readonly bytes: number };
}

/** What the check needs of the chunk store. */
export interface StoredBlobs {
  /** The blob's size when the store holds it for this repository, else null. */
  heldSize(oid: string): number | null;
  /** The blob's bytes from the store. */
  open(oid: string): Readable;
}

export interface FsckOutput {
  /** Ids git reports as missing blobs (each once). */
  readonly missingBlobs: readonly string[];
  /** The other reports, one per line; a broken link to a missing blob is kept with its target, to be dropped if that blob is accounted for. */
  readonly reports: readonly { readonly text: string; readonly missingBlob?: string }[];
}

/** Sorts `git fsck --no-progress --no-dangling` output (stdout and stderr) into missing blobs and other reports. Pure. */
export function parseFsckOutput(output: string): FsckOutput {
  const lines = output.split('\n').map((line) => line.trimEnd()).filter((line) => line.trim() !== '');
  const missing = new Set<string>();
  const reports: { text: string; missingBlob?: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const missingBlob = /^missing blob ([0-9a-f]{40,64})$/.exec(line);
    if (missingBlob) {
      missing.add(missingBlob[1]!);
      continue;
    }
    const link = /^broken link from\s+(\w+) ([0-9a-f]{40,64})$/.exec(line);
    const target = link ? /^\s+to\s+(\w+) ([0-9a-f]{40,64})$/.exec(lines[i + 1] ?? '') : null;
    if (link && target) {
      i++;
      const text = `broken link from ${link[1]} ${link[2]} to ${target[1]} ${target[2]}`;
      reports.push(target[1] === 'blob' ? { text, missingBlob: target[2]! } : { text });
      continue;
    }
    // "notice: HEAD points to an unborn branch", "notice: No default references": not damage.
    if (line.startsWith('notice:')) continue;
    reports.push({ text: line.replace(/^(error|fatal):\s*/, '') });
  }
  return { missingBlobs: [...missing], reports };
}

/** Runs `git fsck --strict` on the repository and accounts for the blobs the store holds for it. */
export async function fsckRepository(git: GitRunner, gitDir: string, store: StoredBlobs, signal?: AbortSignal): Promise<FsckReport> {
  const result = await git.run(['fsck', '--strict', '--no-dangling', '--no-progress'], { gitDir, ...(signal ? { signal } : {}) });
  const parsed = parseFsckOutput(`${result.stdout.toString('utf8')}\n${result.stderr}`);
  const problems: FsckProblem[] = [];
  const accounted = new Set<string>();
  const reportedMissing = new Set<string>();
  let bytes = 0;
  for (const oid of parsed.missingBlobs) {
    const size = store.heldSize(oid);
    if (size === null) {
      problems.push({ kind: 'missing', oid, message: `missing blob ${oid}: neither git nor the chunk store holds it for this repository` });
      reportedMissing.add(oid);
      continue;
    }
    const actual = await hashOf(store.open(oid), size).catch((error: unknown) => error as Error);
    if (actual !== oid) {
      const why = actual instanceof Error ? `cannot be read: ${actual.message}` : `hashes to ${actual}`;
      problems.push({ kind: 'store', oid, message: `the chunk store's copy of blob ${oid} (${size} bytes) ${why}` });
      reportedMissing.add(oid);
      continue;
    }
    accounted.add(oid);
    bytes += size;
  }
  for (const report of parsed.reports) {
    // A broken link to a blob the store accounts for is fine; to one reported above, said already.
    if (report.missingBlob !== undefined && (accounted.has(report.missingBlob) || reportedMissing.has(report.missingBlob))) continue;
    problems.push({ kind: 'git', message: report.text });
  }
  if (result.code !== 0 && parsed.missingBlobs.length === 0 && parsed.reports.length === 0) {
    problems.push({ kind: 'git', message: `git fsck exited with ${result.code} and said nothing` });
  }
  return {
    ok: problems.length === 0,
    problems: problems.slice(0, MAX_PROBLEMS),
    moreProblems: Math.max(0, problems.length - MAX_PROBLEMS),
    storedBlobs: { count: accounted.size, bytes },
  };
}

async function hashOf(bytes: Readable, size: number): Promise<string> {
  const hash = createHash('sha1').update(`blob ${size}\0`);
  for await (const chunk of bytes) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
