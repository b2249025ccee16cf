/** Flags, environment (GROVE_*) and defaults, validated once at startup. */
import os from 'node:os';
import path from 'node:path';
import { OutboundPolicy } from './outbound/outbound-policy.ts';
import { secretKeysFromEnv } from './secrets/server-key.ts';
import { parseObjectStore, type ObjectStoreConfig } from './storage/open-object-store.ts';

export interface GroveConfig {
  readonly dataDir: string;
  /**
   * Where metadata lives: null for the embedded SQLite file <data>/grove.db, or a
   * postgres:// URL (GROVE_DATABASE_URL). Repositories stay in <data>/repos either way.
   */
  readonly databaseUrl: string | null;
  /** This node's name in logs and in the database's node lock (GROVE_NODE_ID; the host name by default). */
  readonly nodeId: string;
  /**
   * Cluster mode (GROVE_OBJECT_STORE, with GROVE_DATABASE_URL): packs live in this object store,
   * refs in PostgreSQL, and <data>/repos is a cache any number of nodes keep. Null: one node.
   */
  readonly objectStore: ObjectStoreConfig | null;
  /** Cluster mode: live packs per repository above which it is compacted (GROVE_MAX_LIVE_PACKS). */
  readonly maxLivePacks: number;
  /** Cluster mode: how long a pack replaced by a compaction stays in the object store (GROVE_PACK_GRACE_MS). */
  readonly packGraceMs: number;
  /** Cluster mode: the disk budget of the node's repository copies, 0 for none (GROVE_CACHE_BYTES). */
  readonly cacheBytes: number;
  /** Cluster mode: a copy used this recently is never evicted (GROVE_CACHE_MIN_IDLE_MS). */
  readonly cacheMinIdleMs: number;
  readonly host: string;
  readonly port: number;
  /** Used as given when set; otherwise generated on first start and kept in <data>/admin-token. */
  readonly adminToken: string | null;
  /** Base URL for clone URLs in API answers; derived from the request's Host when null. */
  readonly publicUrl: string | null;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** json: one JSON object per line; pretty: one plain-text line per event; auto: pretty on a terminal. */
  readonly logFormat: 'json' | 'pretty' | 'auto';
  readonly limits: {
    /** Largest pack one push may send. */
    readonly maxPackBytes: number;
    /** Most ref updates in one push. */
    readonly maxPushCommands: number;
    /** Largest decoded fetch negotiation body (git http-backend uses 10 MB). */
    readonly maxNegotiationBytes: number;
    /** git processes running at once; more wait in a queue. */
    readonly maxGitProcesses: number;
    /** git processes running at once for one repository. */
    readonly maxGitProcessesPerRepo: number;
    /** How long work may wait in those queues before a retryable "busy" error. */
    readonly queueTimeoutMs: number;
    /** Start git children through the launcher process (repo/git-launcher.ts) rather than by forking Grove. */
    readonly gitLauncher: boolean;
    /** The niceness git children run at (launcher only): under CPU pressure Grove's own requests go first. */
    readonly gitNiceness: number;
  };
  readonly packCache: {
    /** Disk budget for cached fetch responses; 0 turns the cache off. */
    readonly maxBytes: number;
    readonly maxAgeMs: number;
    /** Memory for cached responses kept in memory as well (each at most a quarter of it); 0 keeps none. */
    readonly memoryBytes: number;
  };
  /** Free space kept for pushes and API writes: below it the pack cache and maintenance pause. */
  readonly diskReserveBytes: number;
  /** Pushes to a repository after which background maintenance repacks it; 0 turns it off. */
  readonly maintenancePushes: number;
  /**
   * Whether big blobs leave git once the chunk store holds them (stored once; docs/large-files.md).
   * Off in cluster mode whatever it says: each node's chunk store is its own there.
   */
  readonly evictBigBlobs: boolean;
  /** Audit entries older than this are deleted. */
  readonly auditRetentionDays: number;
  /** How often expired repositories and branches are looked for. */
  readonly sweepIntervalMs: number;
  /** Fair share of git work per credential and per org (http/fair-share.ts); waiting uses limits.queueTimeoutMs. */
  readonly fairShare: {
    readonly perKey: number;
    readonly queuedPerKey: number;
    readonly perOrg: number;
    readonly queuedPerOrg: number;
  };
  readonly connections: {
    /** Open connections at once; more are answered 503 and closed. */
    readonly max: number;
    /** Open connections from one client address. */
    readonly maxPerAddress: number;
    /** Time to receive a request's complete headers. */
    readonly headersTimeoutMs: number;
    /** A request body (API or git) with no byte arriving for this long is ended. */
    readonly bodyIdleTimeoutMs: number;
  };
  /** A git transfer with no bytes moving in either direction for this long is ended. */
  readonly idleTimeoutMs: number;
  /** How long shutdown waits for in-flight requests before killing them. */
  readonly shutdownGraceMs: number;
  /** Hosts, addresses and CIDRs outbound requests (webhooks) may reach although they are loopback, private or reserved. */
  readonly allowedOutbound: readonly string[];
  /** When set, /metrics answers only requests that carry it as a bearer token; /healthz stays open. */
  readonly metricsToken: string | null;
  /** GROVE_SECRET_KEY, then GROVE_SECRET_KEY_PREVIOUS (keys that only open); null: <data>/secret.key. */
  readonly secretKeys: readonly Buffer[] | null;
  /** Remote sync (docs/remote-sync.md). */
  readonly sync: {
    /** Sync runs at once on this server (GROVE_SYNC_CONCURRENCY). */
    readonly concurrency: number;
    /** Whether upstreams may be plain http (GROVE_ALLOW_INSECURE_REMOTES; https only otherwise). */
    readonly allowInsecureRemotes: boolean;
    /** Default seconds between polls of an upstream without a working webhook (GROVE_SYNC_POLL_SECONDS). */
    readonly pollSeconds: number;
  };
}

