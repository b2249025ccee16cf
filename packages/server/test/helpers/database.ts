/**
 * Which metadata database a test's Grove uses. `node scripts/run-tests.js --database postgres`
 * starts a private PostgreSQL cluster and sets GROVE_TEST_POSTGRES_URL; every server a test
 * starts then gets a database of its own, named after its data directory, so a restart on
 * the same directory finds its data again. Without it, servers use the embedded SQLite file.
 */
import SQLite from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';

export const TEST_POSTGRES_URL = process.env.GROVE_TEST_POSTGRES_URL ?? null;

/** `--database cluster`: where each server's directory object store goes (every server a cluster of one). */
export const TEST_OBJECT_STORE_ROOT = process.env.GROVE_TEST_OBJECT_STORE_ROOT ?? null;

/** True when every server of this run is a cluster of one (`--database cluster`). */
export const onClusterOfOne = TEST_OBJECT_STORE_ROOT !== null;

/** True when this run stores metadata in PostgreSQL (tests of SQLite's own files skip then). */
export const onPostgres = TEST_POSTGRES_URL !== null;


/** `{ GROVE_DATABASE_URL }` for a server on `dataDir` (its database made if new), or `{}` on SQLite runs. */
export async function databaseEnv(dataDir: string): Promise<Record<string, string>> {
  if (TEST_POSTGRES_URL === null) return {};
  const name = `grove_${createHash('sha256').update(dataDir).digest('hex').slice(0, 24)}`;
  await createDatabase(name);
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  // `--database cluster`: the server is a cluster of one, its packs in a store of its own.
  if (TEST_OBJECT_STORE_ROOT !== null) return { GROVE_DATABASE_URL: url.toString(), GROVE_OBJECT_STORE: `file://${path.join(TEST_OBJECT_STORE_ROOT, name)}` };
  return { GROVE_DATABASE_URL: url.toString() };
}

const made = new Set<string>();

async function createDatabase(name: string): Promise<void> {
  if (made.has(name)) return;
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL! });
  await client.connect();
  try {
    const exists = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (exists.rowCount === 0) await client.query(`create database ${name}`);
  } catch (error) {
    if ((error as { code?: string }).code !== '42P04') throw error; // made meanwhile by another server start
  } finally {
    await client.end();
  }
  made.add(name);
}

/** Raw SQL against the metadata database of a server on `dataDir` (`?` placeholders), whichever engine the run uses. */
export interface RawDatabase {
  all<T>(query: string, parameters?: readonly unknown[]): Promise<T[]>;
  run(query: string, parameters?: readonly unknown[]): Promise<void>;
  close(): Promise<void>;
}

export async function openRawDatabase(dataDir: string, options: { readonly?: boolean } = {}): Promise<RawDatabase> {
  if (TEST_POSTGRES_URL === null) {
    const sqlite = new SQLite(path.join(dataDir, 'grove.db'), { readonly: options.readonly ?? true });
    return {
      all: async <T>(query: string, parameters: readonly unknown[] = []) => sqlite.prepare(query).all(...parameters) as T[],
      run: async (query, parameters = []) => void sqlite.prepare(query).run(...parameters),
      close: async () => void sqlite.close(),
    };
  }
  // int8 (count(*), bigserial) as a number, as Grove reads it and as SQLite gives it.
  const types = { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === 20 ? Number : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser };
  const client = new pg.Client({ connectionString: (await databaseEnv(dataDir)).GROVE_DATABASE_URL, types });
  await client.connect();
  const numbered = (query: string) => {
    let n = 0;
    return query.replace(/\?/g, () => `$${++n}`);
  };
  return {
    all: async <T>(query: string, parameters: readonly unknown[] = []) => (await client.query(numbered(query), [...parameters])).rows as T[],
    run: async (query, parameters = []) => void (await client.query(numbered(query), [...parameters])),
    close: () => client.end(),
  };
}

/**
 * Every byte the metadata database holds, for "no secret is stored" checks: the SQLite file
 * and its WAL, or on PostgreSQL the text of every row of every table.
 */
export async function databaseContents(dataDir: string): Promise<Buffer> {
  if (TEST_POSTGRES_URL === null) {
    const parts: Buffer[] = [];
    for (const name of ['grove.db', 'grove.db-wal']) parts.push(await readFile(path.join(dataDir, name)).catch(() => Buffer.alloc(0)));
    return Buffer.concat(parts);
  }
  const db = await openRawDatabase(dataDir);
  try {
    const tables = await db.all<{ name: string }>("select tablename as name from pg_tables where schemaname = 'public'");
    const parts: string[] = [];
    for (const { name } of tables) {
      for (const row of await db.all<{ line: string }>(`select t::text as line from "${name}" t`)) parts.push(row.line);
    }
    return Buffer.from(parts.join('\n'));
  } finally {
    await db.close();
  }
}

let scratchDatabases = 0;

/**
 * A Kysely instance on a new, empty database of the run's engine (in-memory SQLite, or a
 * fresh PostgreSQL database), for tests of migrations and queries below the server.
 */
export async function scratchKysely<DB>(): Promise<Kysely<DB>> {
  if (TEST_POSTGRES_URL === null) return new Kysely<DB>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) });
  const name = `grove_scratch_${process.pid}_${++scratchDatabases}`;
  await createDatabase(name);
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url.toString(), max: 2 }) }) });
}
