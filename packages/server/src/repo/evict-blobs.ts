/**
 * Eviction (docs/large-files.md, "Store once"): big blobs the chunk store holds, verified
 * and fsynced, leave the repository's own object directory. Each pack holding one is
 * rewritten without it (`pack-objects` of the pack's other objects, from `show-index`),
 * then the old pack goes; a loose copy is deleted. Packs of a push still in flight (`.keep`)
 * are left for the next run. The multi-pack index, which names the old packs, is removed
 * first (maintenance writes a new one; git reads packs without it meanwhile).
 *
 * git 2.39 has no `repack --filter` (2.43+), and `pack-objects --filter` needs `--stdout`,
 * hence the object list. Readers in flight keep their open pack files; a reader that
 * opens the old pack after it went rescans and finds the new one.
 */
import { access, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { fsyncPath } from './fsync.ts';
import path from 'node:path';
import type { GitRunner } from './git-command.ts';

/**
 * Written into a repository's directory once it has lost a blob to the chunk store: git
 * then lacks objects its refs reach, so maintenance writes no bitmap (git refuses one for a
 * pack set without full closure) and a dissociating fork copies what it can.
 */
export const EVICTED_MARKER = 'grove-evicted-blobs';

/** Whether blobs were ever evicted from the repository (see EVICTED_MARKER). */
export async function hasEvictedBlobs(gitDir: string): Promise<boolean> {
  return access(path.join(gitDir, EVICTED_MARKER)).then(() => true, () => false);
}

/**
 * Whether git may lack blobs of the repository: its own were evicted, or those of a
 * repository whose objects it borrows (alternates, followed as git follows them).
 */
export async function mayLackBlobs(gitDir: string, depth = 0): Promise<boolean> {
  if (await hasEvictedBlobs(gitDir)) return true;
  if (depth >= 5) return false; // git's own limit on nested alternates
  const alternates = await readFile(path.join(gitDir, 'objects', 'info', 'alternates'), 'utf8').catch(() => '');
  for (const objects of alternates.split('\n').filter((line) => line !== '' && !line.startsWith('#'))) {
    if (await mayLackBlobs(path.dirname(path.resolve(gitDir, 'objects', objects)), depth + 1)) return true;
  }
  return false;
}

/** Marks the repository as lacking blobs that live in the chunk store. */
export async function markEvicted(gitDir: string): Promise<void> {
  if (await hasEvictedBlobs(gitDir)) return;
  await writeFile(path.join(gitDir, EVICTED_MARKER), 'Big blobs of this repository are kept in the chunk store (docs/large-files.md).\n');
  await fsyncPath(path.join(gitDir, EVICTED_MARKER));
}

export interface EvictionReport {
  /** Of the blobs asked for, those the repository's own objects held (and no longer do). */
  readonly blobsRemoved: number;
  readonly packsRewritten: number;
  readonly looseRemoved: number;
  /** Bytes of the repository's packs and loose objects before minus after. */
  readonly bytesFreed: number;
}

/** Removes `oids` (big blobs held elsewhere) from the repository's own objects. */
export async function evictBlobs(git: GitRunner, gitDir: string, oids: ReadonlySet<string>): Promise<EvictionReport> {
  let packsRewritten = 0;
  let looseRemoved = 0;
  let bytesFreed = 0;
  const removed = new Set<string>();
  const report = (): EvictionReport => ({ blobsRemoved: removed.size, packsRewritten, looseRemoved, bytesFreed });
  if (oids.size === 0) return report();
  const objects = path.join(gitDir, 'objects');
  const loose: Array<{ oid: string; file: string; size: number }> = [];
  for (const oid of oids) {
    const file = path.join(objects, oid.slice(0, 2), oid.slice(2));
    const size = await stat(file).then((s) => s.size, () => null);
    if (size !== null) loose.push({ oid, file, size });
  }
  const packDir = path.join(objects, 'pack');
  const names = await readdir(packDir).catch(() => [] as string[]);
  const packs = names.filter((n) => n.endsWith('.pack') && !names.includes(n.replace(/\.pack$/, '.keep')) && names.includes(n.replace(/\.pack$/, '.idx')));
  const holding: Array<{ pack: string; keep: string[] }> = [];
  for (const pack of packs) {
    const listed = (await git.check(['show-index'], { gitDir, input: await readFile(path.join(packDir, pack.replace(/\.pack$/, '.idx'))) })).toString('latin1');
    const all = listed.split('\n').filter((l) => l !== '').map((l) => l.split(' ')[1]!);
    if (!all.some((oid) => oids.has(oid))) continue;
    for (const oid of all) if (oids.has(oid)) removed.add(oid);
    holding.push({ pack, keep: all.filter((oid) => !oids.has(oid)) });
  }
  if (loose.length === 0 && holding.length === 0) return report();
  // Before anything goes: a crash part-way still leaves the repository marked.
  await markEvicted(gitDir);
  for (const { oid, file, size } of loose) {
    await unlink(file);
    removed.add(oid);
    looseRemoved++;
    bytesFreed += size;
  }
  if (holding.length === 0) return report();
  // The multi-pack index (and its bitmap) would name packs about to go.
  for (const name of names) if (name.startsWith('multi-pack-index')) await rm(path.join(packDir, name), { force: true });
  for (const { pack, keep } of holding) {
    const before = (await stat(path.join(packDir, pack))).size;
    let after = 0;
    if (keep.length > 0) {
      // Written (and fsynced, core.fsync) beside the old pack before the old one goes.
      const hash = (await git.check(['pack-objects', '-q', '--delta-base-offset', path.join(packDir, 'pack')], { gitDir, input: `${keep.join('\n')}\n` })).toString().trim();
      after = (await stat(path.join(packDir, `pack-${hash}.pack`))).size;
    }
    const base = pack.replace(/\.pack$/, '');
    // The pack before its index: git skips an index whose pack is gone.
    for (const suffix of ['.bitmap', '.rev', '.promisor', '.mtimes', '.pack', '.idx']) await rm(path.join(packDir, base + suffix), { force: true });
    packsRewritten++;
    bytesFreed += before - after;
  }
  return report();
}
