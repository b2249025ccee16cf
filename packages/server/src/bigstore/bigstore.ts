/**
 * The chunk store for big blobs (docs/large-files.md): what the server sees of it. Writes
 * (ingest, links, forgetting a deleted repository, collection) go to the ingest worker, one
 * at a time, off the event loop; reads (manifests, byte ranges, chunk listings, raw frames
 * for spliced packs) are served here.
 *
 * A blob is taken in after a push, an upload or its first read; once it is held (onHeld),
 * git may let it go (eviction-scheduler.ts), and from then on the store holds its only copy:
 * fetches get it spliced into their packs (splice.ts), reads and thin pushes from here. In a
 * cluster, each node's store is its cache of the cluster's catalogue
 * (cluster/big-blob-catalogue.ts): what it stores is published there, what the catalogue
 * holds for a repository it serves is imported here.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { CollectReport } from './collect.ts';
import type { IngestOutcome } from './ingest.ts';
import type { ImportJob } from './import.ts';
import { manifestSize } from './manifest.ts';
import { BigstoreReader, type BigstoreTotals, type ChunkListing, type RawFrame } from './reader.ts';
import type { FromWorker, JobResult, ScanReport, ToWorker, WorkerJob } from './worker-protocol.ts';
import type { PackObjectsHook } from '../repo/upload-pack.ts';
import type { GitRunner } from '../repo/git-command.ts';
import { writeBlobPack } from './blob-pack.ts';
import { mkdir } from 'node:fs/promises';

/** The worker's entry, beside this file: ingest-worker-main.ts in a clone, .js once built. */
const WORKER_MAIN = fileURLToPath(new URL(`./ingest-worker-main${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url));
/** The pack-objects hook's entry (splice.ts), beside this file too. */
const HOOK_MAIN = fileURLToPath(new URL(`./pack-objects-hook-main${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url));
/** After the worker failed, how long before another is started (jobs fail at once meanwhile). */
const RESTART_DELAY_MS = 30_000;
/** How long a blob whose ingest failed is not tried again by reads. */
const RETRY_FAILED_BLOB_MS = 10 * 60_000;

/** The longest a job may take (a 4 GiB ingest takes about 40 s here) before the worker is stopped. */
const JOB_TIMEOUT_MS = 15 * 60_000;
/** How long close() lets the job in hand finish before the worker is stopped. */
const CLOSE_GRACE_MS = 5_000;

export interface BigstoreStats {
  ingested: number;
  ingestFailures: number;
  storedBytes: number;
  rangeReads: number;
}

export class Bigstore {
  readonly dir: string;
  readonly #gitHomeDir: string;
  readonly #logger: Pick<Logger, 'warn' | 'info' | 'debug'>;
  readonly #reader: BigstoreReader;
  #worker: Worker | null = null;
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (result: JobResult) => void; reject: (error: Error) => void }>();
  /** Ingests asked for and not done, by repository and oid: a second ask waits on the first. */
  readonly #ingesting = new Map<string, Promise<IngestOutcome>>();
  #closed = false;
  /** When the worker last failed (0: never): a broken worker is not restarted in a loop. */
  #failedAt = 0;
  /** Blobs whose ingest failed, and when: reads do not retry them on every request. */
  readonly #failedBlobs = new Map<string, number>();
  /** A repository was forgotten since the last collection: there may be garbage. */
  #dirty = false;
  readonly stats: BigstoreStats = { ingested: 0, ingestFailures: 0, storedBytes: 0, rangeReads: 0 };
  readonly #heldListeners: Array<(repoId: string, gitDir: string, oids: readonly string[]) => void> = [];

  constructor(dir: string, gitHomeDir: string, logger: Pick<Logger, 'warn' | 'info' | 'debug'>) {
    this.dir = dir;
    this.#gitHomeDir = gitHomeDir;
    this.#logger = logger;
    this.#reader = new BigstoreReader(path.join(dir, 'bigstore.db'), path.join(dir, 'segments'));
  }

  /** True when the store holds the blob, so reads of it can come from here. */
  has(oid: string): boolean {
    return this.#reader.has(oid);
  }

  /** The blob's bytes (or a range of them); has(oid) must be true. */
  open(oid: string, range: { readonly start: number; readonly end: number } | null): Readable {
    this.stats.rangeReads++;
    return this.#reader.open(oid, range);
  }

  /**
   * Writes a one-object pack of a big blob the store holds for the repository into `packDir`
   * (a quarantine's, under `env`): the base of a thin push against an evicted blob.
   */
  async writeBlobPack(git: GitRunner, repoId: string, gitDir: string, env: Readonly<Record<string, string>>, oid: string, packDir: string): Promise<void> {
    const held = this.heldFor(repoId, oid);
    if (held === null) throw new Error(`the chunk store holds no blob ${oid} for this repository`);
    await mkdir(packDir, { recursive: true });
    await writeBlobPack(git, gitDir, env, held.size, this.#reader.rawFrames(oid), packDir);
  }

  /** The blob's frames as stored, for a pack entry (pack-entry.ts); has(oid) must be true. */
  rawFrames(oid: string): AsyncIterable<RawFrame> {
    return this.#reader.rawFrames(oid);
  }

  /** Whether the store has the chunk (SHA-256, hex): an import downloads only the others. */
  hasChunk(hash: string): boolean {
    return this.#reader.hasChunk(Buffer.from(hash, 'hex'));
  }

  isLinked(repoId: string, oid: string): boolean {
    return !this.#closed && this.#reader.isLinked(repoId, oid);
  }

  /**
   * Takes a blob of the cluster's catalogue into this node's store, from segment objects
   * downloaded to disk, verified as it is copied (import.ts). Not an ingest: the cluster
   * already holds it, so no onHeld listener hears of it.
   */
  async importBlob(job: ImportJob): Promise<void> {
    const outcome = (await this.#run({ kind: 'import', ...job })) as IngestOutcome;
    this.#counted(outcome);
  }

  totals(): BigstoreTotals | null {
    return this.#reader.totals();
  }

  chunkListing(oid: string): ChunkListing | null {
    return this.#reader.chunkListing(oid);
  }

  /**
   * Where to read a big blob the repository holds (git has confirmed it): from the store
   * when the store has it — linking this repository to it if it was not, so a collection
   * keeps it — and otherwise from git, while the blob is ingested for the next read.
   */
  serves(repoId: string, gitDir: string, oid: string): boolean {
    if (this.#closed) return false;
    if (!this.has(oid)) {
      this.ingestInBackground(repoId, gitDir, oid);
      return false;
    }
    if (!this.#reader.isLinked(repoId, oid)) this.ingestInBackground(repoId, gitDir, oid);
    return true;
  }

  /**
   * The blob, when the store holds it for this repository: a link is made only after git
   * confirmed that the repository holds the blob, and Grove never prunes objects, so the
   * link is as good as asking git (and costs no process). Null otherwise.
   */
  heldFor(repoId: string, oid: string): { oid: string; type: 'blob'; size: number } | null {
    if (this.#closed || !this.#reader.isLinked(repoId, oid)) return null;
    const manifest = this.#reader.manifest(oid);
    return manifest === null ? null : { oid, type: 'blob', size: manifestSize(manifest) };
  }

  /**
   * The pack-objects hook for fetches from a repository whose git lacks big blobs the store
   * holds for it (evicted, or asked for by id in `extraBlobs`): it adds them to the pack.
   * Null for a repository the store holds nothing for.
   */
  packObjectsHook(repoId: string, extraBlobs: readonly string[] = [], options: { readonly windowsClient?: boolean } = {}): PackObjectsHook | null {
    if (this.#closed || (extraBlobs.length === 0 && !this.repositoryHasBigBlobs(repoId))) return null;
    return {
      command: `${shellQuote(process.execPath)} ${shellQuote(HOOK_MAIN)}`,
      env: {
        GROVE_BIGSTORE_DIR: this.dir,
        GROVE_REPO_ID: repoId,
        ...(extraBlobs.length > 0 ? { GROVE_EXTRA_BLOBS: extraBlobs.join(' ') } : {}),
        ...(options.windowsClient ? { GROVE_WINDOWS_CLIENT: '1' } : {}),
      },
    };
  }

  /** The repositories the store holds big blobs for, and which. */
  linkedRepositories(): string[] {
    return this.#closed ? [] : this.#reader.linkedRepositories();
  }

  linkedBlobs(repoId: string): string[] {
    return this.#closed ? [] : this.#reader.linkedBlobs(repoId);
  }

  /** Whether the repository is known to hold big blobs (so its pushes are worth scanning). */
  repositoryHasBigBlobs(repoId: string): boolean {
    return this.#reader.repositoryHasBigBlobs(repoId);
  }

  /** Stores one big blob of the repository; concurrent asks for the same blob share one ingest. */
  ingest(repoId: string, gitDir: string, oid: string): Promise<IngestOutcome> {
    const key = `${repoId}:${oid}`;
    let pending = this.#ingesting.get(key);
    if (pending === undefined) {
      pending = this.#run({ kind: 'ingest', repoId, gitDir, oid }).then((result) => this.#held(repoId, gitDir, [this.#counted(result as IngestOutcome)])[0]!);
      pending.catch(() => undefined).finally(() => this.#ingesting.delete(key));
      this.#ingesting.set(key, pending);
    }
    return pending;
  }

  /**
   * Stores a big file spooled to disk (an API upload) as a blob of the repository, straight
   * into the store: resolves with its oid once it is durable. Git never holds it, so the
   * repository must be one whose blobs may be evicted.
   */
  async ingestFile(repoId: string, file: string): Promise<{ oid: string; size: number }> {
    const outcome = this.#counted((await this.#run({ kind: 'ingest-file', repoId, file })) as IngestOutcome);
    if (outcome.kind === 'skipped') throw new Error(outcome.reason);
    const held = this.heldFor(repoId, outcome.oid);
    if (held === null) throw new Error(`the chunk store did not keep ${outcome.oid}`);
    return { oid: outcome.oid, size: held.size };
  }

  /** After a push: ingests the big blobs the new tips brought (`exclude`: every ref before it). */
  scan(repoId: string, gitDir: string, tips: readonly string[], exclude: readonly string[]): Promise<ScanReport> {
    return this.#run({ kind: 'scan', repoId, gitDir, tips, exclude }).then((result) => {
      const report = result as ScanReport;
      this.#held(repoId, gitDir, report.outcomes.map((outcome) => this.#counted(outcome)));
      return report;
    });
  }

  /** Best effort, never failing the caller: ingest in the background and log what went wrong. */
  ingestInBackground(repoId: string, gitDir: string, oid: string): void {
    if (this.#closed) return;
    const failed = this.#failedBlobs.get(oid);
    if (failed !== undefined && Date.now() - failed < RETRY_FAILED_BLOB_MS) return;
    this.ingest(repoId, gitDir, oid).catch((error: unknown) => {
      this.#failedBlobs.set(oid, Date.now());
      if (this.#failedBlobs.size > 10_000) this.#failedBlobs.delete(this.#failedBlobs.keys().next().value!);
      this.#logger.warn({ err: error, repoId, oid }, 'big blob ingest failed');
    });
  }

  scanInBackground(repoId: string, gitDir: string, tips: readonly string[], exclude: readonly string[]): void {
    if (this.#closed || tips.length === 0) return;
    this.scan(repoId, gitDir, tips, exclude).catch((error: unknown) => {
      this.stats.ingestFailures++;
      this.#logger.warn({ err: error, repoId }, 'big blob scan after a push failed');
    });
  }

  /** A deleted repository's links go; its blobs are collected when no other repository links them. */
  async forgetRepository(repoId: string): Promise<void> {
    if (this.#closed || !this.#reader.repositoryHasBigBlobs(repoId)) return;
    await this.#run({ kind: 'forget', repoId });
    this.#dirty = true;
  }

  /**
   * Links blobs the store holds to repositories that reach them through another's objects
   * (the forks of the repository they were pushed to): before the blobs leave that
   * repository's git, the forks must be able to serve them from the store.
   */
  async linkTo(repoIds: readonly string[], oids: readonly string[]): Promise<void> {
    if (repoIds.length === 0 || oids.length === 0) return;
    await this.#run({ kind: 'link', repoIds, oids });
  }

  /** A new fork or snapshot borrows its source's objects: it gets the source's links too. */
  async copyLinks(fromRepoId: string, toRepoId: string): Promise<void> {
    if (this.#closed || !this.#reader.repositoryHasBigBlobs(fromRepoId)) return;
    await this.#run({ kind: 'copy-links', fromRepoId, toRepoId });
  }

  /** Collects when a repository was forgotten since the last collection (the sweeper calls it every pass). */
  async collectIfNeeded(): Promise<CollectReport | null> {
    if (!this.#dirty || this.#closed) return null;
    this.#dirty = false;
    return this.collect();
  }

  async collect(): Promise<CollectReport> {
    const report = (await this.#run({ kind: 'collect' })) as CollectReport;
    this.#reader.invalidate();
    return report;
  }

  /**
   * Calls `listener` whenever the store has durably taken big blobs of a repository (stored
   * or linked, verified and fsynced): git may then let them go (eviction).
   */
  onHeld(listener: (repoId: string, gitDir: string, oids: readonly string[]) => void): void {
    this.#heldListeners.push(listener);
  }

  /** Blobs the store held all along went back into git (a thin push's bases): they may leave it again. */
  heldAgain(repoId: string, gitDir: string, oids: readonly string[]): void {
    this.#held(repoId, gitDir, oids.map((oid) => ({ kind: 'linked', oid })));
  }

  #held(repoId: string, gitDir: string, outcomes: readonly IngestOutcome[]): readonly IngestOutcome[] {
    const oids = outcomes.flatMap((o) => (o.kind === 'stored' || o.kind === 'linked' ? [o.oid] : []));
    if (oids.length > 0) for (const listener of this.#heldListeners) listener(repoId, gitDir, oids);
    return outcomes;
  }

  #counted(outcome: IngestOutcome): IngestOutcome {
    if (outcome.kind === 'stored') {
      this.stats.ingested++;
      this.stats.storedBytes += outcome.storedBytes;
      this.#logger.info({ size: outcome.size, chunks: outcome.chunks, newChunks: outcome.newChunks, storedBytes: outcome.storedBytes }, 'big blob stored');
    }
    return outcome;
  }

  #run(job: WorkerJob): Promise<JobResult> {
    if (this.#closed) return Promise.reject(new Error('the chunk store is closed'));
    if (this.#worker === null && Date.now() - this.#failedAt < RESTART_DELAY_MS) return Promise.reject(new Error('the chunk store worker failed recently; not restarted yet'));
    const worker = this.#start();
    const id = this.#nextId++;
    return new Promise<JobResult>((resolve, reject) => {
      // A job that never answers stops the worker (its jobs fail; the next write starts another).
      const stuck = setTimeout(() => {
        if (!this.#waiting.has(id)) return;
        this.#logger.warn({ job: job.kind }, `a chunk store job did not answer within ${JOB_TIMEOUT_MS} ms: stopping the worker`);
        this.#failedAt = Date.now();
        void worker.terminate();
      }, JOB_TIMEOUT_MS);
      stuck.unref();
      this.#waiting.set(id, {
        resolve: (result) => {
          clearTimeout(stuck);
          resolve(result);
        },
        reject: (error) => {
          clearTimeout(stuck);
          if (job.kind === 'ingest' || job.kind === 'scan') this.stats.ingestFailures++;
          reject(error);
        },
      });
      // Referenced while it has work, so a process waiting on a job does not exit under it.
      if (this.#waiting.size === 1) worker.ref();
      worker.postMessage({ id, job } satisfies ToWorker);
    });
  }

  /** The worker starts with the first write: a server with no big blob never runs one. */
  #start(): Worker {
    if (this.#worker !== null) return this.#worker;
    // No flags of this process: its entry adds the module resolution it needs, and a worker refuses some flags (--input-type).
    const worker = new Worker(WORKER_MAIN, { workerData: { dir: this.dir, gitHomeDir: this.#gitHomeDir }, execArgv: [] });
    worker.on('message', (message: FromWorker) => {
      if ('ready' in message) return;
      const waiting = this.#waiting.get(message.id);
      this.#waiting.delete(message.id);
      if (this.#waiting.size === 0) worker.unref();
      if (message.ok) waiting?.resolve(message.result);
      else waiting?.reject(new Error(message.error));
    });
    worker.on('error', (error) => {
      this.#failedAt = Date.now();
      this.#logger.warn({ err: error }, 'the chunk store worker failed');
    });
    worker.on('exit', () => {
      // A worker that died takes its jobs with it: they fail, and the next write starts a new one.
      if (this.#worker === worker) this.#worker = null;
      for (const [id, waiting] of this.#waiting) {
        this.#waiting.delete(id);
        waiting.reject(new Error('the chunk store worker stopped'));
      }
    });
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  /** Waits for every job asked for so far (tests and shutdown). */
  async idle(timeoutMs = 5 * 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#waiting.size > 0) {
      // A job that never answers is a bug to report, not a wait without end.
      if (Date.now() > deadline) throw new Error(`the chunk store still has ${this.#waiting.size} job(s) unanswered after ${timeoutMs} ms`);
      await Promise.allSettled([...this.#ingesting.values(), new Promise((r) => setTimeout(r, 20))]);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    if (worker !== null) {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ id: 0, stop: true } satisfies ToWorker);
      const timer = setTimeout(() => void worker.terminate(), CLOSE_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    await this.#reader.close();
  }
}

/** A word for /bin/sh, whatever it holds. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
