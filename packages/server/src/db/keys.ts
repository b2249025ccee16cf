/** API key rows and their filter tags. */
import type { Db } from './database.ts';
import type { ApiKeysTable } from './schema.ts';

export type ApiKeyRow = ApiKeysTable;

/** Inside a transaction (EventLog.change), so the key and its tags land together. */
export async function insertKey(trx: Db, row: ApiKeyRow, tags: readonly string[]): Promise<void> {
  await trx.insertInto('api_keys').values(row).execute();
  if (tags.length > 0) await trx.insertInto('api_key_tags').values(tags.map((tag) => ({ key_id: row.id, tag }))).execute();
}

export async function findKeyByHash(db: Db, tokenHash: string): Promise<ApiKeyRow | undefined> {
  return db.selectFrom('api_keys').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

export async function findKeyById(db: Db, id: string): Promise<ApiKeyRow | undefined> {
  return db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
}

export interface KeyFilter {
  readonly createdBy?: string;
  readonly tags: readonly string[];
  readonly after: string | null;
  readonly limit: number;
}

/** Keys in id order (ids sort by creation time), filtered by creator and tags. */
export async function listKeys(db: Db, filter: KeyFilter): Promise<ApiKeyRow[]> {
  let query = db.selectFrom('api_keys').selectAll().orderBy('id').limit(filter.limit);
  if (filter.createdBy !== undefined) query = query.where('created_by', '=', filter.createdBy);
  if (filter.after !== null) query = query.where('id', '>', filter.after);
  for (const tag of filter.tags) {
    query = query.where((eb) => eb.exists(eb.selectFrom('api_key_tags').select('key_id').whereRef('api_key_tags.key_id', '=', 'api_keys.id').where('api_key_tags.tag', '=', tag)));
  }
  return query.execute();
}

/** True when this call revoked the key (false: it was revoked already). */
export async function revokeKey(db: Db, id: string, at: string): Promise<boolean> {
  const result = await db.updateTable('api_keys').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function touchKey(db: Db, id: string, at: string): Promise<void> {
  await db.updateTable('api_keys').set({ last_used_at: at }).where('id', '=', id).execute();
}
