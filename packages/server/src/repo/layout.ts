/** Where things live under the data directory (architecture §4). Paths derive from ids, never names. */
import path from 'node:path';

export function repoDir(dataDir: string, repoId: string): string {
  return path.join(dataDir, 'repos', repoId.slice(-2), `${repoId}.git`);
}

export function trashDir(dataDir: string): string {
  return path.join(dataDir, 'trash');
}

export function gitHomeDir(dataDir: string): string {
  return path.join(dataDir, 'git-home');
}
