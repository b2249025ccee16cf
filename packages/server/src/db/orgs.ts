/** Org rows. */
import { checkName } from '../names.ts';
import type { Db } from './database.ts';
import type { OrgsTable } from './schema.ts';

export type OrgRow = OrgsTable;

/**
 * Org rows by id, for resolving the grants of every authenticated request. Exact: every
 * write to the orgs table goes through this module and clears the cache of its database
 * (and a cluster's database, which other nodes write, is not cached at all).
 */
const byId = new WeakMap<Db, Map<string, OrgRow | null>>();
const MAX_CACHED = 10_000;

function forget(db: Db): void {
  byId.get(db)?.clear();
}

export async function insertOrg(db: Db, row: OrgRow, trx: Db = db): Promise<void> {
  forget(db);
  await trx.insertInto('orgs').values(row).execute();
  forget(db);
}

/** Databases other processes write (a cluster): their org lookups are not cached. */
const uncached = new WeakSet<Db>();

export function disableOrgLookupCache(db: Db): void {
  uncached.add(db);
  forget(db);
}

export async function findOrgById(db: Db, id: string): Promise<OrgRow | undefined> {
  if (uncached.has(db)) return db.selectFrom('orgs').selectAll().where('id', '=', id).executeTakeFirst();
  let cache = byId.get(db);
  if (cache === undefined) byId.set(db, (cache = new Map()));
  const hit = cache.get(id);
  if (hit !== undefined) return hit ?? undefined;
  const row = await db.selectFrom('orgs').selectAll().where('id', '=', id).executeTakeFirst();
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(id, row ?? null);
  return row;
}

export async function findOrgByName(db: Db, name: string): Promise<OrgRow | undefined> {
  if (checkName('org', name) !== null) return undefined; // never stored (and PostgreSQL refuses a NUL in text)
  return db.selectFrom('orgs').selectAll().where('name', '=', name).executeTakeFirst();
}

/** Orgs by name; `only` restricts the listing to those names (what a key can see). */
export async function listOrgs(db: Db, after: string | null, limit: number, only?: readonly string[]): Promise<OrgRow[]> {
  if (only !== undefined && only.length === 0) return [];
  let query = db.selectFrom('orgs').selectAll().orderBy('name').limit(limit);
  if (after !== null) query = query.where('name', '>', after);
  if (only !== undefined) query = query.where('name', 'in', only);
  return query.execute();
}

/**
 * Deletes the org if it has no repos; returns false when it still has some. Its
 * signing keys go with it, and every API key that names the org is revoked, so a
 * later org of the same name is not reachable by old keys.
 */
/** In the caller's transaction `trx` (EventLog.change, so the org.deleted event lands with it). */
export async function deleteEmptyOrg(db: Db, trx: Db, org: OrgRow, at: string): Promise<boolean> {
  forget(db);
  try {
    const repo = await trx.selectFrom('repos').select('id').where('org_id', '=', org.id).limit(1).executeTakeFirst();
    if (repo) return false;
    await trx.deleteFrom('signing_keys').where('org_id', '=', org.id).execute();
    // No repository is left, so no upstream uses the org's remote credentials.
    await trx.deleteFrom('credentials').where('org_id', '=', org.id).execute();
    await trx
      .updateTable('api_keys')
      .set({ revoked_at: at })
      .where('revoked_at', 'is', null)
      .where('id', 'in', trx.selectFrom('api_key_tags').select('key_id').where('tag', '=', `org:${org.name}`))
      .execute();
    await trx.deleteFrom('orgs').where('id', '=', org.id).execute();
    return true;
  } finally {
    forget(db);
  }
}
