/**
 * Backup and restore of a cluster as docs/scale-out.md describes it: `pg_dump` of the
 * database first, then a copy of the object store; loading the dump into a new database and
 * starting a node with an empty data directory on it and the copy serves every ref the dump
 * names, with all its objects. Runs once, in the SQLite pass (it brings its own PostgreSQL).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { onPostgres } from './helpers/database.ts';
import { postgresAvailable, postgresBinary } from './helpers/postgres-cluster.ts';
import { TestCluster } from './helpers/cluster.ts';
import { startTestServer, TEST_ADMIN_TOKEN } from './helpers/server.ts';
import { auth, commitFile, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

const run = promisify(execFile);
const skip = onPostgres
  ? 'runs once, in the SQLite pass: it starts a PostgreSQL cluster of its own'
  : postgresAvailable() ? false : 'PostgreSQL is not installed (Debian: apt-get install postgresql)';

describe('backing up and restoring a cluster', { skip }, () => {
  let cluster: TestCluster;
  let work: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    cluster = await TestCluster.start(1, { env: { GROVE_MAX_LIVE_PACKS: '3' } });
    work = await tempDir('grove-backup-');
  });
  after(async () => {
    await cluster?.stop();
    await work?.[Symbol.asyncDispose]();
  });

  it('restores from a database dump and a later copy of the object store every ref the dump names, fsck-clean', async () => {
    const node = cluster.node(0);
    await node.sdk.orgs.create({ name: 'acme' });
    await node.sdk.repos.create('acme', { name: 'app' });
    const repo = path.join(work.path, 'app');
    await initWorkRepo(repo);
    const url = (base: string) => `${base}/acme/app.git`;
    for (let i = 0; i < 6; i++) {
      await commitFile(repo, `f${i}.txt`, `${i}\n`.repeat(200), `commit ${i}`);
      await gitOk([...auth(TEST_ADMIN_TOKEN), 'push', '-q', url(node.url), `HEAD:${i % 2 === 0 ? 'main' : 'topic'}`], { cwd: repo });
    }
    await node.sdk.commits.create('acme', 'app', { branch: 'main', message: 'through the API', files: [{ path: 'api.txt', content: 'made by the API\n' }] });
    await node.server.compactor!.idle();
    const dumped = (await gitOk([...auth(TEST_ADMIN_TOKEN), 'ls-remote', url(node.url)])).trim().split('\n').sort();

    // 1. The database dump.
    const dump = path.join(work.path, 'grove.sql');
    await run(postgresBinary('pg_dump'), ['--no-owner', '--file', dump, cluster.databaseUrl]);
    // Writes between the dump and the copy of the store are not in the dump (their packs may be in the copy).
    await gitOk([...auth(TEST_ADMIN_TOKEN), 'fetch', '-q', url(node.url), 'main'], { cwd: repo });
    await gitOk(['reset', '-q', '--hard', 'FETCH_HEAD'], { cwd: repo });
    await commitFile(repo, 'late.txt', 'after the dump\n', 'after the dump');
    await gitOk([...auth(TEST_ADMIN_TOKEN), 'push', '-q', url(node.url), 'HEAD:main'], { cwd: repo });
    // 2. The store, copied after the dump.
    const storeCopy = path.join(work.path, 'objects-copy');
    await cp(new URL(cluster.objectStore).pathname, storeCopy, { recursive: true });

    // Restore: the dump into a new database, a node on it and the copy, with an empty data directory.
    await cluster.query('create database restored');
    const restoredUrl = cluster.databaseUrl.replace(/\/grove$/, '/restored');
    await run(postgresBinary('psql'), ['--quiet', '--set', 'ON_ERROR_STOP=1', '--file', dump, restoredUrl]);
    const restored = await startTestServer({ GROVE_DATABASE_URL: restoredUrl, GROVE_OBJECT_STORE: `file://${storeCopy}`, GROVE_NODE_ID: 'restored' }, path.join(work.path, 'restored-node'));
    try {
      assert.deepEqual((await gitOk([...auth(TEST_ADMIN_TOKEN), 'ls-remote', url(restored.url)])).trim().split('\n').sort(), dumped);
      const clone = path.join(work.path, 'restored-clone');
      await gitOk([...auth(TEST_ADMIN_TOKEN), 'clone', '-q', '--mirror', url(restored.url), clone]);
      await gitOk(['fsck', '--strict', '--no-dangling'], { cwd: clone });
      assert.equal(await restored.sdk.contents.getText('acme', 'app', 'api.txt', { ref: 'main' }), 'made by the API\n');
      // And it takes writes again (a fast-forward of the restored main).
      await commitFile(repo, 'restored.txt', 'after the restore\n', 'after the restore');
      await gitOk([...auth(TEST_ADMIN_TOKEN), 'push', '-q', url(restored.url), 'HEAD:main'], { cwd: repo });
    } finally {
      await restored.close();
    }
  });
});
