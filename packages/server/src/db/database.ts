/**
 * Opens Grove's metadata database and applies migrations: the embedded SQLite file (WAL,
 * durable through db/durability.ts), or PostgreSQL when a postgres:// URL is given (a pool
 * through Kysely's Postgres dialect; COMMIT is durable by itself with synchronous_commit=on).
 * Everything above this file writes dialect-neutral Kysely; the few places that differ ask
 * db/dialect.ts.
 */
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type SqliteDatabase, type SqliteStatement } from 'kysely';
import pg from 'pg';
import { DURABLE_ON_COMMIT, WalDurability, type Durability } from './durability.ts';
import { migrate } from './migrations.ts';
import type { Database } from './schema.ts';

export type Db = Kysely<Database>;

export interface OpenDatabase {
  readonly db: Db;
  /** Await before acknowledging a write: see durability.ts. */
  readonly durability: Durability;
}

export type DatabaseLocation = { readonly file: string } | { readonly url: string; readonly poolSize?: number; readonly applicationName?: string };

export async function openDatabase(location: DatabaseLocation | string): Promise<OpenDatabase> {
  const where = typeof location === 'string' ? { file: location } : location;
  return 'url' in where ? openPostgres(where.url, where.poolSize ?? 10, where.applicationName ?? 'grove') : openSqlite(where.file);
}

/** PostgreSQL's int8 (bigserial ids, count(*)) as a JS number, as SQLite gives it: Grove's counters stay far below 2^53. */
const INT8_OID = 20;
const postgresTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

const pools = new WeakMap<Db, pg.Pool>();

/** The pool under a PostgreSQL database, for the few hot queries worth a named prepared statement (Kysely sends none). */
export function postgresPool(db: Db): pg.Pool | undefined {
  return pools.get(db);
}

async function openPostgres(url: string, poolSize: number, applicationName: string): Promise<OpenDatabase> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, types: postgresTypes, application_name: applicationName, connectionTimeoutMillis: 10_000 });
  // An idle client that loses its server (a restart, a failover) must not crash the process.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  pools.set(db, pool);
  try {
    await migrate(db as unknown as Kysely<unknown>);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return { db, durability: DURABLE_ON_COMMIT };
}

async function openSqlite(file: string): Promise<OpenDatabase> {
  const sqlite = new SQLite(file);
  sqlite.pragma('journal_mode = WAL');
  // NORMAL: a commit does not fsync on the event loop; durability.sync() makes it durable (as
  // FULL would) from the thread pool before anything is acknowledged.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const durability = new WalDurability(file);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite, durability) }) });
  await migrate(db as unknown as Kysely<unknown>);
  await durability.sync();
  return { db, durability };
}

/** Prepared statements kept, by SQL text: Kysely asks for a new one for every query. */
const STATEMENT_CACHE_SIZE = 500;

/**
 * The database as Kysely's SQLite driver sees it, with prepared statements reused: compiling
 * a statement costs more than running most of Grove's queries (a profile under a push fleet
 * had better-sqlite3's prepare at 4% of Grove's CPU). Safe because Grove never streams a query
 * (an open iterator would hold its statement busy).
 */
function withStatementCache(sqlite: SQLite.Database, durability: Durability): SqliteDatabase {
  const statements = new Map<string, SqliteStatement>();
  return {
    close: () => sqlite.close(),
    prepare(sql: string): SqliteStatement {
      // SQLite rolls a transaction back by itself when a write fails for a full disk (SQLITE_FULL);
      // Kysely's ROLLBACK after that would fail and hide the real error, so it is skipped then.
      if (/^rollback\b/i.test(sql)) return rollbackIfActive(sqlite);
      let statement = statements.get(sql);
      if (statement === undefined) {
        statement = counted(sqlite.prepare(sql), durability);
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
      } else {
        statements.delete(sql); // most recently used last: the first key is the one to drop
      }
      statements.set(sql, statement);
      return statement;
    },
  };
}

function rollbackIfActive(sqlite: SQLite.Database): SqliteStatement {
  const done = { changes: 0, lastInsertRowid: 0 };
  return {
    reader: false,
    all: () => [],
    iterate: () => [][Symbol.iterator](),
    run: () => (sqlite.inTransaction ? sqlite.prepare('rollback').run() : done),
  };
}

/** A statement whose writes are counted, so durability.sync() knows what it has to cover. */
function counted(statement: SQLite.Statement, durability: Durability): SqliteStatement {
  if (statement.reader) return statement as unknown as SqliteStatement;
  return {
    reader: false,
    all: (parameters: readonly unknown[]) => statement.all(parameters),
    iterate: (parameters: readonly unknown[]) => statement.iterate(parameters),
    run(parameters: readonly unknown[]) {
      const result = statement.run(parameters);
      durability.wrote();
      return result;
    },
  };
}

/** True when an insert failed on a unique constraint (SQLite, or PostgreSQL's 23505). */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}

/** PostgreSQL codes for a server that is going away or cannot be reached (classes 08 and 57P). */
const UNAVAILABLE_SQLSTATES = /^(08\d{3}|57P0[1-3]|53300)$/;
const UNAVAILABLE_NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * True when a query failed because the database server is down, restarting or unreachable
 * (not because of the query): the request is answered "unavailable, retry", never as a bug.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATES.test(code) || UNAVAILABLE_NETWORK_CODES.has(code))) return true;
  // node-postgres' own wording when a connection ends or a pool cannot connect in time.
  return typeof message === 'string' && /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/.test(message);
}

/** PostgreSQL refused a string it cannot store (a NUL character: 22021 or 22P05); SQLite stores it. */
export function isTextRefusedByDatabase(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '22021' || code === '22P05';
}