function allowedOutbound(value: string | undefined): string[] {
  try {
    return OutboundPolicy.parse(value).allowList.slice();
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

function metricsToken(value: string | undefined): string | null {
  if (!value) return null;
  if (value.length < 16) throw new ConfigError('GROVE_METRICS_TOKEN must be at least 16 characters');
  return value;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ConfigInput {
  readonly data?: string | undefined;
  readonly listen?: string | undefined;
}

export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  if (!match) throw new ConfigError(`listen address ${JSON.stringify(value)} must be HOST:PORT`);
  const port = Number(match[3]);
  if (port > 65535) throw new ConfigError(`port ${port} is out of range`);
  return { host: match[1] ?? (match[2] || '127.0.0.1'), port };
}

function positiveInteger(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed <= 0) throw new ConfigError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return parsed;
}

function nonNegativeInteger(name: string, value: string | undefined, fallback: number): number {
  if (value === '0') return 0;
  return positiveInteger(name, value, fallback);
}

function boundedInteger(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return parsed;
}

function onOff(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  if (value === 'on' || value === 'true' || value === '1') return true;
  if (value === 'off' || value === 'false' || value === '0') return false;
  throw new ConfigError(`${name} must be on or off, got ${JSON.stringify(value)}`);
}

function databaseUrl(value: string | undefined): string | null {
  if (value === undefined || value === '') return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError('GROVE_DATABASE_URL must be a URL such as postgres://user:password@host:5432/grove');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(`GROVE_DATABASE_URL must be a postgres:// URL (unset it for the embedded SQLite database), got ${url.protocol}//`);
  }
  return value;
}

function objectStore(env: NodeJS.ProcessEnv, database: string | undefined): ObjectStoreConfig | null {
  const value = env.GROVE_OBJECT_STORE;
  if (value === undefined || value === '') return null;
  if (database === undefined || database === '') throw new ConfigError('GROVE_OBJECT_STORE needs GROVE_DATABASE_URL: a cluster keeps its refs in PostgreSQL');
  const parsed = parseObjectStore(value, env);
  if (typeof parsed === 'string') throw new ConfigError(parsed);
  return parsed;
}

