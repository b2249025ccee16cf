/**
 * Three-way merges without a working tree: `git merge-tree --write-tree` (git >= 2.38)
 * writes the merged tree — with conflict markers in conflicted files — into the
 * object directory it is given (a quarantine), and lists conflicted paths by stage.
 *
 *   -z output: <tree> NUL ( <mode> SP <oid> SP <stage> TAB <path> NUL )*
 *   exit 0 = clean, 1 = conflicts, anything else = error
 */
import type { GitRunner } from './git-command.ts';

export interface ConflictHunk {
  /** 1-based line of the `<<<<<<<` marker in the merged file. */
  readonly startLine: number;
  readonly ours: readonly string[];
  readonly theirs: readonly string[];
}

export interface Conflict {
  readonly path: string;
  /** Which sides have the path (base = stage 1, ours = 2, theirs = 3). */
  readonly stages: { base?: string; ours?: string; theirs?: string };
  readonly hunks: readonly ConflictHunk[];
}

export type MergeTreeResult = { readonly clean: true; readonly tree: string } | { readonly clean: false; readonly tree: string; readonly conflicts: readonly Conflict[] };

const MAX_HUNKS_PER_FILE = 50;
const MAX_CONFLICT_FILES = 100;

/** Extracts the conflict regions from a file with merge markers. Pure. */
export function conflictHunks(text: string): ConflictHunk[] {
  const hunks: ConflictHunk[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length && hunks.length < MAX_HUNKS_PER_FILE; i++) {
    if (!lines[i]!.startsWith('<<<<<<<')) continue;
    const startLine = i + 1;
    const ours: string[] = [];
    const theirs: string[] = [];
    let side: 'ours' | 'base' | 'theirs' = 'ours';
    for (i++; i < lines.length && !lines[i]!.startsWith('>>>>>>>'); i++) {
      const line = lines[i]!;
      if (line.startsWith('|||||||')) side = 'base';
      else if (line.startsWith('=======')) side = 'theirs';
      else if (side === 'ours') ours.push(line);
      else if (side === 'theirs') theirs.push(line);
    }
    hunks.push({ startLine, ours, theirs });
  }
  return hunks;
}

export async function mergeTrees(git: GitRunner, gitDir: string, env: Record<string, string>, ours: string, theirs: string): Promise<MergeTreeResult> {
  const result = await git.run(['merge-tree', '--write-tree', '--no-messages', '-z', ours, theirs], { gitDir, env });
  if (result.code !== 0 && result.code !== 1) throw new Error(`git merge-tree failed: ${result.stderr.trim()}`);
  const records = result.stdout.toString('utf8').split('\0').filter((r) => r !== '');
  const tree = records[0]!;
  if (result.code === 0) return { clean: true, tree };
  const byPath = new Map<string, { base?: string; ours?: string; theirs?: string }>();
  for (const record of records.slice(1)) {
    const match = /^(\d{6}) ([0-9a-f]{40}) ([123])\t(.*)$/s.exec(record);
    if (!match) continue;
    const stages = byPath.get(match[4]!) ?? {};
    stages[match[3] === '1' ? 'base' : match[3] === '2' ? 'ours' : 'theirs'] = match[2]!;
    byPath.set(match[4]!, stages);
  }
  const conflicts: Conflict[] = [];
  for (const [path, stages] of [...byPath].slice(0, MAX_CONFLICT_FILES)) {
    let hunks: ConflictHunk[] = [];
    if (stages.ours && stages.theirs) {
      const blob = await git.run(['cat-file', 'blob', `${tree}:${path}`], { gitDir, env });
      if (blob.code === 0 && !blob.stdout.subarray(0, 8000).includes(0)) hunks = conflictHunks(blob.stdout.toString('utf8'));
    }
    conflicts.push({ path, stages, hunks });
  }
  return { clean: false, tree, conflicts };
}
