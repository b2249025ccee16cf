/**
 * The repositories on disk: creating, deleting and locating them, and the shared
 * machinery every repository operation goes through (git runner, ref view, ref
 * transactions). Only code under repo/ touches repository files.
 */
import type { DiskSpace } from '../storage/disk-space.ts';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CommitBuilder } from './commit-builder.ts';
import { GitRunner } from './git-command.ts';
import { LauncherSpawner } from './git-launcher.ts';
import { ForkingSpawner } from './spawner.ts';
import { initBareRepository, writeHead } from './init.ts';
import { gitHomeDir, repoDir, trashDir } from './layout.ts';
import type { Logger } from 'pino';
import { Maintenance, type MaintenanceOptions } from './maintenance.ts';
import { PackCache } from './pack-cache.ts';
import { PushPipeline } from './push.ts';
import { RefTransaction } from './ref-transaction.ts';
import { recoverRepositories, type RecoveryReport } from './recovery.ts';
import { RefView } from './ref-view.ts';
import { UploadPack } from './upload-pack.ts';

export class RepoStore {
  readonly dataDir: string;
  readonly git: GitRunner;
  readonly refs: RefView;
  readonly transaction: RefTransaction;
  readonly push: PushPipeline;
  readonly uploadPack: UploadPack;
  /** null when the cache is turned off. */
  readonly packCache: PackCache | null;
  readonly maintenance: Maintenance;
  readonly commits: CommitBuilder;
  /** The data directory's free space; null in tests that do not watch it. */
  readonly disk: DiskSpace | null;
  readonly #removeListeners: Array<(repoId: string) => Promise<void>> = [];

  constructor(
    dataDir: string,
    limits: { maxGitProcesses: number; maxGitProcessesPerRepo: number; queueTimeoutMs: number; gitLauncher: boolean; gitNiceness: number },
    packCache: { maxBytes: number; maxAgeMs: number; memoryBytes: number },
    maintenance: MaintenanceOptions,
    logger: Pick<Logger, 'warn' | 'debug'>,
    disk: DiskSpace | null = null,
  ) {
    this.dataDir = dataDir;
    this.disk = disk;
    this.packCache = packCache.maxBytes > 0 ? new PackCache({ dir: path.join(dataDir, 'cache', 'packs'), ...packCache }) : null;
    this.git = new GitRunner({
      homeDir: gitHomeDir(dataDir),
      maxProcesses: limits.maxGitProcesses,
      maxProcessesPerRepo: limits.maxGitProcessesPerRepo,
      queueTimeoutMs: limits.queueTimeoutMs,
      spawner: limits.gitLauncher ? (base) => new LauncherSpawner(base, limits.gitNiceness) : (base) => new ForkingSpawner(base),
    });
    this.refs = new RefView(this.git);
    this.transaction = new RefTransaction(this.git, this.refs);
    this.push = new PushPipeline(this.git);
    this.uploadPack = new UploadPack(this.git);
    this.commits = new CommitBuilder(this.git);
    this.maintenance = new Maintenance(this.git, this.transaction, maintenance, logger, disk);
    // Low on disk: the cache gives back what nobody is reading (it is only an optimisation).
    disk?.onLow(() => this.packCache?.shrink());
  }

  /** Creates the directories the store needs and clears what a crash left behind (see recovery.ts). */
  async open(): Promise<RecoveryReport> {
    await mkdir(path.join(this.dataDir, 'repos'), { recursive: true });
    await mkdir(gitHomeDir(this.dataDir), { recursive: true });
    await rm(trashDir(this.dataDir), { recursive: true, force: true });
    await this.packCache?.open();
    return recoverRepositories(path.join(this.dataDir, 'repos'));
  }

  /** Stops what the store started (the git launcher); call after the last git child is done. */
  async close(): Promise<void> {
    this.transaction.close();
    await this.git.close();
  }

  gitDir(repoId: string): string {
    return repoDir(this.dataDir, repoId);
  }

  async create(repoId: string, defaultBranch: string): Promise<void> {
    await initBareRepository(this.gitDir(repoId), defaultBranch);
  }

  async setDefaultBranch(repoId: string, branch: string): Promise<void> {
    const dir = this.gitDir(repoId);
    this.refs.invalidate(dir);
    await writeHead(dir, branch);
    this.refs.invalidate(dir);
  }

  /**
   * Removes repository directories no database row names: a crash between making a
   * repository on disk and committing its row (or between deleting the row and the directory)
   * leaves one. Startup only, before any request can create a repository.
   */
  async removeOrphans(known: ReadonlySet<string>): Promise<number> {
    const root = path.join(this.dataDir, 'repos');
    let removed = 0;
    for (const shard of await readdir(root).catch(() => [] as string[])) {
      for (const name of await readdir(path.join(root, shard)).catch(() => [] as string[])) {
        if (!name.endsWith('.git') || known.has(name.slice(0, -4))) continue;
        await this.remove(name.slice(0, -4));
        removed++;
      }
    }
    return removed;
  }

  /** Called after a repository's directory is removed (the chunk store forgets its links). */
  onRemove(listener: (repoId: string) => Promise<void>): void {
    this.#removeListeners.push(listener);
  }

  /** Moves the repository out of sight at once, then deletes it in the background. */
  async remove(repoId: string): Promise<void> {
    for (const listener of this.#removeListeners) await listener(repoId);
    const dir = this.gitDir(repoId);
    this.refs.forget(dir);
    const trash = trashDir(this.dataDir);
    await mkdir(trash, { recursive: true });
    const target = path.join(trash, `${repoId}-${randomBytes(4).toString('hex')}`);
    try {
      await rename(dir, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    void rm(target, { recursive: true, force: true });
  }
}
