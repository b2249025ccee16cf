/**
 * Stored once, in a cluster (docs/large-files.md, "In a cluster"): a big blob pushed through
 * one node is kept once, in the chunk store's segments in the object store, and no live pack
 * of the cluster holds it; a node that never saw it serves it whole and by range, takes a thin
 * push against it, forks it; deleting the repositories lets the sweeper collect every row and
 * segment. Runs once, in the SQLite pass (it starts a PostgreSQL cluster of its own).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { onPostgres } from './helpers/database.ts';
import { postgresAvailable } from './helpers/postgres-cluster.ts';
import { TestCluster } from './helpers/cluster.ts';
import { SwiftS3, swiftAvailable } from './helpers/swift.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';
import { read, revParse } from './helpers/read-api.ts';
import { noise, withEdits } from './helpers/big-files.ts';
import { TEST_ADMIN_TOKEN } from './helpers/server.ts';
import { BIG_BLOB_BYTES } from '../src/repo/big-blob.ts';

const skip = onPostgres
  ? 'runs once, in the SQLite pass: it starts a PostgreSQL cluster of its own'
  : postgresAvailable() ? false : 'PostgreSQL is not installed (Debian: apt-get install postgresql)';

const token = TEST_ADMIN_TOKEN;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('big blobs in a cluster of two nodes', { skip }, () => {
  let cluster: TestCluster;
  let swift: SwiftS3 | null = null;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const version1 = noise(BIG_BLOB_BYTES + 1024 * 1024 + 3, 61);
  let oid1: string;
  let oid2: string;
  let bigCommit: string;
  const source = () => path.join(work.path, 'source');
  /** Every node's publishes, compactions and local evictions done. */
  const settle = async () => {
    for (const node of cluster.nodes) await node.server.server.evictions!.idle();
  };

  /** The object ids the cluster's live packs of the repository hold, read from their indexes in the object store. */
  const livePackObjects = async (repo: string): Promise<{ oids: Set<string>; bytes: number }> => {
    const packs = await cluster.query<{ repo_id: string; name: string; bytes: string }>(
      'select p.repo_id, p.name, p.bytes from repo_packs p join repos r on r.id = p.repo_id where r.name = $1 and p.superseded_version is null', [repo]);
    const oids = new Set<string>();
    let bytes = 0;
    await cluster.withStore(async (store) => {
      for (const pack of packs) {
        const file = path.join(work.path, `pack-${pack.name}.idx`);
        await store.get(`repos/${pack.repo_id}/pack-${pack.name}.idx`, file);
        for (const line of (await gitOk(['show-index'], { input: await readFile(file) })).split('\n')) if (line !== '') oids.add(line.split(' ')[1]!);
        await rm(file);
        bytes += Number(pack.bytes);
      }
    });
    return { oids, bytes };
  };

  before(async () => {
    if (swiftAvailable()) {
      swift = await SwiftS3.start();
      await swift.createBucket('grove');
    }
    // Segments and packs no longer needed go at the next sweep, and sweeps run only when a test asks.
    const env = { GROVE_PACK_GRACE_MS: '0', GROVE_SWEEP_INTERVAL_MS: '3600000' };
    cluster = await TestCluster.start(2, { env: swift === null ? env : { ...env, ...swift.env('grove') } });
    work = await tempDir('grove-cluster-big-');
    await cluster.node(0).sdk.orgs.create({ name: 'ml' });
    await cluster.node(0).sdk.repos.create('ml', { name: 'models' });
    await initWorkRepo(source());
    await commitFile(source(), 'README.md', 'models\n', 'readme');
    bigCommit = await commitFile(source(), 'weights/model.bin', version1, 'model v1');
    oid1 = await revParse(source(), 'HEAD:weights/model.bin');
    await gitOk([...auth(token), 'push', '-q', cluster.url(0, 'ml', 'models'), 'HEAD:main'], { cwd: source() });
    await settle();
  });

  after(async () => {
    await cluster?.stop();
    await swift?.stop();
    await work?.[Symbol.asyncDispose]();
  });

  it('keeps a pushed big blob once: in the chunk store\'s segments, and in no live pack of the object store', async () => {
    assert.equal(await cluster.count('select count(*) from bigstore_blobs where oid = $1', [oid1]), 1);
    assert.equal(await cluster.count('select count(*) from bigstore_links where oid = $1', [oid1]), 1);
    const [segments] = await cluster.query<{ n: string; bytes: string }>('select count(*) as n, coalesce(sum(bytes), 0) as bytes from bigstore_segments');
    const segmentBytes = Number(segments!.bytes);
    assert.ok(segmentBytes >= version1.length && segmentBytes < version1.length * 1.01, `${segmentBytes} bytes of segments for a ${version1.length}-byte blob`);
    assert.equal((await cluster.storedKeys('bigstore/')).length, Number(segments!.n), 'one object per segment row');
    const live = await livePackObjects('models');
    assert.equal(live.oids.has(oid1), false, 'no live pack holds the big blob');
    assert.ok(live.oids.has(bigCommit), 'the commits are in the live packs');
    assert.ok(live.bytes < 1024 * 1024, `${live.bytes} bytes of live packs`);
  });

  it('clones it byte for byte from a node that never saw it, with fsck --strict clean, and serves a range of it by path and by id', async () => {
    const clone = path.join(work.path, 'clone-1');
    await gitOk([...auth(token), 'clone', '-q', cluster.url(1, 'ml', 'models'), clone]);
    assert.equal(sha256(await readFile(path.join(clone, 'weights/model.bin'))), sha256(version1));
    await gitOk(['fsck', '--strict', '--no-dangling'], { cwd: clone });
    assert.equal(cluster.node(1).server.bigstore.has(oid1), true, 'node 1 imported the blob into its own store');
    const metrics = await (await fetch(`${cluster.node(1).url}/metrics`)).text();
    assert.match(metrics, /grove_bigstore_cluster_blobs\{action="imported"\} 1\b/);
    const downloaded = Number(/grove_bigstore_cluster_bytes\{direction="downloaded"\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(downloaded >= version1.length, `${downloaded} bytes of segments downloaded`);
    const byPath = await read(cluster.node(1), 'ml/models', 'contents/weights/model.bin?ref=main', { headers: { range: 'bytes=1000000-1000099' } });
    assert.equal(byPath.status, 206);
    assert.ok(byPath.body.equals(version1.subarray(1_000_000, 1_000_100)));
    const byId = await read(cluster.node(1), 'ml/models', `blobs/${oid1}`, { headers: { range: `bytes=${version1.length - 10}-` } });
    assert.equal(byId.status, 206);
    assert.ok(byId.body.equals(version1.subarray(version1.length - 10)));
  });

  it('accepts through the other node a stock client\'s thin delta against the evicted blob, and keeps both versions out of the packs', async () => {
    const clone = path.join(work.path, 'clone-1');
    const version2 = withEdits(version1, 8);
    await writeFile(path.join(clone, 'weights/model.bin'), version2);
    await gitOk(['commit', '-q', '-am', 'model v2'], { cwd: clone });
    const pushed = await git([...auth(token), 'push', '--progress', 'origin', 'main'], { cwd: clone });
    assert.equal(pushed.code, 0, pushed.stderr);
    oid2 = await revParse(clone, 'HEAD:weights/model.bin');
    await settle();
    assert.equal(await cluster.count('select count(*) from bigstore_blobs where oid in ($1, $2)', [oid1, oid2]), 2);
    const live = await livePackObjects('models');
    assert.equal(live.oids.has(oid1) || live.oids.has(oid2), false, 'no live pack holds either version');
    const [segments] = await cluster.query<{ bytes: string }>('select coalesce(sum(bytes), 0) as bytes from bigstore_segments');
    assert.ok(Number(segments!.bytes) < version1.length * 1.2, `${segments!.bytes} bytes of segments for two versions that differ in 8 places`);
    const fresh = path.join(work.path, 'fresh-0');
    await gitOk([...auth(token), 'clone', '-q', cluster.url(0, 'ml', 'models'), fresh]);
    assert.equal(sha256(await readFile(path.join(fresh, 'weights/model.bin'))), sha256(version2));
    await gitOk(['fsck', '--strict', '--no-dangling'], { cwd: fresh });
    await rm(fresh, { recursive: true, force: true });
  });

  it('forks the repository through one node and serves the fork\'s big file from the other', async () => {
    await cluster.node(0).sdk.repos.fork('ml', 'models-fork', 'ml/models');
    assert.equal(await cluster.count('select count(*) from bigstore_links l join repos r on r.id = l.repo_id where r.name = $1', ['models-fork']), 2, 'the fork is linked to both versions');
    const clone = path.join(work.path, 'fork-1');
    await gitOk([...auth(token), 'clone', '-q', cluster.url(1, 'ml', 'models-fork'), clone]);
    await gitOk(['fsck', '--strict', '--no-dangling'], { cwd: clone });
    assert.equal(await revParse(clone, 'HEAD:weights/model.bin'), oid2);
    await rm(clone, { recursive: true, force: true });
    const old = await read(cluster.node(1), 'ml/models-fork', `contents/weights/model.bin?ref=${bigCommit}`, { headers: { range: 'bytes=0-99' } });
    assert.ok(old.body.equals(version1.subarray(0, 100)));
  });

  it('collects every catalogue row and segment object once the repositories are deleted', async () => {
    await cluster.node(1).sdk.repos.delete('ml', 'models-fork');
    await cluster.node(0).sdk.repos.delete('ml', 'models');
    for (const node of cluster.nodes) await node.server.server.sweep(); // the node holding the sweeper lease collects
    for (const table of ['bigstore_links', 'bigstore_blobs', 'bigstore_chunks', 'bigstore_segments']) {
      assert.equal(await cluster.count(`select count(*) from ${table}`), 0, `${table} is empty`);
    }
    assert.deepEqual(await cluster.storedKeys('bigstore/'), []);
  });
});
