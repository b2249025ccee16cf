import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Kysely } from 'kysely';
import { scratchKysely } from '../../test/helpers/database.ts';
import { migrate } from './migrations.ts';
import type { Database } from './schema.ts';

const key = (id: string, resources: unknown[]) => ({
  id, token_hash: id, scope: 'read', resources: JSON.stringify(resources), name: null, labels: '{}',
  created_by: 'root', created_at: '2026-01-01T00:00:00.000Z', expires_at: null, revoked_at: null, last_used_at: null,
});

describe('migration 0005: grants bound to ids', () => {
  it('binds existing grants to the ids their names have now, and binds a grant to a vanished target to nothing', async () => {
    const db = await scratchKysely<Database>();
    await migrate(db as unknown as Kysely<unknown>, '0004_events_webhooks_audit');
    await db.insertInto('orgs').values({ id: 'org1', name: 'acme', created_at: 'now' }).execute();
    await db.insertInto('repos').values({ id: 'repo1', org_id: 'org1', name: 'app', default_branch: 'main', description: '', created_at: 'now', updated_at: 'now', fork_of: null, expires_at: null }).execute();
    await db.insertInto('api_keys').values([
      key('k1', [{ org: 'acme' }, { org: 'acme', repo: 'app', branches: ['agent/*'] }]),
      key('k2', [{ org: 'acme', repo: 'gone' }, { org: 'globex' }]),
    ]).execute();

    await migrate(db as unknown as Kysely<unknown>);

    const stored = async (id: string) => JSON.parse((await db.selectFrom('api_keys').select('resources').where('id', '=', id).executeTakeFirstOrThrow()).resources) as unknown;
    assert.deepEqual(await stored('k1'), [{ org: 'acme', orgId: 'org1' }, { org: 'acme', repo: 'app', branches: ['agent/*'], orgId: 'org1', repoId: 'repo1' }]);
    assert.deepEqual(await stored('k2'), [{ org: 'acme', repo: 'gone', orgId: '', repoId: '' }, { org: 'globex', orgId: '' }]);
    await db.destroy();
  });
});
