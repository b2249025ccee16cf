/**
 * `node --conditions=grove-source bench/cluster-large.ts [--size=MiB] [--versions=N]`: one big
 * file (random bytes, 1 GiB by default) through a cluster of two `grove serve` nodes (one
 * private PostgreSQL 15, OpenStack Swift's s3api when installed, else a directory store) and
 * through the reference peer (nginx + fcgiwrap + `git http-backend`) in the same run, for the
 * cluster rows of docs/large-files.md and docs/benchmarks.md:
 *
 * - push to node A with the git CLI (wall), then the time until the cluster keeps the blob once:
 *   published to the chunk store's catalogue and no longer in any live pack;
 * - full clones from node B, which never saw the blob: the first (B imports it from the
 *   segments, then splices it) and a second (from B's own store), wall and B's CPU, against a
 *   clone from the peer;
 * - further versions (2 in all by default), 1% rewritten in 16 regions, pushed to both: the
 *   bucket's bytes (packs + segments) for all versions against the peer's repository.
 *
 * Run on a quiet machine, never beside the test suite. Prints a Markdown table; nothing is written.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PostgresCluster } from '../packages/server/test/helpers/postgres-cluster.ts';
import { SwiftS3, swiftAvailable } from '../packages/server/test/helpers/swift.ts';
import { openObjectStore, parseObjectStore } from '../packages/server/src/storage/open-object-store.ts';
import { startGrove } from './servers.ts';
import { BENCH_CLIENT, commitRandomFile, startLargePeer, createBenchRepo, diskBytes, measure, rewriteOnePercent, type Measured } from './large-common.ts';
import { cleanup, fmtBytes, gitOk, setGitHome } from './util.ts';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sizeMiB = Number(process.argv.find((a) => a.startsWith('--size='))?.slice(7) ?? 1024);
const versions = Number(process.argv.find((a) => a.startsWith('--versions='))?.slice(11) ?? 2);
const TOKEN = 'grove_bench_cluster_large_token_0123456789';

const tmp = await mkdtemp(path.join(os.tmpdir(), 'grove-bench-cluster-large-'));
const postgres = await PostgresCluster.start({ maxConnections: 100 });
const swift = swiftAvailable() ? await SwiftS3.start() : null;
try {
  await swift?.createBucket('bench');
  const home = path.join(tmp, 'home');
  await mkdir(home);
  setGitHome(home);
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  await admin.query('create database grove');
  await admin.end();
  const databaseUrl = postgres.url.replace(/\/postgres$/, '/grove');
  const storeEnv: Record<string, string> = swift?.env('bench') ?? { GROVE_OBJECT_STORE: `file://${path.join(tmp, 'objects')}` };
  const env = (node: string) => ({ ...storeEnv, GROVE_DATABASE_URL: databaseUrl, GROVE_NODE_ID: node, GROVE_MAX_PACK_BYTES: String(8 * 1024 ** 3),
    // Superseded packs leave the bucket at the next sweep, every second, so its bytes are what the cluster keeps.
    GROVE_PACK_GRACE_MS: '0', GROVE_SWEEP_INTERVAL_MS: '1000' });
  const nodeA = await startGrove(PROJECT_ROOT, path.join(tmp, 'node-a'), TOKEN, { env: env('node-a') });
  const nodeB = await startGrove(PROJECT_ROOT, path.join(tmp, 'node-b'), TOKEN, { env: env('node-b') });
  await createBenchRepo(nodeA);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();

  const { work, file, oid } = await commitRandomFile(tmp, sizeMiB);
  const size = sizeMiB * 1024 * 1024;

  const { peer, peerRepo } = await startLargePeer(tmp);
  const groveAuth = ['-c', `http.extraHeader=Authorization: Bearer ${TOKEN}`];
  const url = (server: { url: string }) => `${server.url}/bench/large.git`;

  /** Until the catalogue holds `blobs` big blobs and the repository's live packs are small (every version left out). */
  const storedOnce = async (blobs: number): Promise<void> => {
    const started = performance.now();
    for (;;) {
      const held = Number((await db.query('select count(*) as n from bigstore_blobs')).rows[0].n);
      const live = Number((await db.query('select coalesce(sum(bytes), 0) as b from repo_packs where superseded_version is null')).rows[0].b);
      if (held >= blobs && live < 16 * 1024 * 1024) return;
      if (performance.now() - started > 900_000) throw new Error(`after 15 minutes: ${held} blobs in the catalogue, ${live} bytes of live packs`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const clone = async (side: string, target: string, auth: string[], roots: number[]): Promise<Measured> => {
    const dir = path.join(tmp, `${side}.git`);
    const measured = await measure(roots, () => gitOk([...auth, 'clone', '-q', '--bare', target, dir], { timeoutMs: 1_800_000 }));
    const held = Number((await gitOk(['--git-dir', dir, 'cat-file', '-s', oid])).stdout.trim());
    if (held !== size) throw new Error(`${side}'s clone holds ${held} bytes of the file`);
    await rm(dir, { recursive: true, force: true });
    return measured;
  };

  const pushA = await measure([nodeA.pid], () => gitOk([...groveAuth, 'push', '-q', url(nodeA), 'main'], { cwd: work, timeoutMs: 1_800_000 }));
  const onceStarted = performance.now();
  await storedOnce(1);
  const onceMs = performance.now() - onceStarted;
  const pushPeer = await measure([peer.nginxPid, peer.fcgiwrapPid], () => gitOk(['push', '-q', url(peer), 'main'], { cwd: work, timeoutMs: 1_800_000 }));
  const coldB = await clone('cold-b', url(nodeB), groveAuth, [nodeB.pid]);
  const warmB = await clone('warm-b', url(nodeB), groveAuth, [nodeB.pid]);
  const fromPeer = await clone('peer', url(peer), [], [peer.nginxPid, peer.fcgiwrapPid]);

  for (let version = 2; version <= versions; version++) {
    await rewriteOnePercent(file, size);
    await gitOk([...BENCH_CLIENT, 'commit', '-q', '-am', `weights v${version}`], { cwd: work, timeoutMs: 1_200_000 });
    await gitOk([...groveAuth, 'push', '-q', url(nodeA), 'main'], { cwd: work, timeoutMs: 1_800_000 });
    await gitOk(['push', '-q', url(peer), 'main'], { cwd: work, timeoutMs: 1_800_000 });
    await storedOnce(version);
  }
  // The sweeper deletes the superseded packs (which held the big blobs) within a pass or two.
  for (const started = performance.now(); Number((await db.query('select count(*) as n from repo_packs where superseded_version is not null')).rows[0].n) > 0; ) {
    if (performance.now() - started > 60_000) throw new Error('superseded packs were not swept within a minute');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const config = parseObjectStore(storeEnv.GROVE_OBJECT_STORE!, storeEnv);
  if (typeof config === 'string') throw new Error(config);
  const store = await openObjectStore(config);
  const bucket = { packs: 0, segments: 0 };
  for await (const object of store.list('repos/')) bucket.packs += object.size;
  for await (const object of store.list('bigstore/')) bucket.segments += object.size;
  await store.close();
  const peerBytes = await diskBytes(peerRepo);
  await db.end();

  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const row = (what: string, grove: Measured, reference: Measured) =>
    `| ${what} | ${s(grove.wallMs)} | ${s(reference.wallMs)} | ${(grove.wallMs / reference.wallMs).toFixed(2)}x | ${s(grove.cpuMs)} / ${s(reference.cpuMs)} |`;
  console.log(`\n${sizeMiB} MiB of random bytes in one file, a cluster of two nodes on ${swift === null ? 'a directory store' : "Swift's s3api"}, git ${(await gitOk(['--version'])).stdout.trim()}\n`);
  console.log('| step | Grove wall | peer wall | ratio | server CPU Grove / peer |');
  console.log('|---|---|---|---|---|');
  console.log(row('push to node A (git CLI)', pushA, pushPeer));
  console.log(row('first full clone from node B (imports the blob)', coldB, fromPeer));
  console.log(row('second full clone from node B', warmB, fromPeer));
  console.log(`\nStored once (in the catalogue, in no live pack) ${s(onceMs)} after the push's end.`);
  console.log(`${versions} versions (each after the first with 1% rewritten in 16 regions): the bucket holds ${fmtBytes(bucket.packs + bucket.segments)} (packs ${fmtBytes(bucket.packs)} + segments ${fmtBytes(bucket.segments)}); the peer's repository ${fmtBytes(peerBytes)}; the segments hold them in ${((bucket.segments / (versions * size)) * 100).toFixed(0)}% of their ${fmtBytes(versions * size)}`);
  await nodeA.stop();
  await nodeB.stop();
  await peer.stop();
} finally {
  await cleanup();
  await swift?.stop();
  await postgres.stop();
  await rm(tmp, { recursive: true, force: true });
}
