/**
 * `grove admin migrate-to-cluster`: moves an embedded installation (SQLite + `<data>/repos`)
 * into cluster storage (PostgreSQL + an object store), so cluster nodes serve what it served.
 *
 *   1. Lock the embedded database for writing (`BEGIN IMMEDIATE`) for the whole run: a server
 *      still running on it cannot acknowledge anything meanwhile (its writes fail as busy).
 *      Refuse if it holds events journaled before an unclean shutdown (start and stop it once).
 *   2. Refuse unless the PostgreSQL database holds no orgs, repositories or events.
 *   3. For every repository with refs: one pack of everything its refs reach (a fork's
 *      borrowed objects included, as a cluster fork publishes them), uploaded `.pack` then
 *      `.idx` under its checksum — the same layout the ref path publishes. Big blobs evicted
 *      to the chunk store are written back from it first (the cluster evicts them again into
 *      its own chunk store once its nodes take them in: docs/large-files.md, "In a cluster"), as
 *      one-object packs in a temporary alternate; a blob neither has refuses the migration.
 *   4. One PostgreSQL transaction: every metadata row, the refs, the packs, each repository's
 *      ref version; the id sequences moved past the copied rows. Nothing is visible to a
 *      cluster node before it commits, and a failed run can simply be run again (the uploads
 *      are idempotent: same content, same key).
 *
 * The embedded directory is left as it was — its database schema brought up to this version,
 * as `grove serve` would on start — a backup until the cluster is verified.
 */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { sql, type Kysely, type Transaction } from 'kysely';
import { openDatabase, type Db } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import { GitRunner } from '../repo/git-command.ts';
import { gitHomeDir, repoDir } from '../repo/layout.ts';
import { ForkingSpawner } from '../repo/spawner.ts';
import { openObjectStore, type ObjectStoreConfig } from '../storage/open-object-store.ts';
import { packKey } from './pack-keys.ts';
import { mayLackBlobs } from '../repo/evict-blobs.ts';
import { BigstoreReader } from '../bigstore/reader.ts';
import { writeBlobPack } from '../bigstore/blob-pack.ts';
import { manifestSize } from '../bigstore/manifest.ts';

/** The metadata tables in foreign-key order; the cluster's own tables (refs, packs, leases) are written from the repositories. */
const TABLES = [
  'orgs', 'repos', 'api_keys', 'api_key_tags', 'signing_keys', 'revoked_tokens', 'repo_policies', 'idempotency_keys',
  'branch_ttls', 'events', 'webhooks', 'webhook_deliveries', 'audit_log',
] as const satisfies readonly (keyof Database)[];

/** Tables whose `seq` is a PostgreSQL sequence (bigserial) that must continue after the copied rows. */
const SERIAL_TABLES = ['events', 'audit_log'] as const;

const ROWS_PER_INSERT = 200;

export class MigrationRefusedError extends Error {
  override name = 'MigrationRefusedError';
}

export interface MigrationReport {
  readonly repositories: number;
  readonly refs: number;
  readonly packs: number;
  readonly packBytes: number;
  /** Rows copied per metadata table. */
  readonly rows: Readonly<Record<string, number>>;
}

export interface MigrationTarget {
  readonly dataDir: string;
  readonly databaseUrl: string;
  readonly objectStore: ObjectStoreConfig;
}

interface PublishedRepo {
  readonly id: string;
  readonly refs: readonly { name: string; oid: string }[];
  readonly pack: { name: string; bytes: number } | null;
}

