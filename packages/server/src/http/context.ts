/** What every route handler can reach: built once by the composition root. */
import type { GroveConfig } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { Durability } from '../db/durability.ts';
import type { RepoStore } from '../repo/store.ts';
import type { RefStore } from '../repo/ref-store.ts';
import type { RepoCache } from '../cluster/repo-cache.ts';
import type { Leases } from '../cluster/leases.ts';
import type { StoreSweep } from '../cluster/store-sweep.ts';
import type { Compactor } from '../cluster/compaction.ts';
import type { BigBlobCatalogue } from '../cluster/big-blob-catalogue.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import type { RevokedTokens } from '../auth/revoked-tokens.ts';
import type { SecretStore } from '../secrets/secret-store.ts';
import type { GuardedFetch } from '../outbound/guarded-fetch.ts';
import type { FairShare } from './fair-share.ts';
import type { Metrics } from './metrics.ts';
import type { EventLog } from '../events/event-log.ts';
import type { AuditWriter } from './audit.ts';
import type { Bigstore } from '../bigstore/bigstore.ts';
import type { SyncScheduler } from '../sync/scheduler.ts';
import type { Imports } from '../services/imports.ts';

export interface AppContext {
  readonly config: GroveConfig;
  readonly db: Db;
  /** Await before acknowledging a database write (db/durability.ts). */
  readonly durability: Durability;
  readonly repos: RepoStore;
  /** The one path by which refs move, with their events (repo/ref-store.ts): embedded or cluster. */
  readonly refStore: RefStore;
  /** Brings this node's copy of a repository up to date before it is read (cluster); a no-op embedded. */
  readonly repoCache: RepoCache;
  /** This node's chunk store of big blobs (bigstore/): Range reads in O(chunk), chunk listings. */
  readonly bigstore: Bigstore;
  /** Cluster-wide jobs that one node runs at a time (webhook delivery, the sweeper). */
  readonly leases: Leases;
  /** Cluster mode: keeps the object store's pack count small; null on one node. */
  readonly compactor: Compactor | null;
  /** Cluster mode: deletes superseded and orphaned packs from the object store (the sweeper runs it); null on one node. */
  readonly storeSweep: StoreSweep | null;
  /** Cluster mode: the chunk store's catalogue in PostgreSQL, its segments in the object store; null on one node. */
  readonly bigBlobCatalogue: BigBlobCatalogue | null;
  readonly auth: Authenticator;
  /** Signed tokens revoked one by one (in memory, kept exact by this process). */
  readonly revokedTokens: RevokedTokens;
  /** Seals and opens the secrets Grove stores (webhook signing secrets). */
  readonly secrets: SecretStore;
  /** fetch for Grove's own outbound requests: no private destinations unless allowed, no redirects. */
  readonly outbound: GuardedFetch;
  /** Slots of git work per credential and org: one runaway key cannot starve the fleet. */
  readonly fairShare: FairShare;
  readonly metrics: Metrics;
  readonly events: EventLog;
  readonly audit: AuditWriter;
  /** Remote sync: queues and runs syncs with upstreams (sync/scheduler.ts). */
  readonly sync: SyncScheduler;
  /** Imports of remote repositories running on this node (services/imports.ts). */
  readonly imports: Imports;
  /** What Grove calls itself in `agent=` capabilities. */
  readonly agent: string;
  /** False once shutdown has begun: /healthz answers 503 so balancers move away. */
  readonly isReady: () => boolean;
}
