/** Org rows. */
import type { Db } from './database.ts';
import type { OrgsTable } from './schema.ts';

export type OrgRow = OrgsTable;

export async function insertOrg(db: Db, row: OrgRow): Promise<void> {
  await db.insertInto('orgs').values(row).execute();
}

export async function findOrgByName(db: Db, name: string): Promise<OrgRow | undefined> {
  return db.selectFrom('orgs').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function listOrgs(db: Db, after: string | null, limit: number): Promise<OrgRow[]> {
  let query = db.selectFrom('orgs').selectAll().orderBy('name').limit(limit);
  if (after !== null) query = query.where('name', '>', after);
  return query.execute();
}

/** Deletes the org if it has no repos; returns false when it still has some. */
export async function deleteEmptyOrg(db: Db, id: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const repo = await trx.selectFrom('repos').select('id').where('org_id', '=', id).limit(1).executeTakeFirst();
    if (repo) return false;
    await trx.deleteFrom('orgs').where('id', '=', id).execute();
    return true;
  });
}
