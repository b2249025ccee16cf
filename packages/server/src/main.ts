/**
 * The composition root: config → data dir → database → repository store → HTTP.
 * `startServer` returns once the server is listening; `close()` drains it.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { loadAdminToken } from './auth/admin-token.ts';
import type { GroveConfig } from './config.ts';
import { openDatabase, type Db } from './db/database.ts';
import { RepositoryStoreLock } from './db/repository-store-lock.ts';
import { disableRepoLookupCache } from './db/repos.ts';
import { EvictionScheduler, type BigBlobEvictions } from './bigstore/eviction-scheduler.ts';
import { disableOrgLookupCache } from './db/orgs.ts';
import { DatabaseLeases, SoleNodeLeases, type Leases } from './cluster/leases.ts';
import { PostgresRefStore } from './cluster/postgres-ref-store.ts';
import { Compactor } from './cluster/compaction.ts';
import { BigBlobCatalogue } from './cluster/big-blob-catalogue.ts';
import { ClusterEvictions } from './cluster/cluster-evictions.ts';
import type { CacheBudget } from './cluster/cache-budget.ts';
import { StoreSweep } from './cluster/store-sweep.ts';
import { ClusterRepoCache, LocalRepositories, type RepoCache } from './cluster/repo-cache.ts';
import { JournaledRefStore, type RefStore } from './repo/ref-store.ts';
import { openObjectStore } from './storage/open-object-store.ts';
import { buildApp } from './http/app.ts';
import { Authenticator } from './auth/authenticator.ts';
import { RevokedTokens } from './auth/revoked-tokens.ts';
import { loadServerKeys } from './secrets/server-key.ts';
import { SecretStore } from './secrets/secret-store.ts';
import { GuardedFetch } from './outbound/guarded-fetch.ts';
import { DiskSpace } from './storage/disk-space.ts';
import { FairShare } from './http/fair-share.ts';
import { OutboundPolicy } from './outbound/outbound-policy.ts';
import { Metrics } from './http/metrics.ts';
import { RepoStore } from './repo/store.ts';
import type { AppContext } from './http/context.ts';
import { Sweeper } from './services/sweeper.ts';
import { Bigstore } from './bigstore/bigstore.ts';
import { gitHomeDir } from './repo/layout.ts';
import { EventLog } from './events/event-log.ts';
import { AuditWriter } from './http/audit.ts';
import { WebhookWorker } from './events/webhook-worker.ts';
import { SyncScheduler } from './sync/scheduler.ts';
import { Imports } from './services/imports.ts';
import { findRef } from './repo/ref-snapshot.ts';
import { isAncestor } from './repo/resolve.ts';
import { VERSION } from './version.ts';

export { VERSION } from './version.ts';
export { loadConfig, ConfigError, type GroveConfig } from './config.ts';

export interface RunningServer {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly db: Db;
  readonly repos: RepoStore;
  /** This node's chunk store of big blobs (tests wait for its ingests). */
  readonly bigstore: Bigstore;
  /** Eviction of big blobs from git once the store holds them (one node, or a cluster's); null when off (GROVE_EVICT_BIG_BLOBS). */
  readonly evictions: BigBlobEvictions | null;
  /** Cluster mode's compactor (tests wait for it); null on one node. */
  readonly compactor: Compactor | null;
  /** Cluster mode's sweep of the object store (tests run it with a later clock); null on one node. */
  readonly storeSweep: StoreSweep | null;
  /** Cluster mode's disk budget of the repository copies (GROVE_CACHE_BYTES); null on one node. */
  readonly cacheBudget: CacheBudget | null;
  /** The admin token if this start generated it (print it once), else null. */
  readonly generatedAdminToken: string | null;
  /** Remote sync's scheduler (tests wait for an upstream's runs with `idle`). */
  readonly sync: SyncScheduler;
  /** Imports running on this node (tests wait for them with `idle`). */
  readonly imports: Imports;
  /** Runs a sweep now (tests; the server sweeps on its own every GROVE_SWEEP_INTERVAL_MS). */
  sweep(): Promise<void>;
  /** Stops accepting, lets in-flight requests finish within the grace period, then kills the rest. */
  close(): Promise<void>;
}

export interface ServerHooks {
  /** The server stopped itself (it lost its database lock to another node); `grove serve` exits 1. */
  readonly onFatal?: (error: Error) => void;
}

