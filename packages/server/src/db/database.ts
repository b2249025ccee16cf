/** Opens the embedded SQLite database (WAL, durable through db/durability.ts) and applies migrations. */
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, type SqliteDatabase, type SqliteStatement } from 'kysely';
import { WalDurability, type Durability } from './durability.ts';
import { migrate } from './migrations.ts';
import type { Database } from './schema.ts';

export type Db = Kysely<Database>;

export interface OpenDatabase {
  readonly db: Db;
  /** Await before acknowledging a write: see durability.ts. */
  readonly durability: Durability;
}

export async function openDatabase(file: string): Promise<OpenDatabase> {
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

/** True when an insert failed on a unique constraint (SQLite today, PostgreSQL later). */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}
