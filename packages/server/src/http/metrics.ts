/** Prometheus metrics served at /metrics; one registry per server instance. */
import type { CatalogueStats } from '../cluster/big-blob-catalogue.ts';
import type { BigstoreStats } from '../bigstore/bigstore.ts';
import type { BigstoreTotals } from '../bigstore/reader.ts';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GitRunner } from '../repo/git-command.ts';
import type { MaintenanceStats } from '../repo/maintenance.ts';
import type { PackCache } from '../repo/pack-cache.ts';
import type { TransactionStats } from '../repo/ref-transaction.ts';
import type { ConnectionGuard } from './connection-guard.ts';
import type { FairShare } from './fair-share.ts';

export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly requestDuration: Histogram<'method' | 'route' | 'status'>;
  readonly pushes: Counter<'result'>;
  readonly pushPhases: Histogram<'phase'>;
  readonly pushDuration: Histogram;
  readonly pushBytes: Counter;
  readonly refUpdates: Counter<'result'>;
  readonly fetches: Counter<'protocol' | 'command'>;
  readonly fetchBytes: Counter;

  readonly syncRuns = new Counter({ name: 'grove_sync_runs_total', help: 'remote sync runs finished, by direction and status (succeeded, partial, failed)', labelNames: ['direction', 'status'], registers: [this.registry] });
  readonly syncRefOutcomes = new Counter({ name: 'grove_sync_ref_outcomes_total', help: 'per-ref outcomes of remote sync runs (created, updated, forced, deleted, diverged, kept, rejected, stale, failed, filtered)', labelNames: ['outcome'], registers: [this.registry] });
  readonly syncLag = new Histogram({
    name: 'grove_sync_lag_seconds',
    help: 'from a trigger (webhook received, Grove push accepted, manual request) to its refs moved on the other side',
    labelNames: ['kind'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  readonly syncPolls = new Histogram({
    name: 'grove_sync_poll_seconds',
    help: 'polls of upstreams (one ls-remote and the comparison), by result (noop: nothing to do, run: a run followed, failed)',
    labelNames: ['result'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly fairShareRefused = new Counter({ name: 'grove_fair_share_refused_total', help: 'requests refused 429 by fair share, by credential (key id, signing-key:<id> or root) and org', labelNames: ['key', 'org'], registers: [this.registry] });

  /** Running and queued requests of every credential and org with activity (http/fair-share.ts). */
  watchFairShare(share: FairShare): void {
    new Gauge({
      name: 'grove_fair_share_requests',
      help: 'git work running or queued, by credential (scope="key") and by org (scope="org"); idle ones are not listed',
      labelNames: ['scope', 'name', 'state'],
      registers: [this.registry],
      collect() {
        this.reset();
        const { keys, orgs } = share.snapshot();
        for (const [scope, map] of [['key', keys], ['org', orgs]] as const) {
          for (const [name, counts] of map) {
            this.set({ scope, name, state: 'running' }, counts.running);
            this.set({ scope, name, state: 'queued' }, counts.queued);
          }
        }
      },
    });
  }

  /** The chunk store of big blobs (bigstore/): what it holds and what it did since start. */
  watchBigstore(stats: BigstoreStats, totals: () => BigstoreTotals | null): void {
    const registers = [this.registry];
    new Gauge({
      name: 'grove_bigstore_ingests',
      help: 'Big blobs ingested into the chunk store since start, by result',
      labelNames: ['result'],
      registers,
      collect() {
        this.set({ result: 'stored' }, stats.ingested);
        this.set({ result: 'failed' }, stats.ingestFailures);
      },
    });
    new Gauge({ name: 'grove_bigstore_reads', help: 'Reads of big blobs (whole or a range) served from the chunk store since start', registers, collect() { this.set(stats.rangeReads); } });
    new Gauge({
      name: 'grove_bigstore_bytes',
      help: 'The chunk store: logical bytes of the blobs it holds, bytes of their distinct chunks as stored, and bytes of its segment files',
      labelNames: ['kind'],
      registers,
      collect() {
        const now = totals();
        if (now === null) return;
        this.set({ kind: 'logical' }, now.logicalBytes);
        this.set({ kind: 'stored' }, now.storedBytes);
        this.set({ kind: 'segments' }, now.segmentBytes);
      },
    });
  }

  /** Cluster mode: the chunk store's catalogue as this node has used it (cluster/big-blob-catalogue.ts). */
  watchBigBlobCatalogue(stats: CatalogueStats): void {
    const registers = [this.registry];
    new Gauge({
      name: 'grove_bigstore_cluster_blobs',
      help: 'Big blobs this node published to the cluster\'s chunk store, imported from it, and collected from it, since start',
      labelNames: ['action'],
      registers,
      collect() {
        this.set({ action: 'published' }, stats.blobsPublished);
        this.set({ action: 'imported' }, stats.blobsImported);
        this.set({ action: 'collected' }, stats.blobsCollected);
      },
    });
    new Gauge({
      name: 'grove_bigstore_cluster_bytes',
      help: 'Bytes of segments this node uploaded to the object store and downloaded from it, since start',
      labelNames: ['direction'],
      registers,
      collect() {
        this.set({ direction: 'uploaded' }, stats.bytesUploaded);
        this.set({ direction: 'downloaded' }, stats.bytesDownloaded);
      },
    });
  }

  /** Open connections and refusals of the connection limits (http/connection-guard.ts). */
  watchConnections(guard: ConnectionGuard): void {
    const registers = [this.registry];
    new Gauge({ name: 'grove_http_connections', help: 'HTTP connections open', registers, collect() { this.set(guard.open); } });
    new Gauge({
      name: 'grove_http_connections_refused',
      help: 'connections refused with 503 since start, by the limit they hit (total, per_address)',
      labelNames: ['limit'],
      registers,
      collect() {
        this.set({ limit: 'total' }, guard.refused.total);
        this.set({ limit: 'per_address' }, guard.refused.perAddress);
      },
    });
  }

  constructor(git: GitRunner, packCache: PackCache | null, maintenance: MaintenanceStats, transactions: TransactionStats) {
    const gitLimiter = git.limiter;
    // prom-client's default names already start with process_ or nodejs_: grove_process_cpu_seconds_total, grove_nodejs_heap_size_used_bytes.
    collectDefaultMetrics({ register: this.registry, prefix: 'grove_' });
    const registers = [this.registry];
    this.requests = new Counter({ name: 'grove_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers });
    this.requestDuration = new Histogram({
      name: 'grove_http_request_duration_seconds',
      help: 'HTTP request latency by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    new Gauge({ name: 'grove_git_processes_running', help: 'git child processes running', registers, collect() { this.set(gitLimiter.running); } });
    new Gauge({ name: 'grove_git_processes_queued', help: 'git child processes waiting for a slot', registers, collect() { this.set(gitLimiter.queued); } });
    new Gauge({
      name: 'grove_git_processes_started',
      help: 'git child processes started since start, by git command',
      labelNames: ['command'],
      registers,
      collect() {
        for (const [command, stats] of git.spawnStats) this.set({ command }, stats.count);
      },
    });
    new Gauge({
      name: 'grove_git_process_start_seconds',
      help: 'Time spent starting git child processes since start, by git command (divide by grove_git_processes_started for the mean)',
      labelNames: ['command'],
      registers,
      collect() {
        for (const [command, stats] of git.spawnStats) this.set({ command }, stats.startMs / 1000);
      },
    });
    const pushBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    this.pushPhases = new Histogram({
      name: 'grove_git_push_phase_seconds',
      help: 'Time spent in each phase of a push: parse, receive (pack into index-pack), objects, migrate, journal, refs, settle, report',
      labelNames: ['phase'],
      buckets: pushBuckets,
      registers,
    });
    this.pushDuration = new Histogram({
      name: 'grove_git_push_seconds',
      help: 'Time from a receive-pack request to its report, for pushes that reached the report',
      buckets: pushBuckets,
      registers,
    });
    new Gauge({ name: 'grove_ref_transactions', help: 'update-ref transactions run since start (a batch of writers shares one)', registers, collect() { this.set(transactions.transactions); } });
    new Gauge({ name: 'grove_ref_transaction_writers', help: 'Writers (a push, an API write, each ref of a non-atomic push) answered by those transactions', registers, collect() { this.set(transactions.groups); } });
    this.pushes = new Counter({ name: 'grove_git_pushes_total', help: 'Pushes by result (ok: every ref updated, partial, rejected)', labelNames: ['result'], registers });
    this.pushBytes = new Counter({ name: 'grove_git_push_bytes_total', help: 'Pack bytes received by pushes', registers });
    this.refUpdates = new Counter({ name: 'grove_git_ref_updates_total', help: 'Ref updates requested by pushes, by result', labelNames: ['result'], registers });
    this.fetches = new Counter({ name: 'grove_git_fetch_requests_total', help: 'upload-pack requests by protocol version and command', labelNames: ['protocol', 'command'], registers });
    this.fetchBytes = new Counter({ name: 'grove_git_fetch_bytes_total', help: 'Bytes sent in upload-pack responses', registers });
    new Gauge({
      name: 'grove_maintenance_runs',
      help: 'Background maintenance runs since start, by result',
      labelNames: ['result'],
      registers,
      collect() {
        this.set({ result: 'ok' }, maintenance.runs);
        this.set({ result: 'failed' }, maintenance.failures);
        this.set({ result: 'skipped_low_disk' }, maintenance.skippedLowDisk);
      },
    });
    new Gauge({
      name: 'grove_bigstore_evicted',
      help: 'Big blobs evicted from git since start (the chunk store holds them), and the bytes that freed',
      labelNames: ['unit'],
      registers,
      collect() {
        this.set({ unit: 'blobs' }, maintenance.evictedBlobs);
        this.set({ unit: 'bytes' }, maintenance.evictedBytes);
      },
    });
    if (packCache !== null) {
      const stats = packCache.stats;
      new Gauge({
        name: 'grove_pack_cache_requests',
        help: 'Pack cache lookups since start: hit (complete entry), joined (single flight), miss (produced)',
        labelNames: ['result'],
        registers,
        collect() {
          this.set({ result: 'hit' }, stats.hits);
          this.set({ result: 'joined' }, stats.joined);
          this.set({ result: 'miss' }, stats.misses);
        },
      });
      new Gauge({ name: 'grove_pack_cache_bytes', help: 'Bytes held by the pack cache', registers, collect() { this.set(packCache.bytes); } });
      new Gauge({ name: 'grove_pack_cache_memory_bytes', help: 'Bytes of cached responses also held in memory', registers, collect() { this.set(packCache.memoryBytes); } });
      new Gauge({ name: 'grove_pack_cache_evictions', help: 'Pack cache entries evicted since start', registers, collect() { this.set(stats.evictions); } });
    }
  }
}
