/** Repo rows. Listing pages through an org by name with the (org_id, name) unique index. */
import { checkName } from '../names.ts';
import { postgresPool, type Db } from './database.ts';
import { RepoLookupBatch } from './repo-lookup-batch.ts';
import type { ReposTable } from './schema.ts';

export type RepoRow = ReposTable;
export type RepoWithOrg = RepoRow & {
  org_name: string;
  /** Cluster mode: the repository's ref version, read with the row (null before its first ref transaction). */
  refs_version?: number | null;
};

/**
 * Repository rows by "org/name" for the git routes, which look one up on every request.
 * Exact, not timed: every write to the repos table goes through this module and clears
 * the cache of its database. A write may run in a transaction (`trx`, from
 * EventLog.change); the cache is cleared before and after it, and no reader can refill it
 * with the old row in between because SQLite's one connection is held until the commit.
 */
const lookups = new WeakMap<Db, Map<string, RepoWithOrg | null>>();
/** The same rows by id, for resolving the grants of every authenticated request. */
const byId = new WeakMap<Db, Map<string, RepoWithOrg | null>>();
const MAX_CACHED = 50_000;

function forget(db: Db): void {
  lookups.get(db)?.clear();
  byId.get(db)?.clear();
}

/** Databases whose lookups must not be cached: other processes change them (a cluster). */
const uncached = new WeakSet<Db>();
const batches = new WeakMap<Db, RepoLookupBatch>();

/** Every lookup of `db` goes to the database from now on (cluster mode). */
export function disableRepoLookupCache(db: Db): void {
  uncached.add(db);
  forget(db);
}

export async function findRepoByIdCached(db: Db, id: string): Promise<RepoWithOrg | undefined> {
  if (uncached.has(db)) return findRepoById(db, id);
  let cache = byId.get(db);
  if (cache === undefined) byId.set(db, (cache = new Map()));
  const hit = cache.get(id);
  if (hit !== undefined) return hit ?? undefined;
  const row = await findRepoById(db, id);
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(id, row ?? null);
  return row;
}

export async function findRepoCached(db: Db, orgName: string, repoName: string): Promise<RepoWithOrg | undefined> {
  if (uncached.has(db)) {
    // A cluster: the ref version rides on the lookup the request makes anyway (no second round
    // trip), and concurrent requests share one query (repo-lookup-batch.ts).
    if (checkName('org', orgName) !== null || checkName('repo', repoName) !== null) return undefined;
    let batch = batches.get(db);
    if (batch === undefined) {
      const pool = postgresPool(db);
      if (pool === undefined) throw new Error('repository lookups are uncached only on PostgreSQL (cluster mode)');
      batches.set(db, (batch = new RepoLookupBatch(pool)));
    }
    return batch.lookup(orgName, repoName);
  }
  let cache = lookups.get(db);
  if (cache === undefined) lookups.set(db, (cache = new Map()));
  const key = `${orgName}/${repoName}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit ?? undefined;
  const row = await findRepo(db, orgName, repoName);
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(key, row ?? null);
  return row;
}

export async function insertRepo(db: Db, row: RepoRow, trx: Db = db): Promise<void> {
  forget(db);
  await trx.insertInto('repos').values(row).execute();
  forget(db);
}

/** Repo rows with their org's name. */
function reposWithOrg(db: Db) {
  return db.selectFrom('repos').innerJoin('orgs', 'orgs.id', 'repos.org_id').selectAll('repos').select('orgs.name as org_name');
}

export async function findRepo(db: Db, orgName: string, repoName: string): Promise<RepoWithOrg | undefined> {
  // A name that could never be stored names nothing (and PostgreSQL refuses a NUL in text).
  if (checkName('org', orgName) !== null || checkName('repo', repoName) !== null) return undefined;
  return reposWithOrg(db)
    .where('orgs.name', '=', orgName)
    .where('repos.name', '=', repoName)
    .executeTakeFirst();
}

/** An org's repos by name; `only` restricts the listing to those names (what a key can see). */
export async function listRepos(db: Db, orgId: string, after: string | null, limit: number, only?: readonly string[]): Promise<RepoRow[]> {
  if (only !== undefined && only.length === 0) return [];
  let query = db.selectFrom('repos').selectAll().where('org_id', '=', orgId).orderBy('name').limit(limit);
  if (after !== null) query = query.where('name', '>', after);
  if (only !== undefined) query = query.where('name', 'in', only);
  return query.execute();
}

export async function updateRepo(
  db: Db,
  id: string,
  changes: Partial<Pick<RepoRow, 'name' | 'default_branch' | 'description'>> & { updated_at: string },
): Promise<void> {
  forget(db);
  await db.updateTable('repos').set(changes).where('id', '=', id).execute();
  forget(db);
}

export async function deleteRepoRow(db: Db, id: string, trx: Db = db): Promise<void> {
  forget(db);
  await trx.deleteFrom('repos').where('id', '=', id).execute();
  // A cluster's refs and pack list of the repository (empty in embedded mode); the packs' objects
  // in the store are left to the object-store sweep (docs/scale-out.md).
  await trx.deleteFrom('repo_refs').where('repo_id', '=', id).execute();
  await trx.deleteFrom('repo_state').where('repo_id', '=', id).execute();
  await trx.deleteFrom('repo_packs').where('repo_id', '=', id).execute();
  // Its big blobs' links: the blobs go at the next collection if no other repository links them.
  await trx.deleteFrom('bigstore_links').where('repo_id', '=', id).execute();
  forget(db);
}

/** Repositories that borrow objects from this one (forks and snapshots). */
export async function findBorrowers(db: Db, repoId: string): Promise<RepoRow[]> {
  return db.selectFrom('repos').selectAll().where('fork_of', '=', repoId).execute();
}

export async function clearForkOf(db: Db, repoId: string): Promise<void> {
  await db.updateTable('repos').set({ fork_of: null }).where('id', '=', repoId).execute();
  forget(db);
}

export async function expiredRepos(db: Db, now: string, limit: number): Promise<RepoWithOrg[]> {
  return reposWithOrg(db)
    .where('repos.expires_at', 'is not', null)
    .where('repos.expires_at', '<=', now)
    .limit(limit)
    .execute();
}

export async function findRepoById(db: Db, id: string): Promise<RepoWithOrg | undefined> {
  return reposWithOrg(db).where('repos.id', '=', id).executeTakeFirst();
}