function nodeId(value: string | undefined): string {
  const id = value === undefined || value === '' ? os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63) || 'grove' : value;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(id)) throw new ConfigError('GROVE_NODE_ID must be 1-63 letters, digits, dots, dashes or underscores');
  return id;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const LOG_FORMATS = ['json', 'pretty', 'auto'] as const;

export function loadConfig(input: ConfigInput = {}, env: NodeJS.ProcessEnv = process.env): GroveConfig {
  const dataDir = path.resolve(input.data ?? env.GROVE_DATA ?? './grove-data');
  const { host, port } = parseListen(input.listen ?? env.GROVE_LISTEN ?? '127.0.0.1:8080');
  const logLevel = (env.GROVE_LOG_LEVEL ?? 'info') as GroveConfig['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`GROVE_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const logFormat = (env.GROVE_LOG_FORMAT || 'auto') as GroveConfig['logFormat'];
  if (!LOG_FORMATS.includes(logFormat)) throw new ConfigError(`GROVE_LOG_FORMAT must be one of ${LOG_FORMATS.join(', ')}`);
  const publicUrl = env.GROVE_PUBLIC_URL ? env.GROVE_PUBLIC_URL.replace(/\/+$/, '') : null;
  if (publicUrl !== null && !/^https?:\/\//.test(publicUrl)) throw new ConfigError('GROVE_PUBLIC_URL must start with http:// or https://');
  const adminToken = env.GROVE_ADMIN_TOKEN ? env.GROVE_ADMIN_TOKEN : null;
  let secretKeys: Buffer[] | null;
  try {
    secretKeys = secretKeysFromEnv(env.GROVE_SECRET_KEY, env.GROVE_SECRET_KEY_PREVIOUS);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  if (adminToken !== null && adminToken.length < 16) throw new ConfigError('GROVE_ADMIN_TOKEN must be at least 16 characters');
  return {
    dataDir,
    databaseUrl: databaseUrl(env.GROVE_DATABASE_URL),
    nodeId: nodeId(env.GROVE_NODE_ID),
    objectStore: objectStore(env, env.GROVE_DATABASE_URL),
    maxLivePacks: positiveInteger('GROVE_MAX_LIVE_PACKS', env.GROVE_MAX_LIVE_PACKS, 8),
    packGraceMs: nonNegativeInteger('GROVE_PACK_GRACE_MS', env.GROVE_PACK_GRACE_MS, 24 * 3600_000),
    cacheBytes: nonNegativeInteger('GROVE_CACHE_BYTES', env.GROVE_CACHE_BYTES, 0),
    cacheMinIdleMs: nonNegativeInteger('GROVE_CACHE_MIN_IDLE_MS', env.GROVE_CACHE_MIN_IDLE_MS, 60_000),
    host,
    port,
    adminToken,
    publicUrl,
    logLevel,
    logFormat,
    limits: {
      maxPackBytes: positiveInteger('GROVE_MAX_PACK_BYTES', env.GROVE_MAX_PACK_BYTES, 5 * 1024 ** 3),
      maxPushCommands: positiveInteger('GROVE_MAX_PUSH_COMMANDS', env.GROVE_MAX_PUSH_COMMANDS, 10_000),
      maxNegotiationBytes: positiveInteger('GROVE_MAX_NEGOTIATION_BYTES', env.GROVE_MAX_NEGOTIATION_BYTES, 10 * 1024 ** 2),
      maxGitProcesses: positiveInteger('GROVE_MAX_GIT_PROCESSES', env.GROVE_MAX_GIT_PROCESSES, Math.max(8, os.availableParallelism() * 4)),
      maxGitProcessesPerRepo: positiveInteger('GROVE_MAX_GIT_PROCESSES_PER_REPO', env.GROVE_MAX_GIT_PROCESSES_PER_REPO, Math.max(8, os.availableParallelism() * 4)),
      queueTimeoutMs: positiveInteger('GROVE_QUEUE_TIMEOUT_MS', env.GROVE_QUEUE_TIMEOUT_MS, 60_000),
      gitLauncher: onOff('GROVE_GIT_LAUNCHER', env.GROVE_GIT_LAUNCHER, true),
      gitNiceness: boundedInteger('GROVE_GIT_NICENESS', env.GROVE_GIT_NICENESS, 5, 0, 19),
    },
    packCache: {
      maxBytes: nonNegativeInteger('GROVE_PACK_CACHE_BYTES', env.GROVE_PACK_CACHE_BYTES, 2 * 1024 ** 3),
      maxAgeMs: positiveInteger('GROVE_PACK_CACHE_MAX_AGE_MS', env.GROVE_PACK_CACHE_MAX_AGE_MS, 10 * 60_000),
      memoryBytes: nonNegativeInteger('GROVE_PACK_CACHE_MEMORY_BYTES', env.GROVE_PACK_CACHE_MEMORY_BYTES, 128 * 1024 ** 2),
    },
    diskReserveBytes: nonNegativeInteger('GROVE_DISK_RESERVE_BYTES', env.GROVE_DISK_RESERVE_BYTES, 256 * 1024 ** 2),
    maintenancePushes: nonNegativeInteger('GROVE_MAINTENANCE_PUSHES', env.GROVE_MAINTENANCE_PUSHES, 20),
    evictBigBlobs: onOff('GROVE_EVICT_BIG_BLOBS', env.GROVE_EVICT_BIG_BLOBS, true),
    auditRetentionDays: positiveInteger('GROVE_AUDIT_RETENTION_DAYS', env.GROVE_AUDIT_RETENTION_DAYS, 90),
    sweepIntervalMs: positiveInteger('GROVE_SWEEP_INTERVAL_MS', env.GROVE_SWEEP_INTERVAL_MS, 15_000),
    fairShare: {
      perKey: positiveInteger('GROVE_FAIR_SHARE_PER_KEY', env.GROVE_FAIR_SHARE_PER_KEY, 32),
      queuedPerKey: nonNegativeInteger('GROVE_FAIR_SHARE_QUEUED_PER_KEY', env.GROVE_FAIR_SHARE_QUEUED_PER_KEY, 4096),
      perOrg: positiveInteger('GROVE_FAIR_SHARE_PER_ORG', env.GROVE_FAIR_SHARE_PER_ORG, 256),
      queuedPerOrg: nonNegativeInteger('GROVE_FAIR_SHARE_QUEUED_PER_ORG', env.GROVE_FAIR_SHARE_QUEUED_PER_ORG, 16_384),
    },
    connections: {
      max: positiveInteger('GROVE_MAX_CONNECTIONS', env.GROVE_MAX_CONNECTIONS, 10_000),
      maxPerAddress: positiveInteger('GROVE_MAX_CONNECTIONS_PER_ADDRESS', env.GROVE_MAX_CONNECTIONS_PER_ADDRESS, 2_048),
      headersTimeoutMs: positiveInteger('GROVE_HEADERS_TIMEOUT_MS', env.GROVE_HEADERS_TIMEOUT_MS, 20_000),
      bodyIdleTimeoutMs: positiveInteger('GROVE_BODY_IDLE_TIMEOUT_MS', env.GROVE_BODY_IDLE_TIMEOUT_MS, 30_000),
    },
    idleTimeoutMs: positiveInteger('GROVE_IDLE_TIMEOUT_MS', env.GROVE_IDLE_TIMEOUT_MS, 300_000),
    shutdownGraceMs: positiveInteger('GROVE_SHUTDOWN_GRACE_MS', env.GROVE_SHUTDOWN_GRACE_MS, 30_000),
    metricsToken: metricsToken(env.GROVE_METRICS_TOKEN),
    allowedOutbound: allowedOutbound(env.GROVE_ALLOWED_OUTBOUND),
    secretKeys,
    sync: {
      concurrency: positiveInteger('GROVE_SYNC_CONCURRENCY', env.GROVE_SYNC_CONCURRENCY, Math.max(2, Math.floor(os.availableParallelism() / 2))),
      allowInsecureRemotes: onOff('GROVE_ALLOW_INSECURE_REMOTES', env.GROVE_ALLOW_INSECURE_REMOTES, false),
      pollSeconds: boundedInteger('GROVE_SYNC_POLL_SECONDS', env.GROVE_SYNC_POLL_SECONDS, 60, 1, 86_400),
    },
  };
}
