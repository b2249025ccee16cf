/** Org signing keys (Ed25519 public keys for offline-signed tokens). */
import type { Db } from './database.ts';
import type { SigningKeysTable } from './schema.ts';

export type SigningKeyRow = SigningKeysTable;

export async function insertSigningKey(db: Db, row: SigningKeyRow): Promise<void> {
  await db.insertInto('signing_keys').values(row).execute();
}

export async function listSigningKeys(db: Db, orgId: string): Promise<SigningKeyRow[]> {
  return db.selectFrom('signing_keys').selectAll().where('org_id', '=', orgId).orderBy('id').execute();
}

export async function listSigningKeysByOrgName(db: Db, orgName: string): Promise<SigningKeyRow[]> {
  return db
    .selectFrom('signing_keys')
    .innerJoin('orgs', 'orgs.id', 'signing_keys.org_id')
    .selectAll('signing_keys')
    .where('orgs.name', '=', orgName)
    .orderBy('signing_keys.id')
    .execute();
}

export async function findSigningKey(db: Db, orgId: string, id: string): Promise<SigningKeyRow | undefined> {
  return db.selectFrom('signing_keys').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
}

export async function deleteSigningKey(db: Db, orgId: string, id: string): Promise<boolean> {
  const result = await db.deleteFrom('signing_keys').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}
