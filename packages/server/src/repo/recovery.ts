/**
 * Startup recovery: what a killed process can leave inside repositories, removed
 * before the server accepts requests (nothing else runs git at that moment):
 *
 * - quarantines (`objects/incoming-grove-*`) of pushes that never finished: their
 *   objects were never migrated, so no ref can point at them;
 * - `.keep` files Grove's index-pack wrote for a push whose ref update never
 *   finished (the pack itself stays: it is complete, and unreferenced objects are
 *   harmless until maintenance prunes them);
 * - index-pack temp files (`objects/pack/tmp_*`);
 * - ref lock files (`*.lock` under refs/, `packed-refs.lock`, `HEAD.lock`): a lock
 *   left by a killed `update-ref` would refuse every later update of that ref.
 */
import { readdir, readFile, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { removeStaleQuarantines } from './quarantine.ts';

export interface RecoveryReport {
  repositories: number;
  quarantines: number;
  keepFiles: number;
  tempFiles: number;
  lockFiles: number;
}

export async function recoverRepositories(reposRoot: string): Promise<RecoveryReport> {
  const report: RecoveryReport = { repositories: 0, quarantines: 0, keepFiles: 0, tempFiles: 0, lockFiles: 0 };
  for (const shard of await readdir(reposRoot).catch(() => [] as string[])) {
    const shardDir = path.join(reposRoot, shard);
    for (const name of await readdir(shardDir).catch(() => [] as string[])) {
      const gitDir = path.join(shardDir, name);
      if (name.startsWith('.init-')) {
        await rm(gitDir, { recursive: true, force: true }); // a repo creation that never finished
        continue;
      }
      if (!name.endsWith('.git')) continue;
      report.repositories++;
      await recoverRepository(gitDir, report);
    }
  }
  return report;
}

export async function recoverRepository(gitDir: string, report: RecoveryReport): Promise<void> {
  report.quarantines += await removeStaleQuarantines(gitDir);
  const packDir = path.join(gitDir, 'objects', 'pack');
  for (const file of await readdir(packDir).catch(() => [] as string[])) {
    const full = path.join(packDir, file);
    if (file.startsWith('tmp_')) {
      await unlink(full).catch(() => undefined);
      report.tempFiles++;
    } else if (file.endsWith('.keep')) {
      const content = await readFile(full, 'utf8').catch(() => '');
      if (content.startsWith('grove push')) {
        await unlink(full).catch(() => undefined);
        report.keepFiles++;
      }
    }
  }
  for (const lock of ['packed-refs.lock', 'HEAD.lock', 'config.lock']) {
    if (await unlink(path.join(gitDir, lock)).then(() => true, () => false)) report.lockFiles++;
  }
  report.lockFiles += await removeLocks(path.join(gitDir, 'refs'));
}

async function removeLocks(dir: string): Promise<number> {
  let removed = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) removed += await removeLocks(full);
    else if (entry.name.endsWith('.lock')) {
      await unlink(full).catch(() => undefined);
      removed++;
    }
  }
  return removed;
}
