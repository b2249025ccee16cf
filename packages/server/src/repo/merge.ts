/**
 * Three-way merges without a working tree: `git merge-tree --write-tree` (git >= 2.38)
 * writes the merged tree — with conflict markers in conflicted files — into the
 * object directory it is given (a quarantine), and lists conflicted paths by stage.
 *
 *   -z output: <tree> NUL ( <mode> SP <oid> SP <stage> TAB <path> NUL )*
 *   exit 0 = clean, 1 = conflicts, anything else = error
 */
import { BIG_BLOB_BYTES, isBigBlob } from './big-blob.ts';
import type { GitRunner } from './git-command.ts';
import { batchCheck } from './read-objects.ts';

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

export type MergeTreeResult = { readonly clean: true; readonly tree: string } | { readonly clean: false; readonly conflicts: readonly Conflict[] };

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
  const big = await bigFilesChangedOnBothSides(git, gitDir, env, ours, theirs);
  if (big.length > 0) return { clean: false, conflicts: big };
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
  return { clean: false, conflicts };
}

const ZERO_OID = '0'.repeat(40);

interface SideChange {
  readonly oldOid: string;
  readonly newOid: string;
}

/**
 * Paths both sides changed differently where a blob is big (50 MiB or more): a binary
 * conflict, found before merge-tree runs. merge-tree would merge them as text, holding
 * every version whole (measured: 441 MB of RSS and 3.8 s for a 60 MB file; a multi-GB
 * file would exhaust memory). Uses the first merge base, as a quick pre-check.
 */
async function bigFilesChangedOnBothSides(git: GitRunner, gitDir: string, env: Record<string, string>, ours: string, theirs: string): Promise<Conflict[]> {
  const base = await git.run(['merge-base', ours, theirs], { gitDir, env });
  if (base.code !== 0) return []; // unrelated histories: merge-tree says so
  const baseOid = base.stdout.toString().trim();
  const [ourChanges, theirChanges] = await Promise.all([changesSince(git, gitDir, env, baseOid, ours), changesSince(git, gitDir, env, baseOid, theirs)]);
  const both: { path: string; ours: SideChange; theirs: SideChange }[] = [];
  for (const [path, mine] of ourChanges) {
    const other = theirChanges.get(path);
    if (other !== undefined && other.newOid !== mine.newOid) both.push({ path, ours: mine, theirs: other });
  }
  if (both.length === 0) return [];
  const oids = [...new Set(both.flatMap((c) => [c.ours.oldOid, c.ours.newOid, c.theirs.newOid]).filter((oid) => oid !== ZERO_OID))];
  // A blob git lacks is a big one evicted to the chunk store.
  const sizes = new Map((await batchCheck(git, gitDir, oids)).map((info, i) => [oids[i]!, info?.size ?? BIG_BLOB_BYTES]));
  const isBig = (oid: string) => oid !== ZERO_OID && isBigBlob(sizes.get(oid) ?? 0);
  return both
    .filter((c) => isBig(c.ours.oldOid) || isBig(c.ours.newOid) || isBig(c.theirs.newOid))
    .slice(0, MAX_CONFLICT_FILES)
    .map((c) => ({
      path: c.path,
      stages: {
        ...(c.ours.oldOid !== ZERO_OID ? { base: c.ours.oldOid } : {}),
        ...(c.ours.newOid !== ZERO_OID ? { ours: c.ours.newOid } : {}),
        ...(c.theirs.newOid !== ZERO_OID ? { theirs: c.theirs.newOid } : {}),
      },
      hunks: [],
    }));
}

/** Blob paths changed from `base` to `tip`, without rename detection (which would read big blobs). */
async function changesSince(git: GitRunner, gitDir: string, env: Record<string, string>, base: string, tip: string): Promise<Map<string, SideChange>> {
  const out = (await git.check(['diff-tree', '-r', '-z', '--no-renames', '--raw', base, tip], { gitDir, env })).toString('utf8');
  const changes = new Map<string, SideChange>();
  const fields = out.split('\0');
  for (let i = 0; i + 1 < fields.length; i++) {
    if (!fields[i]!.startsWith(':')) continue;
    const [, , oldOid, newOid] = fields[i]!.slice(1).split(' ');
    changes.set(fields[++i]!, { oldOid: oldOid!, newOid: newOid! });
  }
  return changes;
}