export async function startServer(config: GroveConfig, logger: Logger = pino({ level: config.logLevel }), hooks: ServerHooks = {}): Promise<RunningServer> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const adminToken = await loadAdminToken(config.dataDir, config.adminToken);
  const cluster = config.objectStore !== null;
  // One node per database unless repositories live in the object store (then nodes are caches).
  const storeLock = config.databaseUrl === null || cluster
    ? null
    : await RepositoryStoreLock.take(config.databaseUrl, `grove:${config.nodeId}`, (error) => {
        logger.fatal({ err: error }, 'lost the database lock to another node: shutting down');
        void running.close().finally(() => hooks.onFatal?.(error));
      });
  const { db, durability } = await openDatabase(
    config.databaseUrl === null ? { file: path.join(config.dataDir, 'grove.db') } : { url: config.databaseUrl, applicationName: `grove:${config.nodeId}` },
  ).catch(async (error: unknown) => {
    await storeLock?.release();
    throw error;
  });
  const secrets = new SecretStore(await loadServerKeys(config.dataDir, config.secretKeys));
  const sealed = await secrets.sealPlaintext(db, durability);
  if (sealed > 0) logger.info({ sealed }, 'sealed secrets stored in plaintext by an older version');
  const disk = new DiskSpace(config.dataDir, config.diskReserveBytes);
  const repos = new RepoStore(config.dataDir, config.limits, config.packCache, { pushesPerRun: config.maintenancePushes }, logger, disk);
  const recovery = await repos.open();
  const bigstore = new Bigstore(path.join(config.dataDir, 'bigstore'), gitHomeDir(config.dataDir), logger);
  repos.onRemove((repoId) => bigstore.forgetRepository(repoId).catch((error: unknown) => logger.warn({ err: error, repoId }, 'the chunk store could not forget a removed repository')));
  if (recovery.quarantines + recovery.keepFiles + recovery.tempFiles + recovery.lockFiles > 0) {
    logger.warn({ ...recovery }, 'recovered from an unclean shutdown');
  }
  const known = new Set((await db.selectFrom('repos').select('id').execute()).map((r) => r.id));
  const orphans = await repos.removeOrphans(known);
  if (orphans > 0) logger.warn({ orphans }, 'removed repository directories without a database row (a crash during a create or delete)');
  const metrics = new Metrics(repos.git, repos.packCache, repos.maintenance.stats, repos.transaction.stats);
  const events = new EventLog(db, durability);
  const objectStore = config.objectStore === null ? null : await openObjectStore(config.objectStore);
  let refStore: RefStore;
  let repoCache: RepoCache;
  let leases: Leases;
  let compactor: Compactor | null = null;
  let cacheBudget: CacheBudget | null = null;
  let storeSweep: StoreSweep | null = null;
  let bigBlobCatalogue: BigBlobCatalogue | null = null;
  let clusterEvictions: ClusterEvictions | null = null;
  if (objectStore === null) {
    // Embedded: the repositories' own refs are the truth; events journaled around their moves.
    refStore = new JournaledRefStore(repos.transaction, events);
    repoCache = new LocalRepositories();
    leases = new SoleNodeLeases();
    const recovered = await events.recover(
      async (repoId, ref) => findRef(await repos.refs.read(repos.gitDir(repoId)), ref)?.oid ?? null,
      async (repoId, before, after) => !(await isAncestor(repos.git, repos.gitDir(repoId), before, after)),
    );
    if (recovered.committed + recovered.dropped > 0) logger.warn(recovered, 'resolved events journaled before an unclean shutdown');
  } else {
    // Cluster: refs in PostgreSQL, packs in the object store, events in the ref transaction.
    await objectStore.check();
    // Stored once across the cluster: the chunk store's catalogue in PostgreSQL, its segments in the object store.
    const scratchDir = path.join(config.dataDir, 'bigstore', 'scratch');
    await rm(scratchDir, { recursive: true, force: true }); // what a stop left mid-publish or mid-import
    await mkdir(scratchDir, { recursive: true });
    const catalogue = new BigBlobCatalogue(db, objectStore, bigstore, { graceMs: config.packGraceMs, scratchDir });
    bigBlobCatalogue = catalogue;
    const evictions = new ClusterEvictions(db, catalogue, bigstore, repos.maintenance, (id) => repos.gitDir(id), logger, config.evictBigBlobs);
    if (config.evictBigBlobs) clusterEvictions = evictions;
    const cache = new ClusterRepoCache(db, objectStore, repos.git, repos.refs, repos.transaction, {
      afterDownload: (repoId, gitDir, releasedPacks) => evictions.synced(repoId, gitDir, releasedPacks),
      cacheBytes: config.cacheBytes,
      minIdleMs: config.cacheMinIdleMs,
      reposDir: path.join(config.dataDir, 'repos'),
      gitDir: (id) => repos.gitDir(id),
      removeCopy: (id) => repos.remove(id),
      onError: (error) => logger.warn({ err: error }, 'cache budget check failed'),
    });
    // Measuring what a previous run left walks every copy: in the background, not before listening.
    void cache.budget.open().catch((error: unknown) => logger.warn({ err: error }, 'cache budget: measuring the copies failed'));
    cacheBudget = cache.budget;
    repoCache = cache;
    leases = new DatabaseLeases(db, config.nodeId);
    const compaction = new Compactor(db, objectStore, cache, repos.git, leases, logger, { maxLivePacks: config.maxLivePacks }, evictions);
    evictions.attach(compaction);
    storeSweep = new StoreSweep(db, objectStore, { graceMs: config.packGraceMs, orphanAgeMs: config.packGraceMs });
    compactor = compaction;
    refStore = new PostgresRefStore(db, events, objectStore, cache, repos.git, repos.refs, repos.transaction, (repo) => compaction.request(repo.id, repo.gitDir));
    disableRepoLookupCache(db); // another node may rename or delete a repository
    disableOrgLookupCache(db);
    await events.follow();
    logger.info({ node: config.nodeId, objectStore: objectStore.description }, 'cluster mode');
  }
  const outbound = new GuardedFetch(new OutboundPolicy(config.allowedOutbound));
  const webhooks = new WebhookWorker(db, events, secrets, outbound, logger, undefined, leases);
  let ready = true;
  const revokedTokens = await RevokedTokens.load(db);
  if (cluster) revokedTokens.shared();
  const fairShare = new FairShare({ ...config.fairShare, queueTimeoutMs: config.limits.queueTimeoutMs }, (key, org) => metrics.fairShareRefused.inc({ key, org }));
  metrics.watchFairShare(fairShare);
  metrics.watchBigstore(bigstore.stats, () => bigstore.totals());
  if (bigBlobCatalogue !== null) metrics.watchBigBlobCatalogue(bigBlobCatalogue.stats);
  // Stored once: a big blob the store holds leaves git (a cluster: ClusterEvictions, above).
  const localEvictions = config.evictBigBlobs && objectStore === null ? new EvictionScheduler(db, bigstore, repos.maintenance, repos.git, (id) => repos.gitDir(id), logger) : null;
  // Blobs stored before a stop but not yet evicted leave git now.
  void localEvictions?.resume().catch((error: unknown) => logger.warn({ err: error }, 'resuming big blob eviction failed'));
  const evictions: BigBlobEvictions | null = localEvictions ?? clusterEvictions;
  const sync = new SyncScheduler({
    db,
    durability,
    events,
    secrets,
    outbound,
    git: repos.git,
    refView: repos.refs,
    refStore,
    repoCache,
    leases,
    metrics,
    logger,
    gitDir: (id) => repos.gitDir(id),
    concurrency: config.sync.concurrency,
    remote: { allowHttp: config.sync.allowInsecureRemotes },
    onRefsMoved: (repo) => repos.maintenance.notePush(repo.gitDir),
  });
  const imports = new Imports();
  const ctx: AppContext = {
    events,
    sync,
    imports,
    audit: new AuditWriter(db, durability, (error) => logger.warn({ err: error }, 'audit write failed')),
    durability,
    config,
    db,
    repos,
    refStore,
    repoCache,
    bigstore,
    leases,
    compactor,
    storeSweep,
    bigBlobCatalogue,
    auth: new Authenticator(db, adminToken.digest, revokedTokens),
    revokedTokens,
    secrets,
    outbound,
    fairShare,
    metrics,
    agent: `grove/${VERSION}`,
    isReady: () => ready,
  };
  const app = await buildApp(ctx, logger);
  const sweeper = new Sweeper(ctx, logger, config.sweepIntervalMs);
  await app.listen({ host: config.host, port: config.port });
  sweeper.start();
  webhooks.start();
  await sync.start();
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | null = null;
  const running: RunningServer = {
    url: `http://${host}:${address.port}`,
    app,
    db,
    repos,
    bigstore,
    evictions,
    compactor,
    storeSweep,
    cacheBudget,
    sync,
    imports,
    generatedAdminToken: adminToken.generated,
    sweep: () => sweeper.sweep(),
    close() {
      closing ??= (async () => {
        ready = false;
        // Keep-alive connections that finish their request during the drain are closed as
        // soon as they go idle, instead of holding shutdown open until the grace period.
        const closeIdle = setInterval(() => app.server.closeIdleConnections(), 50);
        const timer = setTimeout(() => {
          logger.warn({ children: repos.git.activeChildren }, 'shutdown grace period over: aborting in-flight work');
          repos.git.killAll();
          app.server.closeAllConnections();
        }, config.shutdownGraceMs);
        timer.unref();
        await app.close();
        await sweeper.stop();
        await webhooks.stop();
        await sync.stop();
        await imports.idle();
        events.stopFollowing();
        compactor?.stop();
        await compactor?.idle();
        await leases.releaseAll();
        await objectStore?.close();
        await outbound.close();
        await repos.maintenance.stop();
        await bigstore.close();
        await repos.close();
        clearTimeout(timer);
        clearInterval(closeIdle);
        await db.destroy();
        await durability.close();
        await storeLock?.release();
      })();
      return closing;
    },
  };
  return running;
}
