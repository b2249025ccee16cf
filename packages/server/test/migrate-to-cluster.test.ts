/**
 * `grove admin migrate-to-cluster`: an embedded installation (SQLite + local repositories)
 * copied into PostgreSQL and an object store, then served by a cluster node — the same refs
 * and objects, keys that still work, webhooks and events kept; refusals change nothing.
 * Runs once, in the SQLite pass (it needs an embedded installation and brings its own PostgreSQL).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Grove } from '@grove/sdk';
import { onPostgres } from './helpers/database.ts';
import { postgresAvailable } from './helpers/postgres-cluster.ts';
import { TestCluster } from './helpers/cluster.ts';
import { grove } from './helpers/cli.ts';
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from './helpers/server.ts';
import { auth, commitFile, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';
import { noise } from './helpers/big-files.ts';
import { BIG_BLOB_BYTES } from '../src/repo/big-blob.ts';

const skip = onPostgres
  ? 'runs once, in the SQLite pass: it migrates an embedded (SQLite) installation'
  : postgresAvailable() ? false : 'PostgreSQL is not installed (Debian: apt-get install postgresql)';

describe('grove admin migrate-to-cluster', { skip }, () => {
  let embedded: TestServer;
  let cluster: TestCluster;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let readKey: string;
  const bigFile = noise(BIG_BLOB_BYTES + 4096, 61);
  const refsOf = async (url: string, token: string) => (await gitOk([...auth(token), 'ls-remote', url])).trim().split('\n').sort();

  before(async () => {
    work = await tempDir('grove-migrate-');
    embedded = await startTestServer({}, path.join(work.path, 'embedded')); // kept after close
    cluster = await TestCluster.start(0);
    const sdk = embedded.sdk;
    await sdk.orgs.create({ name: 'acme' });
    await sdk.repos.create('acme', { name: 'app' });
    await sdk.repos.create('acme', { name: 'empty' });
    const repo = path.join(work.path, 'app');
    await initWorkRepo(repo);
    for (let i = 0; i < 5; i++) await commitFile(repo, `f${i}.txt`, `${i}\n`.repeat(100), `commit ${i}`);
    await gitOk(['tag', '-a', 'v1', '-m', 'release one'], { cwd: repo });
    await gitOk([...auth(TEST_ADMIN_TOKEN), 'push', '-q', `${embedded.url}/acme/app.git`, 'HEAD:main', 'HEAD~2:refs/heads/topic', 'v1'], { cwd: repo });
    await sdk.repos.fork('acme', 'app-fork', 'acme/app');
    // A big file evicted from git to the chunk store: the cluster (git complete) must get it back.
    await sdk.repos.create('acme', { name: 'models' });
    const models = path.join(work.path, 'models');
    await initWorkRepo(models);
    await commitFile(models, 'model.bin', bigFile, 'model');
    await gitOk([...auth(TEST_ADMIN_TOKEN), 'push', '-q', `${embedded.url}/acme/models.git`, 'HEAD:main'], { cwd: models });
    await embedded.server.evictions!.idle();
    assert.equal(embedded.server.repos.maintenance.stats.evictedBlobs, 1);
    readKey = (await sdk.apiKeys.create({ scope: 'read', resources: [{ org: 'acme', repo: 'app' }], name: 'reader' })).token;
    await sdk.webhooks.create('acme', { url: 'https://hooks.example.com/grove', events: ['push'], secret: 'webhook-secret-value' });
  });
  after(async () => {
    await embedded?.server.close();
    await cluster?.stop();
    await work?.[Symbol.asyncDispose]();
  });

  const migrate = (env: Record<string, string | undefined> = {}) => grove(['admin', 'migrate-to-cluster', '--data', embedded.dataDir], {
    GROVE_DATABASE_URL: cluster.databaseUrl, GROVE_OBJECT_STORE: cluster.objectStore, ...env,
  }, 120_000);

  it('refuses without a database URL and an object store, naming both', async () => {
    const run = await migrate({ GROVE_OBJECT_STORE: undefined });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /needs GROVE_DATABASE_URL and GROVE_OBJECT_STORE/);
    assert.equal(await cluster.count("select count(*) from pg_tables where tablename = 'orgs'"), 0); // not even opened
  });

  it('copies the installation so a cluster node serves the same refs, objects, keys, webhooks and events', async () => {
    const before = {
      app: await refsOf(`${embedded.url}/acme/app.git`, TEST_ADMIN_TOKEN),
      fork: await refsOf(`${embedded.url}/acme/app-fork.git`, TEST_ADMIN_TOKEN),
    };
    const embeddedEvents = (await embedded.server.db.selectFrom('events').select('commit_seq').where('state', '=', 'committed').execute()).length;
    await embedded.server.close(); // the installation is stopped for the move

    const run = await migrate();
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { repositories: number; refs: number; packs: number; rows: Record<string, number> };
    assert.equal(report.repositories, 4);
    assert.equal(report.packs, 3); // the empty repository has none
    assert.equal(report.rows.events, embeddedEvents);
    assert.match(run.stderr, /GROVE_SECRET_KEY/);

    const secretKey = (await readFile(path.join(embedded.dataDir, 'secret.key'), 'utf8')).split('\n')[0]!;
    const node = await cluster.addNode({ GROVE_SECRET_KEY: secretKey });
    const url = (repo: string) => `${node.server.url}/acme/${repo}.git`;
    assert.deepEqual(await refsOf(url('app'), TEST_ADMIN_TOKEN), before.app);
    assert.deepEqual(await refsOf(url('app-fork'), TEST_ADMIN_TOKEN), before.fork);
    for (const repo of ['app', 'app-fork']) {
      const clone = path.join(work.path, `${repo}-migrated`);
      await gitOk([...auth(TEST_ADMIN_TOKEN), 'clone', '-q', '--mirror', url(repo), clone]);
      await gitOk(['fsck', '--strict', '--no-dangling'], { cwd: clone });
    }
    const modelsClone = path.join(work.path, 'models-migrated');
    await gitOk([...auth(TEST_ADMIN_TOKEN), 'clone', '-q', url('models'), modelsClone]);
    assert.ok((await readFile(path.join(modelsClone, 'model.bin'))).equals(bigFile), 'the evicted big file came back from the chunk store');
    // The read key minted on the embedded server reads through the cluster node, and may not push.
    assert.deepEqual(await refsOf(url('app'), readKey), before.app);
    const reader = new Grove({ baseUrl: node.server.url, token: readKey });
    assert.equal((await reader.repos.get('acme', 'app')).defaultBranch, 'main');
    const hooks = await node.server.sdk.webhooks.list('acme');
    assert.deepEqual(hooks.map((h) => h.url), ['https://hooks.example.com/grove']);
    // New events continue after the copied ones; a push through the node works.
    const repo = path.join(work.path, 'app');
    await commitFile(repo, 'after.txt', 'after the move\n', 'after the move');
    await gitOk([...auth(TEST_ADMIN_TOKEN), 'push', '-q', url('app'), 'HEAD:main'], { cwd: repo });
    const ids = (await cluster.query<{ commit_seq: number }>("select commit_seq from events where state = 'committed' order by commit_seq")).map((r) => Number(r.commit_seq));
    assert.equal(ids.length, embeddedEvents + 1);
    assert.equal(ids.at(-1), ids.at(-2)! + 1);
    assert.equal(await cluster.count('select count(distinct commit_seq) from events'), ids.length);
  });

  it('refuses a database that is not empty, and changes nothing in it', async () => {
    const refs = await cluster.count('select count(*) from repo_refs');
    const run = await migrate();
    assert.equal(run.code, 1);
    assert.match(run.stderr, /PostgreSQL database is not empty/);
    assert.equal(await cluster.count('select count(*) from repo_refs'), refs);
  });
});