export async function migrateToCluster(target: MigrationTarget, progress: (line: string) => void = () => undefined): Promise<MigrationReport> {
  const sourceFile = path.join(target.dataDir, 'grove.db');
  if (!(await stat(sourceFile).then((s) => s.isFile(), () => false))) throw new MigrationRefusedError(`${sourceFile} does not exist: --data must name an embedded installation's data directory`);
  await mkdir(gitHomeDir(target.dataDir), { recursive: true });
  const source = (await openDatabase({ file: sourceFile })).db;
  let destination: Db | null = null;
  const store = await openObjectStore(target.objectStore);
  const git = new GitRunner({ homeDir: gitHomeDir(target.dataDir), maxProcesses: 2, maxProcessesPerRepo: 1, queueTimeoutMs: 60_000, spawner: (base) => new ForkingSpawner(base) });
  try {
    await sql`begin immediate`.execute(source);
    const pending = Number((await source.selectFrom('events').select((eb) => eb.fn.countAll().as('n')).where('state', '=', 'pending').executeTakeFirstOrThrow()).n);
    if (pending > 0) throw new MigrationRefusedError(`the embedded database holds ${pending} event(s) journaled before an unclean shutdown: start the embedded server once (it resolves them) and stop it, then migrate`);
    destination = (await openDatabase({ url: target.databaseUrl, poolSize: 2, applicationName: 'grove:migrate-to-cluster' })).db;
    for (const table of ['orgs', 'repos', 'events'] as const) {
      const rows = Number((await destination.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      if (rows > 0) throw new MigrationRefusedError(`the PostgreSQL database is not empty (${rows} row(s) in ${table}): migrate into a new database`);
    }
    await store.check();

    const repos = await source.selectFrom('repos').select(['id', 'name']).orderBy('id').execute();
    const published: PublishedRepo[] = [];
    for (const [i, repo] of repos.entries()) {
      published.push(await publishRepository(git, store, target.dataDir, repo.id));
      progress(`packed ${i + 1}/${repos.length} repositories`);
    }

    const rows: Record<string, number> = {};
    await destination.transaction().execute(async (trx) => {
      for (const table of TABLES) rows[table] = await copyTable(source, trx, table);
      for (const table of SERIAL_TABLES) {
        await sql`select setval(pg_get_serial_sequence(${table}, 'seq'), coalesce((select max(seq) from ${sql.table(table)}), 0) + 1, false)`.execute(trx);
      }
      const now = new Date().toISOString();
      for (const repo of published) {
        for (let i = 0; i < repo.refs.length; i += ROWS_PER_INSERT) {
          await trx.insertInto('repo_refs').values(repo.refs.slice(i, i + ROWS_PER_INSERT).map((r) => ({ repo_id: repo.id, name: r.name, oid: r.oid }))).execute();
        }
        if (repo.pack === null) continue;
        await trx.insertInto('repo_packs').values({ repo_id: repo.id, name: repo.pack.name, bytes: repo.pack.bytes, added_version: 1, superseded_version: null, superseded_at: null, created_at: now }).execute();
        await trx.insertInto('repo_state').values({ repo_id: repo.id, refs_version: 1 }).execute();
      }
    });
    progress('committed');
    return {
      repositories: repos.length,
      refs: published.reduce((n, r) => n + r.refs.length, 0),
      packs: published.filter((r) => r.pack !== null).length,
      packBytes: published.reduce((n, r) => n + (r.pack?.bytes ?? 0), 0),
      rows,
    };
  } finally {
    await sql`rollback`.execute(source).catch(() => undefined); // nothing was written to it: the lock goes
    await source.destroy();
    await destination?.destroy();
    await store.close();
    await git.close();
  }
}

/** One pack of everything the repository's refs reach, uploaded; its refs. */
async function publishRepository(git: GitRunner, store: Awaited<ReturnType<typeof openObjectStore>>, dataDir: string, repoId: string): Promise<PublishedRepo> {
  const gitDir = repoDir(dataDir, repoId);
  const listing = (await git.check(['for-each-ref', '--format=%(objectname) %(refname)'], { gitDir })).toString('utf8');
  const refs = listing.split('\n').filter((line) => line !== '').map((line) => {
    const space = line.indexOf(' ');
    return { oid: line.slice(0, space), name: line.slice(space + 1) };
  });
  if (refs.length === 0) return { id: repoId, refs, pack: null };
  const dir = await mkdtemp(path.join(gitDir, 'objects', 'tmp_grove_migrate-'));
  try {
    const env = (await mayLackBlobs(gitDir)) ? await materializeEvicted(git, gitDir, path.join(dataDir, 'bigstore'), path.join(dir, 'evicted')) : {};
    const name = (await git.check(['pack-objects', '--all', '--revs', '--delta-base-offset', '-q', path.join(dir, 'pack')], { gitDir, env, input: '' })).toString('utf8').trim();
    const bytes = (await stat(path.join(dir, `pack-${name}.pack`))).size;
    await store.put(packKey(repoId, name, 'pack'), path.join(dir, `pack-${name}.pack`));
    await store.put(packKey(repoId, name, 'idx'), path.join(dir, `pack-${name}.idx`));
    return { id: repoId, refs, pack: { name, bytes } };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Writes the big blobs the repository's refs reach and git lacks (evicted) from the chunk
 * store into `objectsDir` (one-object packs); returns the environment that lets git read them.
 */
async function materializeEvicted(git: GitRunner, gitDir: string, bigstoreDir: string, objectsDir: string): Promise<Record<string, string>> {
  const listed = (await git.check(['rev-list', '--objects', '--no-object-names', '--missing=print', '--all'], { gitDir })).toString('latin1');
  const missing = listed.split('\n').filter((line) => line.startsWith('?')).map((line) => line.slice(1));
  if (missing.length === 0) return {};
  const reader = new BigstoreReader(path.join(bigstoreDir, 'bigstore.db'), path.join(bigstoreDir, 'segments'));
  try {
    const packDir = path.join(objectsDir, 'pack');
    await mkdir(packDir, { recursive: true });
    for (const oid of missing) {
      const manifest = reader.manifest(oid);
      if (manifest === null) throw new MigrationRefusedError(`${gitDir} lacks object ${oid} and the chunk store does not hold it`);
      await writeBlobPack(git, gitDir, {}, manifestSize(manifest), reader.rawFrames(oid), packDir);
    }
  } finally {
    await reader.close();
  }
  return { GIT_ALTERNATE_OBJECT_DIRECTORIES: objectsDir };
}

async function copyTable(source: Db, trx: Transaction<Database>, table: (typeof TABLES)[number]): Promise<number> {
  // Read whole: an embedded installation's metadata fits in memory (audit_log is pruned by age).
  type AnyTables = Kysely<Record<string, Record<string, unknown>>>;
  const rows = await (source as unknown as AnyTables).selectFrom(table).selectAll().execute();
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    await (trx as unknown as AnyTables).insertInto(table).values(rows.slice(i, i + ROWS_PER_INSERT)).execute();
  }
  return rows.length;
}
