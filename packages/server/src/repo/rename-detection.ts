/**
 * Which rename detection a diff between two trees can afford. git's inexact rename
 * detection (`-M`) loads every added and deleted blob whole to score their similarity:
 * measured on git 2.39, a 60 MB file renamed and edited cost 200 MB of RSS and 3 s, and a
 * multi-GB file would cost its size in memory. When an added or deleted blob is big,
 * Grove asks for exact renames only (`-M100%`, found by object id without reading a
 * byte: 5 MB of RSS); otherwise the usual `-M`.
 */
import type { GitRunner } from './git-command.ts';
import { BIG_BLOB_BYTES, isBigBlob } from './big-blob.ts';
import { batchCheck, EMPTY_TREE } from './read-objects.ts';

/** Pure: the `-M` flag for the sizes of the blobs that could pair up as renames. */
export function renameFlagFor(candidateSizes: readonly number[]): RenameFlag {
  return candidateSizes.some(isBigBlob) ? '-M100%' : '-M';
}

export type RenameFlag = '-M' | '-M100%';

export async function renameFlag(git: GitRunner, gitDir: string, from: string | null, to: string, signal?: AbortSignal): Promise<RenameFlag> {
  const raw = await git.check(['diff-tree', '-r', '-z', '--no-renames', '--raw', from ?? EMPTY_TREE, to], { gitDir, ...(signal ? { signal } : {}) });
  const candidates = addedOrDeletedBlobs(raw.toString('utf8'));
  if (candidates.length === 0) return '-M';
  const infos = await batchCheck(git, gitDir, candidates, signal);
  // A blob git lacks is a big one evicted to the chunk store.
  return renameFlagFor(infos.map((info) => info?.size ?? BIG_BLOB_BYTES));
}

/** The ids of blobs added or deleted in `diff-tree -z --raw` output (rename candidates). */
export function addedOrDeletedBlobs(raw: string): string[] {
  const oids: string[] = [];
  const fields = raw.split('\0');
  for (let i = 0; i < fields.length; i++) {
    const header = fields[i]!;
    if (!header.startsWith(':')) continue;
    // ":<old mode> <new mode> <old id> <new id> <status>", then the path.
    const [oldMode, newMode, oldId, newId, status] = header.slice(1).split(' ');
    i++;
    if (status === 'A' && newMode !== '160000') oids.push(newId!);
    if (status === 'D' && oldMode !== '160000') oids.push(oldId!);
  }
  return oids;
}
