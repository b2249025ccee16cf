/**
 * Forks and snapshots that share objects instead of copying them: the new
 * repository's `objects/info/alternates` names the source's object directory, and
 * its refs are written as one packed-refs file. Creating one costs the same whatever
 * the size of the source. Only repositories of the same org share objects (read
 * access is per repository, and protocol v2 serves any object it can reach).
 *
 * Grove never prunes objects, so a source's objects stay while forks borrow them;
 * before a source is deleted, each borrower is dissociated (`git repack -a -d`
 * copies what it needs, then the alternates file goes). When big blobs were evicted to the
 * chunk store (from the borrower or what it borrows), git 2.39's repack would stop at the
 * first one ("unable to read"), so `pack-objects --missing=allow-any` copies everything
 * else into one pack and the borrower's other packs go, as `repack -a -d` would do; the
 * borrower is linked to those blobs in the store already (at fork time, or at eviction).
 */
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { GitRunner } from './git-command.ts';
import { fsyncPath } from './fsync.ts';
import { markEvicted, mayLackBlobs } from './evict-blobs.ts';

/** Makes `gitDir` borrow the objects of `sourceGitDir`. */
export async function borrowObjects(gitDir: string, sourceGitDir: string): Promise<void> {
  const file = path.join(gitDir, 'objects', 'info', 'alternates');
  await writeFile(file, `${path.resolve(sourceGitDir, 'objects')}\n`);
  await fsyncPath(file);
}

/** Copies into `gitDir` every object it borrows, then stops borrowing. */
export async function dissociate(git: GitRunner, gitDir: string): Promise<void> {
  const alternates = path.join(gitDir, 'objects', 'info', 'alternates');
  if (!(await mayLackBlobs(gitDir))) {
    await git.check(['repack', '-a', '-d', '-q'], { gitDir });
  } else {
    await markEvicted(gitDir);
    const packDir = path.join(gitDir, 'objects', 'pack');
    const before = await readdir(packDir).catch(() => [] as string[]);
    const args = ['pack-objects', '--all', '--reflog', '--indexed-objects', '--missing=allow-any', '--delta-base-offset', '-q', path.join(packDir, 'pack')];
    const written = `pack-${(await git.check(args, { gitDir, input: '' })).toString().trim()}`;
    for (const name of before) {
      const base = name.replace(/\.(pack|idx|rev|bitmap|promisor|mtimes)$/, '');
      if (base === name || base === written || before.includes(`${base}.keep`)) continue;
      await rm(path.join(packDir, name), { force: true });
    }
    for (const name of before) if (name.startsWith('multi-pack-index')) await rm(path.join(packDir, name), { force: true });
  }
  await rm(alternates, { force: true });
}
