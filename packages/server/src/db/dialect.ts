/**
 * The few things SQLite and PostgreSQL do differently, asked of the Kysely instance itself so
 * that callers need no flag threaded through them.
 */
import { PostgresAdapter, sql, type Kysely, type Transaction } from 'kysely';

export function isPostgres<DB>(db: Kysely<DB>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/** Advisory lock keys Grove takes on PostgreSQL (one namespace: 0x47524f56, "GROV"). */
const LOCK_NAMESPACE = 0x47524f56;
export const ADVISORY_LOCKS = { eventCommitOrder: 1, repositoryStore: 2 } as const;

/**
 * Serializes the end of transactions that assign public event ids, until they commit: SQLite's
 * single writer lock does this by itself; on PostgreSQL two transactions would otherwise both
 * read the same max(commit_seq), or commit out of id order.
 */
export async function lockEventCommitOrder<DB>(trx: Kysely<DB> | Transaction<DB>): Promise<void> {
  if (!isPostgres(trx)) return;
  await sql`select pg_advisory_xact_lock(${LOCK_NAMESPACE}, ${ADVISORY_LOCKS.eventCommitOrder})`.execute(trx);
}

export { LOCK_NAMESPACE };
