/** Stored answers for Idempotency-Key retries. */
import type { Db } from './database.ts';
import { isUniqueViolation } from './database.ts';
import type { IdempotencyKeysTable } from './schema.ts';

export type IdempotencyRow = IdempotencyKeysTable;

/** Claims the key for a first request; returns the existing row when it was claimed before. */
export async function claimIdempotencyKey(db: Db, principal: string, key: string, requestHash: string, at: string): Promise<IdempotencyRow | null> {
  try {
    await db.insertInto('idempotency_keys').values({ principal, key, request_hash: requestHash, status: 0, response: null, created_at: at }).execute();
    return null;
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    const row = await db.selectFrom('idempotency_keys').selectAll().where('principal', '=', principal).where('key', '=', key).executeTakeFirst();
    if (row === undefined) return claimIdempotencyKey(db, principal, key, requestHash, at); // released meanwhile
    return row;
  }
}

export async function storeIdempotentAnswer(db: Db, principal: string, key: string, status: number, response: string): Promise<void> {
  await db.updateTable('idempotency_keys').set({ status, response }).where('principal', '=', principal).where('key', '=', key).execute();
}

/** Forgets a claim whose request failed, so a retry runs again. */
export async function releaseIdempotencyKey(db: Db, principal: string, key: string): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('principal', '=', principal).where('key', '=', key).where('status', '=', 0).execute();
}

export async function pruneIdempotencyKeys(db: Db, before: string): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('created_at', '<', before).execute();
}
