/**
 * Creates a bare repository by writing its few files directly: far cheaper than
 * spawning `git init` (repo creation is on the API hot path), and the result is what
 * `git init --bare` makes, minus templates (no sample hooks, no description).
 * Built in a sibling temp directory and renamed into place, so a crash never leaves
 * a half-made repository under its final name.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fsyncPath } from './fsync.ts';

export const REPO_CONFIG = `[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = true
\tlogAllRefUpdates = false
\tfsync = committed,reference
\tfsyncMethod = fsync
\tbigFileThreshold = 50m
[gc]
\tauto = 0
[maintenance]
\tauto = 0
[receive]
\tfsckObjects = true
\tautogc = false
[uploadpack]
\tallowFilter = true
[pack]
\twriteReverseIndex = true
`;

export async function initBareRepository(dir: string, defaultBranch: string): Promise<void> {
  const parent = path.dirname(dir);
  await mkdir(parent, { recursive: true });
  const temp = path.join(parent, `.init-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(path.join(temp, 'objects', 'pack'), { recursive: true });
    await mkdir(path.join(temp, 'objects', 'info'));
    await mkdir(path.join(temp, 'refs', 'heads'), { recursive: true });
    await mkdir(path.join(temp, 'refs', 'tags'));
    await writeFile(path.join(temp, 'HEAD'), `ref: refs/heads/${defaultBranch}\n`);
    await writeFile(path.join(temp, 'config'), REPO_CONFIG);
    await fsyncPath(path.join(temp, 'HEAD'));
    await fsyncPath(path.join(temp, 'config'));
    await rename(temp, dir);
    await fsyncPath(parent);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}

/** Points HEAD at another branch (the default branch). Written atomically via rename. */
export async function writeHead(dir: string, branch: string): Promise<void> {
  const temp = path.join(dir, `HEAD.grove-${randomBytes(4).toString('hex')}`);
  await writeFile(temp, `ref: refs/heads/${branch}\n`);
  await fsyncPath(temp);
  await rename(temp, path.join(dir, 'HEAD'));
  await fsyncPath(dir);
}
