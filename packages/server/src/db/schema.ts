/** The database schema as Kysely sees it. Columns are snake_case; the API speaks camelCase. */
import type { Generated } from 'kysely';
export interface OrgsTable {
  id: string;
  name: string;
  created_at: string;
}

export interface ReposTable {
  id: string;
  org_id: string;
  name: string;
  default_branch: string;
  description: string;
  created_at: string;
  updated_at: string;
  /** The repository whose objects this one borrows (a fork or snapshot), by id. */
  fork_of: string | null;
  /** When an ephemeral repository is deleted by the sweeper. */
  expires_at: string | null;
}

export interface IdempotencyKeysTable {
  /** Who sent the request: "root", a key id, or "signed:<org>:<jti>". */
  principal: string;
  key: string;
  request_hash: string;
  /** The stored answer's status; 0 while the first request is still running. */
  status: number;
  response: string | null;
  created_at: string;
}

export interface BranchTtlsTable {
  repo_id: string;
  ref: string;
  /** The value the branch was created at (the sweeper deletes the branch wherever it is by then). */
  sha: string;
  expires_at: string;
}

export interface ApiKeysTable {
  id: string;
  /** SHA-256 of the token, hex. The token itself is never stored. */
  token_hash: string;
  scope: string;
  /** JSON array of grants. */
  resources: string;
  name: string | null;
  /** JSON object of string labels. */
  labels: string;
  /** "root" or the id of the key that created it. */
  created_by: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface ApiKeyTagsTable {
  key_id: string;
  tag: string;
}

export interface SigningKeysTable {
  id: string;
  org_id: string;
  name: string;
  /** The Ed25519 public key as a JWK (JSON). */
  public_jwk: string;
  created_at: string;
}

export interface RevokedTokensTable {
  signing_key_id: string;
  jti: string;
  /** Until when the entry matters: no token with this jti can be valid after it. */
  expires_at: string;
  revoked_at: string;
}

export interface RepoPoliciesTable {
  repo_id: string;
  /** JSON array of ref rules. */
  rules: string;
  updated_at: string;
}

export interface EventsTable {
  seq: Generated<number>;
  type: string;
  org: string;
  repo: string | null;
  /** JSON: {kind, id, name}. */
  actor: string;
  /** JSON. */
  payload: string;
  state: 'pending' | 'committed';
  /** Assigned when committed, in commit order: the public event id. */
  commit_seq: number | null;
  repo_id: string | null;
  created_at: string;
}

export interface WebhooksTable {
  id: string;
  org_id: string;
  url: string;
  /** JSON array of event types; ["*"] for all. */
  events: string;
  /** JSON array of repo names, or null for every repo. */
  repos: string | null;
  /** The HMAC key deliveries are signed with (it has to be usable, so it is stored as is). */
  secret: string;
  active: number;
  created_at: string;
  updated_at: string;
}

export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  event_seq: number;
  repo: string | null;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: string;
  response_code: number | null;
  error: string | null;
  duration_ms: number | null;
  created_at: string;
  delivered_at: string | null;
}

export interface AuditLogTable {
  seq: Generated<number>;
  org: string | null;
  repo: string | null;
  action: string;
  key_id: string | null;
  ip: string | null;
  user_agent: string | null;
  outcome: 'ok' | 'denied' | 'failed';
  status: number;
  bytes_in: number;
  bytes_out: number;
  duration_ms: number;
  created_at: string;
}

/** Cluster mode: each repository's ref version, bumped by every ref transaction (its row is the writers' lock). */
export interface RepoStateTable {
  repo_id: string;
  refs_version: number;
}

/** Cluster mode: the refs themselves (the truth; a node's repositories are caches). */
export interface RepoRefsTable {
  repo_id: string;
  name: string;
  oid: string;
}

/** Cluster mode: the packs in the object store that hold a repository's objects. */
export interface RepoPacksTable {
  repo_id: string;
  /** The pack's trailing SHA-1 (its object-store key: storage/pack-keys.ts). */
  name: string;
  bytes: number;
  added_version: number;
  /** Set when a compaction replaced it; deleted from the store after a grace period. */
  superseded_version: number | null;
  superseded_at: string | null;
  created_at: string;
}

/** Cluster mode: who runs each cluster-wide job (cluster/leases.ts). */
export interface LeasesTable {
  name: string;
  owner: string;
  expires_at: string;
}

/** Cluster mode: a segment object of the chunk store (`bigstore/<uuid>.seg`), sealed by one publish. */
export interface BigstoreSegmentsTable {
  key: string;
  bytes: number;
  created_at: string;
}

