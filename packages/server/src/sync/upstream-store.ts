/**
 * Rows of remote sync (credentials, upstreams, runs) as the scheduler and the API need
 * them: the repository a run works on, and how git may reach the remote — the credential
 * opened only here, for one git child's environment, and the host's address pinned after
 * the outbound policy approved it.
 */
import { randomBytes } from 'node:crypto';
import type { Db } from '../db/database.ts';
import type { CredentialsTable, SyncRunsTable, UpstreamsTable } from '../db/schema.ts';
import type { GuardedFetch } from '../outbound/guarded-fetch.ts';
import type { RemoteAccess } from '../repo/remote-env.ts';
import { credentialSecretOwner, upstreamWebhookSecretOwner, type SecretStore } from '../secrets/secret-store.ts';
import type { RefOutcome } from './decide.ts';
import { parseSyncRules, type SyncRule } from './rules.ts';
import type { RefReport } from './sync-run.ts';

export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
}

export interface UpstreamWithRepo extends UpstreamsTable {
  readonly org_name: string;
  readonly repo_name: string;
  readonly default_branch: string;
}

/** Upstreams with the names of their repository and org. */
function upstreamsWithRepo(db: Db) {
  return db
    .selectFrom('upstreams')
    .innerJoin('repos', 'repos.id', 'upstreams.repo_id')
    .innerJoin('orgs', 'orgs.id', 'repos.org_id')
    .selectAll('upstreams')
    .select(['orgs.name as org_name', 'repos.name as repo_name', 'repos.default_branch']);
}

export async function findUpstreamById(db: Db, id: string): Promise<UpstreamWithRepo | undefined> {
  return upstreamsWithRepo(db).where('upstreams.id', '=', id).executeTakeFirst();
}

/** The upstreams of a repository by its org and name (what a committed event names). */
export async function upstreamsOfRepo(db: Db, org: string, repo: string): Promise<UpstreamWithRepo[]> {
  return upstreamsWithRepo(db).where('orgs.name', '=', org).where('repos.name', '=', repo).execute();
}

/** A new upstream's row (active unless `state` says otherwise) and its webhook secret in the clear (shown once). */
export function newUpstreamRow(secrets: SecretStore, fields: Pick<UpstreamsTable, 'repo_id' | 'name' | 'url' | 'credential_id' | 'rules' | 'read_only' | 'poll_interval_s' | 'push_forward'> & Partial<Pick<UpstreamsTable, 'state' | 'paused_reason'>>, now: string): { row: UpstreamsTable; webhookSecret: string } {
  const id = newId('up');
  const webhookSecret = `whsec_${randomBytes(24).toString('base64url')}`;
  return {
    webhookSecret,
    row: {
      id,
      state: 'active',
      paused_reason: null,
      ...fields,
      webhook_secret: secrets.seal(webhookSecret, upstreamWebhookSecretOwner(id)),
      consecutive_failures: 0,
      next_poll_at: now,
      last_checked_at: null,
      last_success_at: null,
      last_webhook_at: null,
      last_error: null,
      poll_digest: null,
      created_at: now,
      updated_at: now,
    },
  };
}

/** The URL a read-only mirror follows, or null when the repository is no mirror (only the sync may move its refs). */
export async function mirrorOf(db: Db, repoId: string): Promise<string | null> {
  const row = await db.selectFrom('upstreams').select('url').where('repo_id', '=', repoId).where('read_only', '=', 1).executeTakeFirst();
  return row?.url ?? null;
}

export function mirrorRefusal(url: string): string {
  return `this repository mirrors ${url}; push there`;
}

export function rulesOf(row: Pick<UpstreamsTable, 'id' | 'rules'>): SyncRule[] {
  const parsed = parseSyncRules(JSON.parse(row.rules) as unknown);
  if ('error' in parsed) throw new Error(`stored rules of upstream ${row.id} are invalid: ${parsed.error}`);
  return parsed.rules;
}

export class CredentialUnusableError extends Error {
  override name = 'CredentialUnusableError';
}

/** How git reaches the upstream now (throws OutboundRefusedError for a forbidden destination). */
export async function remoteAccess(db: Db, secrets: SecretStore, outbound: GuardedFetch, upstream: Pick<UpstreamsTable, 'url' | 'credential_id'>): Promise<RemoteAccess> {
  let credential: RemoteAccess['credential'] = null;
  if (upstream.credential_id !== null) {
    const row = await db.selectFrom('credentials').selectAll().where('id', '=', upstream.credential_id).executeTakeFirst();
    if (row === undefined) throw new CredentialUnusableError(`credential ${upstream.credential_id} no longer exists`);
    credential = { username: row.username, secret: secrets.open(row.secret, credentialSecretOwner(row.id)) };
  }
  const pinnedAddress = await outbound.pin(new URL(upstream.url).hostname);
  return { url: upstream.url, credential, pinnedAddress };
}

export function credentialJson(row: CredentialsTable) {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    username: row.username,
    fingerprint: row.fingerprint,
    status: row.status,
    lastError: row.last_error,
    lastUsedAt: row.last_used_at,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Seconds between polls: the configured interval, or 15 minutes while webhooks arrive (they are only hints). */
export function pollIntervalSeconds(row: Pick<UpstreamsTable, 'poll_interval_s' | 'last_webhook_at'>, now: number): number {
  const healthy = row.last_webhook_at !== null && now - Date.parse(row.last_webhook_at) < 24 * 3600_000;
  return healthy ? Math.max(row.poll_interval_s, 900) : row.poll_interval_s;
}

export function upstreamJson(row: UpstreamWithRepo, webhookPath: string) {
  const now = Date.now();
  return {
    id: row.id,
    name: row.name,
    org: row.org_name,
    repo: row.repo_name,
    url: row.url,
    credentialId: row.credential_id,
    rules: rulesOf(row),
    readOnly: row.read_only === 1,
    pollIntervalSeconds: row.poll_interval_s,
    pushForward: row.push_forward === 1,
    webhook: {
      url: webhookPath,
      lastDeliveryAt: row.last_webhook_at,
      healthy: row.last_webhook_at !== null && now - Date.parse(row.last_webhook_at) < 24 * 3600_000,
    },
    status: {
      state: row.state,
      pausedReason: row.paused_reason,
      consecutiveFailures: row.consecutive_failures,
      lastError: row.last_error,
      lastCheckedAt: row.last_checked_at,
      lastSuccessAt: row.last_success_at,
      nextPollAt: row.state === 'active' ? row.next_poll_at : null,
    },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function syncRunJson(row: SyncRunsTable, upstreamName: string) {
  return {
    id: row.id,
    upstream: upstreamName,
    direction: row.direction,
    trigger: row.trigger,
    status: row.status,
    dryRun: row.dry_run === 1,
    requestedRefs: row.requested_refs === null ? null : (JSON.parse(row.requested_refs) as string[]),
    counts: JSON.parse(row.counts) as Partial<Record<RefOutcome, number>>,
    refs: JSON.parse(row.refs) as RefReport[],
    refsTruncated: row.refs_truncated === 1,
    error: row.error_code === null ? null : { code: row.error_code, message: row.error_message ?? '' },
    remoteMessages: row.remote_messages === null ? [] : (JSON.parse(row.remote_messages) as string[]),
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}
