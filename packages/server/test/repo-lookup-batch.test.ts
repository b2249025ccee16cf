/**
 * A cluster node's batched repository lookup (db/repo-lookup-batch.ts), on real PostgreSQL:
 * concurrent lookups share a query, but a lookup never takes the answer of a query that
 * started before it arrived — so a change committed before a request arrives is always seen.
 * Runs in the PostgreSQL pass of the suite (the lookup exists only there).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { openDatabase, postgresPool, type Db } from '../src/db/database.ts';
import { RepoLookupBatch } from '../src/db/repo-lookup-batch.ts';
import { databaseEnv, onPostgres } from './helpers/database.ts';

/** The real pool, with each query's answer held until the test lets it go. */
function heldPool(real: pg.Pool) {
  const held: (() => void)[] = [];
  let queries = 0;
  const pool = {
    async query(config: pg.QueryConfig) {
      queries++;
      const result = await real.query(config);
      await new Promise<void>((resolve) => held.push(resolve));
      return result;
    },
  } as unknown as pg.Pool;
  return {
    pool,
    get queries() {
      return queries;
    },
    /** Lets the oldest held answer go, once a query is held. */
    async release(): Promise<void> {
      while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      held.shift()!();
    },
  };
}

describe('the batched repository lookup of a cluster node', { skip: onPostgres ? false : 'needs PostgreSQL (the suite\'s second pass)' }, () => {
  let db: Db;
  let pool: pg.Pool;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'grove-lookup-'));
    const { GROVE_DATABASE_URL } = await databaseEnv(dir);
    db = (await openDatabase({ url: GROVE_DATABASE_URL! })).db;
    pool = postgresPool(db)!;
    const now = new Date().toISOString();
    await db.insertInto('orgs').values({ id: 'o1', name: 'acme', created_at: now }).execute();
    for (const name of ['app', 'lib']) {
      await db.insertInto('repos').values({ id: `r-${name}`, org_id: 'o1', name, default_branch: 'main', description: '', created_at: now, updated_at: now, fork_of: null, expires_at: null }).execute();
    }
  });
  after(async () => {
    await db?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers lookups that arrive together with one query, unknown names as undefined', async () => {
    const batch = new RepoLookupBatch(pool);
    const answers = await Promise.all([batch.lookup('acme', 'app'), batch.lookup('acme', 'lib'), batch.lookup('acme', 'app'), batch.lookup('acme', 'nope'), batch.lookup('other', 'app')]);
    assert.deepEqual(answers.map((row) => row?.id), ['r-app', 'r-lib', 'r-app', undefined, undefined]);
    assert.equal(answers[0]!.org_name, 'acme');
    assert.equal(answers[0]!.refs_version, null);
    assert.deepEqual(batch.stats, { queries: 1, lookups: 5 });
  });

  it('gives a lookup that arrives while a query is in flight the answer of a later query, which sees what was committed meanwhile', async () => {
    const gate = heldPool(pool);
    const batch = new RepoLookupBatch(gate.pool);
    const early = batch.lookup('acme', 'app');
    while (gate.queries === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    // The first query has read; a ref transaction commits; then a second request arrives.
    await db.insertInto('repo_state').values({ repo_id: 'r-app', refs_version: 7 }).execute();
    const late = batch.lookup('acme', 'app');
    await gate.release();
    assert.equal((await early)!.refs_version, null);
    await gate.release();
    assert.equal((await late)!.refs_version, 7);
    assert.equal(gate.queries, 2);
  });

  it('fails every lookup of a batch whose query fails, and answers the next batch', async () => {
    let fail = true;
    const flaky = {
      query: (config: pg.QueryConfig) => (fail ? Promise.reject(new Error('connection lost')) : pool.query(config)),
    } as unknown as pg.Pool;
    const batch = new RepoLookupBatch(flaky);
    const failed = await Promise.allSettled([batch.lookup('acme', 'app'), batch.lookup('acme', 'lib')]);
    assert.deepEqual(failed.map((r) => r.status), ['rejected', 'rejected']);
    fail = false;
    assert.equal((await batch.lookup('acme', 'lib'))!.id, 'r-lib');
  });
});
