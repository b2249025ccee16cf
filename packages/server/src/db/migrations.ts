/**
 * Schema migrations, applied in order on startup, on SQLite and PostgreSQL alike. Written
 * with Kysely's schema builder only; the one construct the two spell differently (an
 * auto-incrementing id, and 64-bit counters) goes through `columnTypes`.
 */
import { type ColumnDefinitionBuilder, type Kysely, sql } from 'kysely';
import { type Migration, type MigrationProvider, Migrator } from 'kysely/migration';
import { isPostgres } from './dialect.ts';
import type { Database } from './schema.ts';

/** SQLite's integer is 64-bit and autoincrements as a rowid; PostgreSQL needs bigint and bigserial. */
function columnTypes(db: Kysely<unknown>) {
  const postgres = isPostgres(db);
  return {
    counter: postgres ? ('bigint' as const) : ('integer' as const),
    serialId: postgres ? ('bigserial' as const) : ('integer' as const),
    serialIdColumn: (c: ColumnDefinitionBuilder) => (postgres ? c.primaryKey() : c.primaryKey().autoIncrement()),
    bytes: postgres ? ('bytea' as const) : ('blob' as const),
  };
}

const migrations: Record<string, Migration> = {
  '0001_orgs_and_repos': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('orgs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('repos')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('default_branch', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(sql`''`))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('repos_org_name', ['org_id', 'name'])
        .execute();
    },
  },
  '0002_keys_signing_keys_policies': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('resources', 'text', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('labels', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('last_used_at', 'text')
        .execute();
      await db.schema.createIndex('api_keys_created_by').on('api_keys').columns(['created_by', 'id']).execute();
      // "org:<name>" and "label:<k>=<v>" tags, so keys can be filtered without JSON operators.
      await db.schema
        .createTable('api_key_tags')
        .addColumn('key_id', 'text', (c) => c.notNull().references('api_keys.id').onDelete('cascade'))
        .addColumn('tag', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('api_key_tags_pk', ['key_id', 'tag'])
        .execute();
      await db.schema.createIndex('api_key_tags_tag').on('api_key_tags').columns(['tag', 'key_id']).execute();
      await db.schema
        .createTable('signing_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('public_jwk', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('signing_keys_org').on('signing_keys').columns(['org_id']).execute();
      await db.schema
        .createTable('repo_policies')
        .addColumn('repo_id', 'text', (c) => c.primaryKey().references('repos.id').onDelete('cascade'))
        .addColumn('rules', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0003_agent_api': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('idempotency_keys')
        .addColumn('principal', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('request_hash', 'text', (c) => c.notNull())
        .addColumn('status', 'integer', (c) => c.notNull())
        .addColumn('response', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('idempotency_keys_pk', ['principal', 'key'])
        .execute();
      await db.schema.alterTable('repos').addColumn('fork_of', 'text').execute();
      await db.schema.alterTable('repos').addColumn('expires_at', 'text').execute();
      await db.schema.createIndex('repos_expires_at').on('repos').columns(['expires_at']).execute();
      await db.schema.createIndex('repos_fork_of').on('repos').columns(['fork_of']).execute();
      await db.schema
        .createTable('branch_ttls')
        .addColumn('repo_id', 'text', (c) => c.notNull().references('repos.id').onDelete('cascade'))
        .addColumn('ref', 'text', (c) => c.notNull())
        .addColumn('sha', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('branch_ttls_pk', ['repo_id', 'ref'])
        .execute();
      await db.schema.createIndex('branch_ttls_expires_at').on('branch_ttls').columns(['expires_at']).execute();
    },
  },
  '0004_events_webhooks_audit': {
    async up(db: Kysely<unknown>) {
      const { counter, serialId, serialIdColumn } = columnTypes(db);
      await db.schema
        .createTable('events')
        .addColumn('seq', serialId, serialIdColumn)
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('org', 'text', (c) => c.notNull())
        .addColumn('repo', 'text')
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        // pending: written before the change it describes; committed once the change is done.
        .addColumn('state', 'text', (c) => c.notNull())
        // The public event id: assigned in commit order, so ids never appear out of order.
        .addColumn('commit_seq', counter)
        .addColumn('repo_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('events_org_seq').on('events').columns(['org', 'seq']).execute();
      await db.schema.createIndex('events_state').on('events').columns(['state']).execute();
      await db.schema.createIndex('events_commit_seq').on('events').columns(['commit_seq']).unique().execute();
      await db.schema
        .createTable('webhooks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('events', 'text', (c) => c.notNull())
        .addColumn('repos', 'text')
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('active', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('webhooks_org').on('webhooks').columns(['org_id']).execute();
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('webhook_id', 'text', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
        .addColumn('event_seq', counter, (c) => c.notNull())
        .addColumn('repo', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', 'text', (c) => c.notNull())
        .addColumn('response_code', 'integer')
        .addColumn('error', 'text')
        .addColumn('duration_ms', 'integer')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('delivered_at', 'text')
        .execute();
      await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['status', 'next_attempt_at']).execute();
      await db.schema.createIndex('webhook_deliveries_hook').on('webhook_deliveries').columns(['webhook_id', 'event_seq']).execute();
      await db.schema
        .createTable('audit_log')
        .addColumn('seq', serialId, serialIdColumn)
        .addColumn('org', 'text')
        .addColumn('repo', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text')
        .addColumn('ip', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('status', 'integer', (c) => c.notNull())
        .addColumn('bytes_in', counter, (c) => c.notNull())
        .addColumn('bytes_out', counter, (c) => c.notNull())
        .addColumn('duration_ms', counter, (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_org_seq').on('audit_log').columns(['org', 'seq']).execute();
      await db.schema.createIndex('audit_created').on('audit_log').columns(['created_at']).execute();
    },
  },
  '0005_grants_bound_to_ids': {
    // Each stored grant gets the ids of the org and repository it names now; a grant whose
    // target is already gone is bound to nothing (orgId "") and reaches nothing.
    async up(db: Kysely<unknown>) {
      const typed = db as unknown as Kysely<Pick<Database, 'api_keys' | 'orgs' | 'repos'>>;
      const keys = await typed.selectFrom('api_keys').select(['id', 'resources']).execute();
      for (const key of keys) {
        const grants = JSON.parse(key.resources) as { org: string; repo?: string; orgId?: string; repoId?: string }[];
        for (const grant of grants) {
          if (grant.orgId !== undefined) continue;
          const org = await typed.selectFrom('orgs').select('id').where('name', '=', grant.org).executeTakeFirst();
          const repo = org === undefined || grant.repo === undefined
            ? undefined
            : await typed.selectFrom('repos').select('id').where('org_id', '=', org.id).where('name', '=', grant.repo).executeTakeFirst();
          grant.orgId = org === undefined || (grant.repo !== undefined && repo === undefined) ? '' : org.id;
          if (grant.repo !== undefined) grant.repoId = repo?.id ?? '';
        }
        await typed.updateTable('api_keys').set({ resources: JSON.stringify(grants) }).where('id', '=', key.id).execute();
      }
    },
  },
  '0006_revoked_tokens': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('revoked_tokens')
        .addColumn('signing_key_id', 'text', (c) => c.notNull().references('signing_keys.id').onDelete('cascade'))
        .addColumn('jti', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('revoked_tokens_pk', ['signing_key_id', 'jti'])
        .execute();
      await db.schema.createIndex('revoked_tokens_expires').on('revoked_tokens').columns(['expires_at']).execute();
    },
  },
  '0007_cluster_refs_and_packs': {
    // Used in cluster mode only (GROVE_OBJECT_STORE): the embedded mode keeps refs in git.
    // No foreign keys to repos: a fork's refs are published before its row commits.
    async up(db: Kysely<unknown>) {
      const { counter } = columnTypes(db);
      await db.schema
        .createTable('repo_state')
        .addColumn('repo_id', 'text', (c) => c.primaryKey())
        .addColumn('refs_version', counter, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('repo_refs')
        .addColumn('repo_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('oid', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('repo_refs_pk', ['repo_id', 'name'])
        .execute();
      await db.schema
        .createTable('repo_packs')
        .addColumn('repo_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('bytes', counter, (c) => c.notNull())
        .addColumn('added_version', counter, (c) => c.notNull())
        .addColumn('superseded_version', counter)
        .addColumn('superseded_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('repo_packs_pk', ['repo_id', 'name'])
        .execute();
      await db.schema
        .createTable('leases')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0008_cluster_chunk_store': {
    // Cluster mode only: the chunk store's catalogue (docs/large-files.md, "In a cluster").
    // Segments are objects in the object store; a node's own bigstore.db is a cache of this.
    async up(db: Kysely<unknown>) {
      const { counter, bytes } = columnTypes(db);
      await db.schema
        .createTable('bigstore_segments')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('bytes', counter, (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('bigstore_chunks')
        .addColumn('hash', 'text', (c) => c.primaryKey())
        .addColumn('segment_key', 'text', (c) => c.notNull())
        .addColumn('offset', counter, (c) => c.notNull())
        .addColumn('zlen', counter, (c) => c.notNull())
        .addColumn('ulen', counter, (c) => c.notNull())
        .addColumn('adler32', counter, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('bigstore_chunks_segment').on('bigstore_chunks').columns(['segment_key']).execute();
      await db.schema
        .createTable('bigstore_blobs')
        .addColumn('oid', 'text', (c) => c.primaryKey())
        .addColumn('size', counter, (c) => c.notNull())
        .addColumn('manifest', bytes, (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      // No foreign key to repos: a fork's links are copied before its row commits.
      await db.schema
        .createTable('bigstore_links')
        .addColumn('repo_id', 'text', (c) => c.notNull())
        .addColumn('oid', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('bigstore_links_pk', ['repo_id', 'oid'])
        .execute();
      await db.schema.createIndex('bigstore_links_oid').on('bigstore_links').columns(['oid']).execute();
    },
  },
  '0009_remote_sync': {
    // Remote sync (docs/remote-sync.md): credentials per org (secrets sealed), upstreams per
    // repo with their rules and scheduling state, and the record of every sync run.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('credentials')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('last_error', 'text')
        .addColumn('last_used_at', 'text')
        .addColumn('expires_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('credentials_org_name', ['org_id', 'name'])
        .execute();
      await db.schema
        .createTable('upstreams')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('repo_id', 'text', (c) => c.notNull().references('repos.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('credential_id', 'text', (c) => c.references('credentials.id'))
        .addColumn('rules', 'text', (c) => c.notNull())
        .addColumn('read_only', 'integer', (c) => c.notNull())
        .addColumn('poll_interval_s', 'integer', (c) => c.notNull())
        .addColumn('push_forward', 'integer', (c) => c.notNull())
        .addColumn('webhook_secret', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('paused_reason', 'text')
        .addColumn('consecutive_failures', 'integer', (c) => c.notNull())
        .addColumn('next_poll_at', 'text', (c) => c.notNull())
        .addColumn('last_checked_at', 'text')
        .addColumn('last_success_at', 'text')
        .addColumn('last_webhook_at', 'text')
        .addColumn('last_error', 'text')
        .addColumn('poll_digest', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('upstreams_repo_name', ['repo_id', 'name'])
        .execute();
      await db.schema.createIndex('upstreams_next_poll').on('upstreams').columns(['next_poll_at']).execute();
      await db.schema
        .createTable('sync_runs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('upstream_id', 'text', (c) => c.notNull().references('upstreams.id').onDelete('cascade'))
        .addColumn('repo_id', 'text', (c) => c.notNull())
        .addColumn('direction', 'text', (c) => c.notNull())
        .addColumn('trigger', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('requested_refs', 'text')
        .addColumn('dry_run', 'integer', (c) => c.notNull())
        .addColumn('counts', 'text', (c) => c.notNull())
        .addColumn('refs', 'text', (c) => c.notNull())
        .addColumn('refs_truncated', 'integer', (c) => c.notNull())
        .addColumn('error_code', 'text')
        .addColumn('error_message', 'text')
        .addColumn('remote_messages', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .execute();
      await db.schema.createIndex('sync_runs_upstream').on('sync_runs').columns(['upstream_id', 'created_at']).execute();
      await db.schema.createIndex('sync_runs_status').on('sync_runs').columns(['status']).execute();
      // No foreign key to repos: a failed import deletes its repository and keeps this record.
      await db.schema
        .createTable('repo_imports')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
        .addColumn('repo_id', 'text', (c) => c.notNull())
        .addColumn('repo_name', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('mirror', 'integer', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('progress', 'integer', (c) => c.notNull())
        .addColumn('refs', 'integer', (c) => c.notNull())
        .addColumn('error_code', 'text')
        .addColumn('error_message', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text')
        .execute();
      await db.schema.createIndex('repo_imports_repo').on('repo_imports').columns(['repo_id']).execute();
    },
  },
};

class InCodeMigrations implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations;
  }
}

/** Applies every migration, or those up to and including `upTo` (for tests of a migration). */
export async function migrate(db: Kysely<unknown>, upTo?: string): Promise<void> {
  const migrator = new Migrator({ db, provider: new InCodeMigrations() });
  const { error, results } = upTo === undefined ? await migrator.migrateToLatest() : await migrator.migrateTo(upTo);
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${String(error)}`);
  }
}
