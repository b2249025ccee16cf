/** Branches that expire (POST .../branches with ttl), for the sweeper. */
import type { Db } from './database.ts';
import type { BranchTtlsTable } from './schema.ts';

export type BranchTtlRow = BranchTtlsTable;

export async function setBranchTtl(db: Db, row: BranchTtlRow): Promise<void> {
  await db
    .insertInto('branch_ttls')
    .values(row)
    .onConflict((oc) => oc.columns(['repo_id', 'ref']).doUpdateSet({ sha: row.sha, expires_at: row.expires_at }))
    .execute();
}

export async function findBranchTtl(db: Db, repoId: string, ref: string): Promise<BranchTtlRow | undefined> {
  return db.selectFrom('branch_ttls').selectAll().where('repo_id', '=', repoId).where('ref', '=', ref).executeTakeFirst();
}

export async function deleteBranchTtl(db: Db, repoId: string, ref: string): Promise<void> {
  await db.deleteFrom('branch_ttls').where('repo_id', '=', repoId).where('ref', '=', ref).execute();
}

export async function expiredBranches(db: Db, now: string, limit: number): Promise<BranchTtlRow[]> {
  return db.selectFrom('branch_ttls').selectAll().where('expires_at', '<=', now).orderBy('expires_at').limit(limit).execute();
}

/** Forgets the TTLs of branches that were just created or deleted some other way (a push, an API write). */
export async function forgetBranchTtls(db: Db, repoId: string, refs: readonly string[]): Promise<void> {
  if (refs.length === 0) return;
  await db.deleteFrom('branch_ttls').where('repo_id', '=', repoId).where('ref', 'in', refs).execute();
}
