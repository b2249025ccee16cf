/**
 * Background maintenance (architecture §4, §6): after pushes accumulate in a
 * repository, off the request path and one repository at a time,
 *
 *   git repack -d -l --geometric=2 --write-midx --write-bitmap-index
 *   git commit-graph write --reachable --split
 *   git pack-refs --all            (inside the repository's ref transaction queue)
 *
 * (forks, which borrow objects, and repositories whose big blobs were evicted to the chunk
 * store get a multi-pack index without a bitmap: git cannot write one for packs lacking
 * objects their refs reach). Evictions asked for (evictBlobs) run first, in the same queue,
 * so they never race a repack of the same repository.
 * Geometric repacking rolls many small push packs into few without rewriting big
 * ones; it keeps every object (it does not prune), leaves `.keep` packs of pushes in
 * flight alone, and never touches quarantines, so neither an in-flight fetch nor an
 * in-flight push loses an object. Each push adds one pack (index-pack), so without
 * this a busy repository's fetches slow down with its pack count.
 */
import { access, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { GitRunner } from './git-command.ts';
import type { RefTransaction } from './ref-transaction.ts';
import type { DiskSpace } from '../storage/disk-space.ts';
import { evictBlobs, hasEvictedBlobs } from './evict-blobs.ts';

export interface MaintenanceOptions {
  /** Pushes to a repository after which it is maintained; 0 turns maintenance off. */
  readonly pushesPerRun: number;
}

export interface MaintenanceStats {
  runs: number;
  failures: number;
  /** Runs skipped because the disk was low (a repack needs room for a second copy of the packs). */
  skippedLowDisk: number;
  lastDurationMs: number;
  /** Big blobs removed from repositories (held in the chunk store), and the bytes that freed. */
  evictedBlobs: number;
  evictedBytes: number;
}

export class Maintenance {
  readonly #git: GitRunner;
  readonly #transaction: RefTransaction;
  readonly #options: MaintenanceOptions;
  readonly #logger: Pick<Logger, 'warn' | 'debug'>;
  readonly #pushes = new Map<string, number>();
  readonly #queue = new Set<string>();
  #running: Promise<void> | null = null;
  #stopped = false;
  readonly stats: MaintenanceStats = { runs: 0, failures: 0, skippedLowDisk: 0, lastDurationMs: 0, evictedBlobs: 0, evictedBytes: 0 };
  /** Blobs to evict per repository, each with the check that the chunk store still holds it. */
  readonly #evictions = new Map<string, { oids: Set<string>; stillHeld: (oid: string) => boolean }>();
  readonly #disk: DiskSpace | null;

  constructor(git: GitRunner, transaction: RefTransaction, options: MaintenanceOptions, logger: Pick<Logger, 'warn' | 'debug'>, disk: DiskSpace | null = null) {
    this.#disk = disk;
    this.#git = git;
    this.#transaction = transaction;
    this.#options = options;
    this.#logger = logger;
  }

  /** Counts a push; schedules the repository once enough have accumulated. */
  notePush(gitDir: string): void {
    if (this.#options.pushesPerRun === 0) return;
    const count = (this.#pushes.get(gitDir) ?? 0) + 1;
    if (count < this.#options.pushesPerRun) {
      this.#pushes.set(gitDir, count);
      return;
    }
    this.#pushes.delete(gitDir);
    this.schedule(gitDir);
  }

  /**
   * Evicts big blobs the chunk store holds from the repository at its next run (now):
   * `stillHeld` is asked again just before, for each.
   */
  scheduleEviction(gitDir: string, oids: readonly string[], stillHeld: (oid: string) => boolean): void {
    if (this.#stopped || oids.length === 0) return;
    const pending = this.#evictions.get(gitDir);
    if (pending === undefined) this.#evictions.set(gitDir, { oids: new Set(oids), stillHeld });
    else for (const oid of oids) pending.oids.add(oid);
    this.schedule(gitDir);
  }

  schedule(gitDir: string): void {
    if (this.#stopped) return;
    this.#queue.add(gitDir);
    this.#running ??= this.#drain().finally(() => {
      this.#running = null;
    });
  }

  /** Resolves when every scheduled repository has been maintained. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Lets a run in progress finish, and starts no other. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#queue.clear();
    await this.idle();
  }

  async #drain(): Promise<void> {
    for (const gitDir of this.#queue) {
      this.#queue.delete(gitDir);
      if (this.#stopped) return;
      await this.run(gitDir);
    }
  }

  /** Maintains one repository now. Failures are logged, never thrown: maintenance is an optimisation. */
  async run(gitDir: string): Promise<boolean> {
    const started = Date.now();
    try {
      // A repack writes the new packs before deleting the old: it needs room for a copy of them.
      if (this.#disk !== null && (await this.#disk.low(await packBytes(gitDir)))) {
        this.stats.skippedLowDisk++;
        this.#logger.warn({ gitDir, reserveBytes: this.#disk.reserveBytes }, 'maintenance paused: the disk is low; it runs again after the next pushes');
        return false;
      }
      const eviction = this.#evictions.get(gitDir);
      this.#evictions.delete(gitDir);
      if (eviction !== undefined) {
        const report = await evictBlobs(this.#git, gitDir, new Set([...eviction.oids].filter(eviction.stillHeld)));
        this.stats.evictedBlobs += report.blobsRemoved;
        this.stats.evictedBytes += report.bytesFreed;
        this.#logger.debug({ gitDir, ...report }, 'big blobs evicted');
      }
      // A fork's own packs do not hold everything it reaches (the rest is in its source), nor do
      // those of a repository whose big blobs were evicted, so a multi-pack index with a bitmap
      // cannot be written for them (git 2.39 fails or crashes trying).
      const borrows = await access(path.join(gitDir, 'objects', 'info', 'alternates')).then(() => true, () => false);
      const incomplete = borrows || (await hasEvictedBlobs(gitDir));
      const args = ['repack', '-d', '-l', '--geometric=2', '-q', ...(incomplete ? [] : ['--write-midx', '--write-bitmap-index'])];
      await this.#git.check(args, { gitDir });
      if (incomplete && (await readdir(path.join(gitDir, 'objects', 'pack'))).some((f) => f.endsWith('.pack'))) {
        await this.#git.check(['multi-pack-index', 'write'], { gitDir }); // without a bitmap (git 2.39 crashes on a pack-less one)
      }
      await this.#git.check(['commit-graph', 'write', '--reachable', '--split', '--no-progress'], { gitDir });
      await this.#transaction.exclusive(gitDir, () => this.#git.check(['pack-refs', '--all'], { gitDir }));
      this.stats.runs++;
      this.stats.lastDurationMs = Date.now() - started;
      this.#logger.debug({ gitDir, ms: this.stats.lastDurationMs }, 'maintenance done');
      return true;
    } catch (error) {
      this.stats.failures++;
      this.#logger.warn({ gitDir, err: error }, 'maintenance failed');
      return false;
    }
  }
}

/** Bytes of a repository's packs. */
async function packBytes(gitDir: string): Promise<number> {
  const dir = path.join(gitDir, 'objects', 'pack');
  const names = await readdir(dir).catch(() => [] as string[]);
  const sizes = await Promise.all(names.filter((n) => n.endsWith('.pack')).map((n) => stat(path.join(dir, n)).then((s) => s.size, () => 0)));
  return sizes.reduce((a, b) => a + b, 0);
}
