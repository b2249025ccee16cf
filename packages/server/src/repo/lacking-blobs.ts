/**
 * Diffs where git lacks blobs: big blobs evicted to the chunk store (docs/large-files.md).
 * `--raw` and exact renames need only trees and ids, but `--numstat` and `-p` read every
 * changed blob (its header, at least) and die on a missing one ("unable to read"). So, when
 * they fail, the changes are listed `--raw`, the files whose blobs git lacks are left out of
 * the numstat and patch runs (`:(exclude,literal)` pathspecs), and reported as binary, which
 * big files are.
 */
import { isZeroOid } from '../git/oid.ts';
import type { FileChange } from '../git/diff-format.ts';
import type { GitRunner } from './git-command.ts';
import { batchCheck } from './read-objects.ts';
import { mayLackBlobs } from './evict-blobs.ts';

const GITLINK = '160000';

/** The blob ids of changes (both sides), gitlinks and absent sides left out (pure). */
export function changedBlobs(changes: readonly FileChange[]): string[] {
  const oids = new Set<string>();
  for (const change of changes) {
    if (!isZeroOid(change.oldSha) && change.oldMode !== GITLINK) oids.add(change.oldSha);
    if (!isZeroOid(change.newSha) && change.newMode !== GITLINK) oids.add(change.newSha);
  }
  return [...oids];
}

/** Which of the changes' blobs git lacks (one cat-file; none where nothing was ever evicted). */
export async function lackingBlobs(git: GitRunner, gitDir: string, changes: readonly FileChange[], signal?: AbortSignal): Promise<Set<string>> {
  const oids = changedBlobs(changes);
  if (oids.length === 0 || !(await mayLackBlobs(gitDir))) return new Set();
  const infos = await batchCheck(git, gitDir, oids, signal);
  return new Set(oids.filter((_, i) => infos[i] === null));
}

/** Whether git lacks a blob of this change (pure). */
export function touchesLacking(change: FileChange, lacking: ReadonlySet<string>): boolean {
  return lacking.has(change.oldSha) || lacking.has(change.newSha);
}

/** Pathspecs leaving out the paths of changes that touch lacking blobs (pure); none when nothing does. */
export function excludingLacking(changes: readonly FileChange[], lacking: ReadonlySet<string>): string[] {
  const paths = new Set<string>();
  for (const change of changes) {
    if (!touchesLacking(change, lacking)) continue;
    paths.add(change.path);
    if (change.previousPath !== undefined) paths.add(change.previousPath);
  }
  return paths.size === 0 ? [] : ['--', ...[...paths].map((p) => `:(exclude,literal)${p}`)];
}

/** A change whose blob git lacks, as a binary change without line counts (pure). */
export function asBinary(change: FileChange): FileChange {
  return { ...change, additions: 0, deletions: 0, binary: true };
}

/**
 * The `diff --git` section git would write for a binary change, without its data (pure):
 * where the blobs are evicted, a patch names the change but cannot carry it.
 */
export function binarySection(change: FileChange): string {
  const from = change.previousPath ?? change.path;
  const lines = [`diff --git a/${from} b/${change.path}`];
  if (change.status === 'added') lines.push(`new file mode ${change.newMode}`);
  if (change.status === 'deleted') lines.push(`deleted file mode ${change.oldMode}`);
  if (change.status === 'renamed') lines.push(`rename from ${from}`, `rename to ${change.path}`);
  const mode = change.oldMode === change.newMode ? ` ${change.newMode}` : '';
  lines.push(`index ${change.oldSha}..${change.newSha}${mode}`);
  lines.push(`Binary files ${change.status === 'added' ? '/dev/null' : `a/${from}`} and ${change.status === 'deleted' ? '/dev/null' : `b/${change.path}`} differ`);
  return `${lines.join('\n')}\n`;
}
