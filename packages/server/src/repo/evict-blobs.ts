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
import { readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { GitRunner } from './git-command.ts';

export interface EvictionReport {
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
  const objects = path.join(gitDir, 'objects');
  for (const oid of oids) {
    const loose = path.join(objects, oid.slice(0, 2), oid.slice(2));
    const size = await stat(loose).then((s) => s.size, () => null);
    if (size === null) continue;
    await unlink(loose);
    looseRemoved++;
    bytesFreed += size;
  }
  const packDir = path.join(objects, 'pack');
  const names = await readdir(packDir).catch(() => [] as string[]);
  const packs = names.filter((n) => n.endsWith('.pack') && !names.includes(n.replace(/\.pack$/, '.keep')) && names.includes(n.replace(/\.pack$/, '.idx')));
  const holding: Array<{ pack: string; keep: string[] }> = [];
  for (const pack of packs) {
    const listed = (await git.check(['show-index'], { gitDir, input: await readFile(path.join(packDir, pack.replace(/\.pack$/, '.idx'))) })).toString('latin1');
    const all = listed.split('\n').filter((l) => l !== '').map((l) => l.split(' ')[1]!);
    if (!all.some((oid) => oids.has(oid))) continue;
    holding.push({ pack, keep: all.filter((oid) => !oids.has(oid)) });
  }
  if (holding.length === 0) return { packsRewritten, looseRemoved, bytesFreed };
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
  return { packsRewritten, looseRemoved, bytesFreed };
}
