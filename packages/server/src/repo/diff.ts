/**
 * Comparing two commits with three-dot semantics (what `head` adds since it forked
 * from `base`): the merge base, the commits, and the files with their hunks, within
 * limits; or the unified diff as a stream. Rename detection is on (`-M`).
 */
import { Readable } from 'node:stream';
import { attachHunks, PatchParser, type FileDiff } from '../git/diff-format.ts';
import type { CommitInfo } from '../git/log-format.ts';
import { killTree, type GitRunner } from './git-command.ts';
import { listChanges, listCommits, mergeBase, type StoredSize } from './history.ts';
import { collectStderr, EMPTY_TREE, records, stdoutStream } from './read-objects.ts';
import { renameFlag } from './rename-detection.ts';
import { binarySection, excludingLacking, lackingBlobs, touchesLacking } from './lacking-blobs.ts';
import { mayLackBlobs } from './evict-blobs.ts';

export interface CompareLimits {
  /** Files listed; more make the answer truncated. */
  readonly maxFiles: number;
  /** Hunk lines over all files. */
  readonly maxLines: number;
  /** Bytes of hunk lines over all files. */
  readonly maxBytes: number;
  /** Commits listed (newest first). */
  readonly maxCommits: number;
}

export interface Comparison {
  readonly base: string;
  readonly head: string;
  /** null when the histories are unrelated: the diff is then against the empty tree. */
  readonly mergeBase: string | null;
  readonly commits: CommitInfo[];
  readonly files: FileDiff[];
  /** True when any limit left something out (commits, files, or hunks of some files). */
  readonly truncated: boolean;
}

/** base...head: commits in head but not in base, and the diff from their merge base to head. */
export async function compareCommits(git: GitRunner, gitDir: string, base: string, head: string, limits: CompareLimits, signal?: AbortSignal, storedSize?: StoredSize): Promise<Comparison> {
  const opts = signal ? { signal } : {};
  const from = await mergeBase(git, gitDir, base, head, signal);
  // The same rename detection for the file list and the patch, so their sections line up.
  const renames = await renameFlag(git, gitDir, from, head, signal);
  const [commits, changes] = await Promise.all([
    listCommits(git, gitDir, { tips: [head], exclude: [base], limit: limits.maxCommits + 1, ...opts }),
    listChanges(git, gitDir, from, head, signal, renames, storedSize),
  ]);
  const kept = changes.slice(0, limits.maxFiles);
  // Blobs git lacks (evicted big files) are left out of the patch: they have no hunks anyway.
  const lacking = await lackingBlobs(git, gitDir, kept, signal);
  const patched = kept.filter((change) => !touchesLacking(change, lacking));
  const sectionsNeeded = patched.reduce((n, change) => n + (change.status === 'typechange' ? 2 : 1), 0);
  const parser = new PatchParser({ maxLines: limits.maxLines, maxBytes: limits.maxBytes });
  if (sectionsNeeded > 0) {
    const child = await git.spawn(['diff-tree', '-r', renames, '-p', '--src-prefix=a/', '--dst-prefix=b/', from ?? EMPTY_TREE, head, ...excludingLacking(kept, lacking)], { gitDir, ...opts });
    child.stdin.end();
    collectStderr(child);
    try {
      for await (const line of records(child, 0x0a)) {
        // The section after the last one needed starts: everything wanted has been read.
        if (line.startsWith('diff --git ') && parser.sections.length === sectionsNeeded) break;
        if (!parser.push(line)) break;
      }
    } finally {
      killTree(child);
    }
  }
  const withHunks = new Map(attachHunks(patched, parser.sections).map((file, i) => [patched[i]!, file]));
  const files = kept.map((change) => withHunks.get(change) ?? attachHunks([change], [])[0]!);
  const truncated = commits.length > limits.maxCommits || changes.length > kept.length || files.some((file) => file.truncated);
  return { base, head, mergeBase: from, commits: commits.slice(0, limits.maxCommits), files, truncated };
}

/**
 * The unified diff from the merge base of base and head to head, streamed as git
 * writes it (full ids and binary patches, so `git apply` can use it).
 */
export async function streamUnifiedDiff(git: GitRunner, gitDir: string, base: string, head: string, signal?: AbortSignal): Promise<Readable> {
  const from = await mergeBase(git, gitDir, base, head, signal);
  const renames = await renameFlag(git, gitDir, from, head, signal);
  // Files whose blobs git lacks (evicted big files) end the patch as sections without data.
  const changes = (await mayLackBlobs(gitDir)) ? await listChanges(git, gitDir, from, head, signal, renames) : [];
  const lacking = await lackingBlobs(git, gitDir, changes, signal);
  const child = await git.spawn(['diff-tree', '-r', renames, '-p', '--binary', '--full-index', '--src-prefix=a/', '--dst-prefix=b/', from ?? EMPTY_TREE, head, ...excludingLacking(changes, lacking)], { gitDir, ...(signal ? { signal } : {}) });
  child.stdin.end();
  child.stderr.resume();
  const patch = stdoutStream(child);
  if (lacking.size === 0) return patch;
  const tail = changes.filter((change) => touchesLacking(change, lacking)).map(binarySection).join('');
  return Readable.from((async function* () {
    yield* patch;
    yield Buffer.from(tail);
  })());
}
