/**
 * `node --conditions=grove-source bench/cluster.ts`: a three-node cluster (three `grove serve`
 * processes on one private PostgreSQL 15 and one object store) against one embedded node, on
 * this machine, for the scale-out targets (docs/scale-out.md, docs/benchmarks.md "cluster"):
 *
 * - 64 agents push a new branch each, 16 at once (the cluster round-robin), p50/p95;
 * - ls-refs requests per second (protocol v2, 8 in flight, 5 s) on a cluster node vs embedded;
 * - a new node with an empty cache: its first full clone of a repository of 2,000 commits
 *   pushed in 61 pushes, after compaction;
 * - a push on node A seen by an SSE subscriber on node B: from the push's acknowledgement to
 *   the event, 50 pushes.
 *
 * The object store is OpenStack Swift's s3api when installed (`--store=file` for a
 * directory); the nodes reach PostgreSQL over TCP (`--socket`: its Unix socket). Prints a
 * Markdown table; nothing is written.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { daemonEnv, startDaemon, stopDaemon, type Daemon } from '../packages/server/test/helpers/daemon.ts';
import { PostgresCluster } from '../packages/server/test/helpers/postgres-cluster.ts';
import { SwiftS3, swiftAvailable } from '../packages/server/test/helpers/swift.ts';
import { git, gitOk, percentile } from './util.ts';

const TOKEN = 'grove_bench_cluster_token_0123456789';
const useSwift = !process.argv.includes('--store=file') && swiftAvailable();
const auth = ['-c', `http.extraHeader=Authorization: Bearer ${TOKEN}`];

const root = await mkdtemp(path.join(os.tmpdir(), 'grove-bench-cluster-'));
const postgres = await PostgresCluster.start({ maxConnections: 200 });
const swift = useSwift ? await SwiftS3.start() : null;
await swift?.createBucket('bench');
const admin = new pg.Client({ connectionString: postgres.url });
await admin.connect();
await admin.query('create database grove');
await admin.end();
const clusterEnv = {
  ...(swift?.env('bench') ?? { GROVE_OBJECT_STORE: `file://${path.join(root, 'objects')}` }),
  GROVE_DATABASE_URL: process.argv.includes('--socket') ? postgres.socketUrl.replace('/postgres?', '/grove?') : postgres.url.replace(/\/postgres$/, '/grove'),
  GROVE_ADMIN_TOKEN: TOKEN,
  GROVE_LOG_LEVEL: 'error',
};
const daemons: Daemon[] = [];
const rows: string[][] = [];

try {
  const embedded = await startDaemon({ dataDir: path.join(root, 'embedded'), env: daemonEnv({ GROVE_ADMIN_TOKEN: TOKEN, GROVE_LOG_LEVEL: 'error' }) });
  daemons.push(embedded);
  const nodes: Daemon[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await startDaemon({ dataDir: path.join(root, `node-${i}`), env: daemonEnv({ ...clusterEnv, GROVE_NODE_ID: `node-${i}` }) }));
  daemons.push(...nodes);
  for (const url of [embedded.url, nodes[0]!.url]) await api(url, '/api/v1/orgs', { name: 'acme' });

  // The repository: 2,000 commits, pushed in 61 pushes (so the cluster has many packs to compact).
  const seed = path.join(root, 'seed');
  await gitOk(['init', '-q', '-b', 'main', seed]);
  const stream: string[] = [];
  for (let i = 1; i <= 2000; i++) {
    const content = `file ${i % 97}\n${'x'.repeat(200)}\n${i}\n`;
    stream.push(`commit refs/heads/main\ncommitter Bench <b@x> ${1700000000 + i} +0000\ndata 8\ncommit ${i % 10}\nM 644 inline f${i % 97}.txt\ndata ${Buffer.byteLength(content)}\n${content}\n`);
  }
  await gitOk(['fast-import', '--quiet'], { cwd: seed, input: stream.join('') });
  const commits = (await gitOk(['rev-list', '--reverse', 'main'], { cwd: seed })).stdout.trim().split('\n');
  for (const [url, name] of [[embedded.url, 'app'], [nodes[0]!.url, 'app']] as const) {
    await api(url, '/api/v1/orgs/acme/repos', { name });
    for (let step = 1; step <= 61; step++) {
      const upTo = commits[Math.min(commits.length, Math.round((step * commits.length) / 61)) - 1]!;
      const target = url === embedded.url ? url : nodes[step % 3]!.url;
      await gitOk([...auth, 'push', '-q', `${target}/acme/app.git`, `${upTo}:refs/heads/main`], { cwd: seed });
    }
  }

  // 64 agents, 16 at once.
  const agents = async (urls: readonly string[]): Promise<number[]> => {
    const dirs: string[] = [];
    for (let i = 0; i < 64; i++) {
      const dir = path.join(root, `agent-${urls.length}-${i}`);
      await gitOk([...auth, 'clone', '-q', '--depth', '1', `${urls[0]}/acme/app.git`, dir]);
      await gitOk(['-c', 'user.name=a', '-c', 'user.email=a@x', 'commit', '-q', '--allow-empty', '-m', `agent ${i}`], { cwd: dir });
      dirs.push(dir);
    }
    const times: number[] = [];
    let next = 0;
    let failures = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < dirs.length) {
        const i = next++;
        const started = performance.now();
        const result = await git([...auth, 'push', '-q', `${urls[i % urls.length]}/acme/app.git`, `HEAD:refs/heads/agent-${i}`], { cwd: dirs[i]! });
        if (result.code !== 0) failures++;
        times.push(performance.now() - started);
      }
    }));
    if (failures > 0) throw new Error(`${failures} agent pushes failed`);
    return times;
  };
  const embeddedPushes = await agents([embedded.url]);
  const clusterPushes = await agents(nodes.map((n) => n.url));
  const p = (values: number[], q: number) => percentile(values, q);
  rows.push(['64 agents push a new branch, 16 at once, p50', ms(p(embeddedPushes, 50)), ms(p(clusterPushes, 50)), ratio(p(clusterPushes, 50) / p(embeddedPushes, 50)), '≤ 1.3x, 0 failures']);
  rows.push(['… p95', ms(p(embeddedPushes, 95)), ms(p(clusterPushes, 95)), ratio(p(clusterPushes, 95) / p(embeddedPushes, 95)), '']);

  // ls-refs throughput.
  const lsRefs = async (url: string): Promise<number> => {
    const body = Buffer.from('0014command=ls-refs\n0014agent=git/2.39.5\n00010009peel\n000csymrefs\n0000');
    let done = 0;
    const until = performance.now() + 5000;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (performance.now() < until) {
        const response = await fetch(`${url}/acme/app.git/git-upload-pack`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-git-upload-pack-request', 'git-protocol': 'version=2' }, body });
        await response.arrayBuffer();
        if (response.status !== 200) throw new Error(`ls-refs: ${response.status}`);
        done++;
      }
    }));
    return done / 5;
  };
  const embeddedLs = await lsRefs(embedded.url);
  const clusterLs = await lsRefs(nodes[1]!.url);
  rows.push(['ls-refs req/s, 8 in flight', embeddedLs.toFixed(0), clusterLs.toFixed(0), ratio(clusterLs / embeddedLs), '≥ 0.8x']);

  // A new node, empty cache, first full clone (after compaction of the 61 + 64 pushes' packs).
  const pool = new pg.Client({ connectionString: clusterEnv.GROVE_DATABASE_URL });
  await pool.connect();
  const live = Number((await pool.query("select count(*) from repo_packs where superseded_version is null")).rows[0].count);
  await pool.end();
  const fresh = await startDaemon({ dataDir: path.join(root, 'fresh'), env: daemonEnv({ ...clusterEnv, GROVE_NODE_ID: 'fresh' }) });
  daemons.push(fresh);
  let started = performance.now();
  await gitOk([...auth, 'clone', '-q', '--bare', `${fresh.url}/acme/app.git`, path.join(root, 'cold-clone')]);
  const cold = performance.now() - started;
  started = performance.now();
  await gitOk([...auth, 'clone', '-q', '--bare', `${embedded.url}/acme/app.git`, path.join(root, 'embedded-clone')]);
  const warm = performance.now() - started;
  rows.push([`new node, empty cache: first full clone (2,000 commits, ${live} live packs)`, ms(warm), ms(cold), ratio(cold / warm), '≤ 1 s']);

  // SSE across nodes.
  const latencies: number[] = [];
  const controller = new AbortController();
  const received = new Map<string, number>();
  const stream$ = (async () => {
    const response = await fetch(`${nodes[1]!.url}/api/v1/events?org=acme&types=push`, { headers: { authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream' }, signal: controller.signal });
    const reader = response.body!.getReader();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
      for (const match of text.matchAll(/"after":"([0-9a-f]{40})"/g)) if (!received.has(match[1]!)) received.set(match[1]!, performance.now());
    }
  })().catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const sse = path.join(root, 'agent-3-0');
  for (let i = 0; i < 50; i++) {
    await gitOk(['-c', 'user.name=a', '-c', 'user.email=a@x', 'commit', '-q', '--allow-empty', '-m', `sse ${i}`], { cwd: sse });
    const sha = (await gitOk(['rev-parse', 'HEAD'], { cwd: sse })).stdout.trim();
    await gitOk([...auth, 'push', '-q', `${nodes[0]!.url}/acme/app.git`, 'HEAD:refs/heads/sse'], { cwd: sse });
    const acked = performance.now();
    while (!received.has(sha) && performance.now() - acked < 5000) await new Promise((resolve) => setTimeout(resolve, 2));
    latencies.push((received.get(sha) ?? Number.POSITIVE_INFINITY) - acked);
  }
  controller.abort();
  await stream$;
  rows.push(['push on node A → SSE subscriber on node B, after the ack, p50 / p95', '—', `${ms(p(latencies, 50))} / ${ms(p(latencies, 95))}`, '', 'p95 ≤ 250 ms']);

  console.log(`\nCluster: 3 nodes, PostgreSQL 15 over ${process.argv.includes('--socket') ? 'its Unix socket' : 'TCP'}, object store ${useSwift ? 'OpenStack Swift s3api' : 'a directory'}; ${new Date().toISOString()}\n`);
  console.log('| workload | embedded | cluster | cluster ÷ embedded | target |');
  console.log('|---|---:|---:|---:|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
} finally {
  for (const daemon of daemons) await stopDaemon(daemon).catch(() => undefined);
  await swift?.stop();
  await postgres.stop();
  await rm(root, { recursive: true, force: true });
}

async function api(url: string, route: string, body: unknown): Promise<void> {
  const response = await fetch(`${url}${route}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${route}: ${response.status} ${await response.text()}`);
}

function ms(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(0)} ms` : 'none';
}

function ratio(value: number): string {
  return `${value.toFixed(2)}x`;
}
