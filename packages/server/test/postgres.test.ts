/**
 * Metadata in PostgreSQL (GROVE_DATABASE_URL): one node per database while repositories live
 * on the node's disk, and a database outage answered with retryable errors that change
 * nothing, after which the node serves again by itself. Each test starts its own private
 * cluster (it stops and starts it), so this file runs once, in the SQLite pass of the suite.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GroveApiError } from '@grove/sdk';
import { onPostgres } from './helpers/database.ts';
import { PostgresCluster, postgresAvailable } from './helpers/postgres-cluster.ts';
import { daemonEnv, spawnServe, startDaemon, stopDaemon } from './helpers/daemon.ts';
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

const skip = onPostgres
  ? 'runs once, in the SQLite pass: it starts (and stops) a PostgreSQL cluster of its own'
  : postgresAvailable() ? false : 'PostgreSQL is not installed (Debian: apt-get install postgresql)';

describe('metadata in PostgreSQL', { skip }, () => {
  let cluster: PostgresCluster;
  let databases = 0;
  /** A URL naming a new, empty database of the cluster. */
  async function newDatabase(): Promise<string> {
    const name = `node_lock_${++databases}`;
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: cluster.url });
    await client.connect();
    await client.query(`create database ${name}`);
    await client.end();
    return cluster.url.replace(/\/postgres$/, `/${name}`);
  }

  before(async () => {
    cluster = await PostgresCluster.start({ maxConnections: 100 });
  });
  after(async () => {
    await cluster?.stop();
  });

  it('keeps orgs, repositories and events in the database, not in a grove.db file', async () => {
    const grove = await startTestServer({ GROVE_DATABASE_URL: await newDatabase() });
    try {
      await grove.createRepo('acme', 'app');
      assert.deepEqual((await grove.sdk.repos.list('acme')).items.map((r) => r.name), ['app']);
      await assert.rejects(stat(path.join(grove.dataDir, 'grove.db')), { code: 'ENOENT' });
      const types: string[] = [];
      for await (const event of grove.sdk.events.stream({ org: 'acme', after: 0 })) {
        types.push(event.type);
        if (types.length === 2) break;
      }
      assert.deepEqual(types, ['org.created', 'repo.created']);
    } finally {
      await grove.close();
    }
  });

  it('refuses to start a second node on the same database, naming the first, and starts it once the first has stopped', async () => {
    const url = await newDatabase();
    const root = await mkdtemp(path.join(os.tmpdir(), 'grove-node-lock-'));
    try {
      const first = await startDaemon({ dataDir: path.join(root, 'a'), env: daemonEnv({ GROVE_DATABASE_URL: url, GROVE_NODE_ID: 'node-a', GROVE_ADMIN_TOKEN: TEST_ADMIN_TOKEN }) });
      const second = spawnServe(['--data', path.join(root, 'b'), '--listen', '127.0.0.1:0'], { env: daemonEnv({ GROVE_DATABASE_URL: url, GROVE_NODE_ID: 'node-b', GROVE_ADMIN_TOKEN: TEST_ADMIN_TOKEN }) });
      assert.deepEqual(await second.exited, { code: 1, signal: null });
      assert.match(second.stderr(), /^grove: another Grove node \(grove:node-a\) is serving this PostgreSQL database/);
      assert.deepEqual(await stopDaemon(first), { code: 0, signal: null });

      const again = await startDaemon({ dataDir: path.join(root, 'b'), env: daemonEnv({ GROVE_DATABASE_URL: url, GROVE_NODE_ID: 'node-b', GROVE_ADMIN_TOKEN: TEST_ADMIN_TOKEN }) });
      assert.deepEqual(await stopDaemon(again), { code: 0, signal: null });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('refuses to start with a clear message when PostgreSQL cannot be reached, and refuses a URL that is not postgres://', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'grove-no-pg-'));
    try {
      const unreachable = spawnServe(['--data', path.join(root, 'a'), '--listen', '127.0.0.1:0'], { env: daemonEnv({ GROVE_DATABASE_URL: 'postgres://grove@127.0.0.1:1/grove' }) });
      assert.deepEqual(await unreachable.exited, { code: 1, signal: null });
      assert.match(unreachable.stderr(), /^grove: cannot reach PostgreSQL at 127\.0\.0\.1:1 \(.*\); check GROVE_DATABASE_URL/);
      const mysql = spawnServe(['--data', path.join(root, 'b'), '--listen', '127.0.0.1:0'], { env: daemonEnv({ GROVE_DATABASE_URL: 'mysql://grove@127.0.0.1/grove' }) });
      assert.deepEqual(await mysql.exited, { code: 1, signal: null });
      assert.equal(mysql.stderr(), 'grove: GROVE_DATABASE_URL must be a postgres:// URL (unset it for the embedded SQLite database), got mysql://\n');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  describe('while the database is down', () => {
    let grove: TestServer;
    let work: Awaited<ReturnType<typeof tempDir>>;
    let url: string;
    let main: string;
    let repo: string;
    before(async () => {
      grove = await startTestServer({ GROVE_DATABASE_URL: await newDatabase() });
      url = await grove.createRepo('acme', 'app');
      work = await tempDir('grove-pg-outage-');
      repo = path.join(work.path, 'work');
      await initWorkRepo(repo);
      main = await commitFile(repo, 'README.md', '# app\n', 'initial commit');
      await gitOk([...auth(grove.token), 'push', '-q', url, 'HEAD:main'], { cwd: repo });
    });
    after(async () => {
      await grove?.close();
      await work?.[Symbol.asyncDispose]();
    });

    it('answers API writes with 503 unavailable and refuses a push without moving its ref, then serves again by itself once the database is back', async () => {
      await cluster.halt();
      try {
        await assert.rejects(grove.sdk.orgs.create({ name: 'during-outage' }), (error: unknown) => {
          assert.ok(error instanceof GroveApiError, String(error));
          assert.deepEqual([error.status, error.code], [503, 'unavailable']);
          return true;
        });
        await commitFile(repo, 'later.txt', 'later\n', 'during the outage');
        const push = await git([...auth(grove.token), 'push', url, 'HEAD:main'], { cwd: repo });
        assert.notEqual(push.code, 0, 'a push must not be acknowledged while its events cannot be written');
        assert.match(push.stderr, /the database is unavailable/);
        // Reads of the repository itself need no database row that is not already known.
        assert.equal((await gitOk([...auth(grove.token), 'ls-remote', url, 'refs/heads/main'])).split('\t')[0], main);
      } finally {
        await cluster.resume();
      }

      // The pool reconnects on its own: no restart of Grove.
      const created = await grove.sdk.orgs.create({ name: 'after-outage' });
      assert.equal(created.name, 'after-outage');
      assert.deepEqual((await grove.sdk.orgs.list()).items.map((o) => o.name).sort(), ['acme', 'after-outage']);
      await gitOk([...auth(grove.token), 'push', '-q', url, 'HEAD:main'], { cwd: repo });
      const head = (await gitOk(['rev-parse', 'HEAD'], { cwd: repo })).trim();
      assert.equal((await grove.sdk.branches.get('acme', 'app', 'main')).sha, head);
    });
  });
});
