/** Per-repo ref policies. */
import type { RefRule } from '../auth/authorize.ts';
import { parseRefRules } from '../auth/ref-rules.ts';
import type { Db } from './database.ts';

export async function readPolicyRules(db: Db, repoId: string): Promise<string | null> {
  const row = await db.selectFrom('repo_policies').select('rules').where('repo_id', '=', repoId).executeTakeFirst();
  return row?.rules ?? null;
}

export async function writePolicyRules(db: Db, repoId: string, rules: string, at: string): Promise<void> {
  await db
    .insertInto('repo_policies')
    .values({ repo_id: repoId, rules, updated_at: at })
    .onConflict((oc) => oc.column('repo_id').doUpdateSet({ rules, updated_at: at }))
    .execute();
}

/** The repo's rules, parsed; an empty list when it has none. */
export async function readRefRules(db: Db, repoId: string): Promise<RefRule[]> {
  const text = await readPolicyRules(db, repoId);
  if (text === null) return [];
  const parsed = parseRefRules(JSON.parse(text) as unknown);
  if ('error' in parsed) throw new Error(`stored ref rules of repo ${repoId} are invalid: ${parsed.error}`);
  return parsed.rules;
}
