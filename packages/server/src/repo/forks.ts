/**
 * Forks and snapshots that share objects instead of copying them: the new
 * repository's `objects/info/alternates` names the source's object directory, and
 * its refs are written as one packed-refs file. Creating one costs the same whatever
 * the size of the source. Only repositories of the same org share objects (read
 * access is per repository, and protocol v2 serves any object it can reach).
 *
 * Grove never prunes objects, so a source's objects stay while forks borrow them;
 * before a source is deleted, each borrower is dissociated (`git repack -a -d`
 * copies what it needs, then the alternates file goes).
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { GitRunner } from './git-command.ts';
import { fsyncPath } from './fsync.ts';

/** Makes `gitDir` borrow the objects of `sourceGitDir`. */
export async function borrowObjects(gitDir: string, sourceGitDir: string): Promise<void> {
  const file = path.join(gitDir, 'objects', 'info', 'alternates');
  await writeFile(file, `${path.resolve(sourceGitDir, 'objects')}\n`);
  await fsyncPath(file);
}

/** Copies into `gitDir` every object it borrows, then stops borrowing. */
export async function dissociate(git: GitRunner, gitDir: string): Promise<void> {
  await git.check(['repack', '-a', '-d', '-q'], { gitDir });
  await rm(path.join(gitDir, 'objects', 'info', 'alternates'), { force: true });
}