/** Cluster mode: each distinct chunk once (SHA-256, hex), and where its frame is. */
export interface BigstoreChunksTable {
  hash: string;
  segment_key: string;
  offset: number;
  zlen: number;
  ulen: number;
  adler32: number;
}

/** Cluster mode: a big blob the chunk store holds; `manifest` lists its chunks (cluster/shared-manifest.ts). */
export interface BigstoreBlobsTable {
  oid: string;
  size: number;
  manifest: Buffer;
  created_at: string;
}

/** Cluster mode: which repositories may read which big blobs (the tenant rule). */
export interface BigstoreLinksTable {
  repo_id: string;
  oid: string;
  created_at: string;
}

/** A secret for reaching remotes (remote sync), per org; `secret` is sealed (secrets/secret-store.ts). */
export interface CredentialsTable {
  id: string;
  org_id: string;
  name: string;
  kind: 'token' | 'basic';
  /** The HTTP Basic user name sent with the secret (`x-access-token` for GitHub tokens). */
  username: string;
  secret: string;
  /** The first 8 hex digits of the secret's SHA-256: tells secrets apart without showing them. */
  fingerprint: string;
  /** 'rejected' once a remote refused it (upstreams using it pause until it is rotated). */
  status: 'ok' | 'rejected';
  last_error: string | null;
  last_used_at: string | null;
  expires_at: string | null;
  created_at: string;
  updated_at: string;
}

/** A repository's remote (docs/remote-sync.md): where it syncs, by which rules, and when next. */
export interface UpstreamsTable {
  id: string;
  repo_id: string;
  name: string;
  url: string;
  credential_id: string | null;
  /** The ordered rules, JSON (sync/rules.ts). */
  rules: string;
  /** 1: a read-only mirror (only the sync moves its refs). */
  read_only: number;
  poll_interval_s: number;
  push_forward: number;
  /** Sealed: the HMAC key of webhook deliveries from the remote. */
  webhook_secret: string;
  state: 'active' | 'paused';
  paused_reason: string | null;
  consecutive_failures: number;
  next_poll_at: string;
  last_checked_at: string | null;
  last_success_at: string | null;
  last_webhook_at: string | null;
  last_error: string | null;
  /** What the last poll that made a run looked at (sync/poll.ts): the same again is a no-op. */
  poll_digest: string | null;
  created_at: string;
  updated_at: string;
}

/** One sync run and its per-ref outcomes (no-op polls write none). */
export interface SyncRunsTable {
  id: string;
  upstream_id: string;
  repo_id: string;
  direction: 'pull' | 'push' | 'both';
  trigger: 'webhook' | 'poll' | 'push' | 'manual';
  status: 'queued' | 'running' | 'succeeded' | 'partial' | 'failed';
  requested_refs: string | null;
  dry_run: number;
  counts: string;
  refs: string;
  refs_truncated: number;
  error_code: string | null;
  error_message: string | null;
  remote_messages: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** A one-call import of a remote repository (kept after it ends, also when it failed and its repository was removed). */
export interface RepoImportsTable {
  id: string;
  org_id: string;
  repo_id: string;
  repo_name: string;
  url: string;
  mirror: number;
  status: 'importing' | 'succeeded' | 'failed';
  /** 0–100, from git's progress. */
  progress: number;
  refs: number;
  error_code: string | null;
  error_message: string | null;
  created_at: string;
  finished_at: string | null;
}

export interface Database {
  repo_imports: RepoImportsTable;
  credentials: CredentialsTable;
  upstreams: UpstreamsTable;
  sync_runs: SyncRunsTable;
  bigstore_segments: BigstoreSegmentsTable;
  bigstore_chunks: BigstoreChunksTable;
  bigstore_blobs: BigstoreBlobsTable;
  bigstore_links: BigstoreLinksTable;
  repo_state: RepoStateTable;
  repo_refs: RepoRefsTable;
  repo_packs: RepoPacksTable;
  leases: LeasesTable;
  orgs: OrgsTable;
  repos: ReposTable;
  api_keys: ApiKeysTable;
  api_key_tags: ApiKeyTagsTable;
  signing_keys: SigningKeysTable;
  revoked_tokens: RevokedTokensTable;
  repo_policies: RepoPoliciesTable;
  idempotency_keys: IdempotencyKeysTable;
  branch_ttls: BranchTtlsTable;
  events: EventsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  audit_log: AuditLogTable;
}
