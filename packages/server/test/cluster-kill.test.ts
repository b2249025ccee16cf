/**
 * SIGKILL torture of a three-node cluster (`grove serve` processes on one PostgreSQL database
 * and one object store): pushers push to random nodes while a random node is killed every
 * 0.3–1 s and restarted, on its old cache or (one time in four) on an empty one. After the
 * run, every acknowledged push is on every node (the branch is at the acknowledged commit or a
 * later one of the same pusher), a cold node rebuilt from PostgreSQL and the object store has
 * every ref and passes fsck, and every pack the database names is in the store.
 *
 * GROVE_CLUSTER_KILLS sets the number of kills (CI: 50; the long run: 500).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { onPostgres } from './helpers/database.ts';
import { postgresAvailable } from './helpers/postgres-cluster.ts';
import { TestCluster } from './helpers/cluster.ts';
import { daemonEnv, killAllDaemons, startDaemon, type Daemon } from './helpers/daemon.ts';
import { auth, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';
import { SwiftS3, swiftAvailable } from './helpers/swift.ts';
import { TEST_ADMIN_TOKEN } from './helpers/server.ts';

const KILLS = Number(process.env.GROVE_CLUSTER_KILLS ?? 50);
const NODES = 3;
const PUSHERS = 3;
const token = TEST_ADMIN_TOKEN;
const skip = onPostgres
  ? 'runs once, in the SQLite pass: it starts a PostgreSQL cluster of its own'
  : postgresAvailable() ? false : 'PostgreSQL is not installed (Debian: apt-get install postgresql)';

interface Pusher {
  readonly dir: string;
  readonly branch: string;
  acked: string | null;
  pushes: number;
  acks: number;
}

describe('a three-node cluster under SIGKILL', { skip }, () => {
  let cluster: TestCluster;
  let swift: SwiftS3 | null = null;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const daemons: (Daemon | null)[] = [];
  let nodeEnv: Record<string, string>;

  before(async () => {
    if (swiftAvailable()) {
      swift = await SwiftS3.start();
      await swift.createBucket('kill');
    }
    // The rig's PostgreSQL and object store; its in-process nodes are not used (no nodes).
    cluster = await TestCluster.start(0, swift === null ? {} : { env: swift.env('kill') });
    work = await tempDir('grove-cluster-kill-');
    nodeEnv = { ...(swift?.env('kill') ?? {}), GROVE_DATABASE_URL: cluster.databaseUrl, GROVE_OBJECT_STORE: cluster.objectStore, GROVE_ADMIN_TOKEN: token, GROVE_LOG_LEVEL: 'error' };
    for (let i = 0; i < NODES; i++) daemons.push(await startNode(i));
  });
  after(async () => {
    killAllDaemons();
    await cluster?.stop();
    await swift?.stop();
    await work?.[Symbol.asyncDispose]();
  });

  function startNode(i: number): Promise<Daemon> {
    return startDaemon({ dataDir: path.join(work.path, `node-${i}`), env: daemonEnv({ ...nodeEnv, GROVE_NODE_ID: `node-${i}` }) });
  }

  it(`loses no acknowledged push over ${KILLS} kills of random nodes, and a cold node rebuilt from PostgreSQL and the object store passes fsck`, async (t) => {
    const first = daemons[0]!;
    await post(`${first.url}/api/v1/orgs`, { name: 'acme' });
    await post(`${first.url}/api/v1/orgs/acme/repos`, { name: 'app' });
    const pushers: Pusher[] = [];
    for (let p = 0; p < PUSHERS; p++) {
      const dir = path.join(work.path, `pusher-${p}`);
      await initWorkRepo(dir);
      pushers.push({ dir, branch: `pusher-${p}`, acked: null, pushes: 0, acks: 0 });
    }
    let stop = false;
    const loops = pushers.map(async (pusher) => {
      while (!stop) {
        pusher.pushes++;
        await writeFile(path.join(pusher.dir, 'file.txt'), `${pusher.branch} ${pusher.pushes}\n`);
        await gitOk(['add', 'file.txt'], { cwd: pusher.dir });
        await gitOk(['commit', '-q', '-m', `${pusher.branch} ${pusher.pushes}`], { cwd: pusher.dir });
        const sha = (await gitOk(['rev-parse', 'HEAD'], { cwd: pusher.dir })).trim();
        const live = daemons.filter((d): d is Daemon => d !== null);
        const target = live[Math.floor(Math.random() * live.length)];
        if (target === undefined) continue;
        const result = await git([...auth(token), '-c', 'http.lowSpeedLimit=1', '-c', 'http.lowSpeedTime=5', 'push', '-q', `${target.url}/acme/app.git`, `HEAD:refs/heads/${pusher.branch}`], { cwd: pusher.dir });
        if (result.code === 0) {
          pusher.acked = sha;
          pusher.acks++;
        }
        // Anything else (the node died under it, or it was not up) is not acknowledged: it may or may not have landed.
      }
    });
    let kills = 0;
    while (kills < KILLS) {
      await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 700));
      const victim = Math.floor(Math.random() * NODES);
      const daemon = daemons[victim];
      if (daemon === null || daemon === undefined) continue;
      daemons[victim] = null;
      daemon.child.kill('SIGKILL');
      await daemon.exited;
      kills++;
      if (Math.random() < 0.25) await rm(path.join(work.path, `node-${victim}`), { recursive: true, force: true }); // a node replaced by a new one
      daemons[victim] = await startNode(victim);
    }
    stop = true;
    await Promise.all(loops);
    const acknowledged = pushers.reduce((sum, p) => sum + p.acks, 0);
    t.diagnostic(`${KILLS} kills, ${pushers.reduce((sum, p) => sum + p.pushes, 0)} pushes tried, ${acknowledged} acknowledged`);
    assert.ok(acknowledged > KILLS, `only ${acknowledged} pushes were acknowledged over ${KILLS} kills`);

    // Every node shows each pusher's branch at its last acknowledged commit or a later one of its own.
    for (const daemon of daemons) {
      const listing = await gitOk([...auth(token), 'ls-remote', `${daemon!.url}/acme/app.git`]);
      const refs = new Map(listing.trim().split('\n').filter(Boolean).map((line) => line.split('\t').reverse() as [string, string]));
      for (const pusher of pushers) {
        if (pusher.acked === null) continue;
        const value = refs.get(`refs/heads/${pusher.branch}`);
        assert.ok(value !== undefined, `${daemon!.url} lost ${pusher.branch}`);
        const contains = await git(['merge-base', '--is-ancestor', pusher.acked, value!], { cwd: pusher.dir });
        assert.equal(contains.code, 0, `${daemon!.url}: ${pusher.branch} is at ${value}, which does not contain the acknowledged ${pusher.acked}`);
      }
    }

    // A node that has never seen the repository builds it from PostgreSQL and the object store.
    const cold = await startDaemon({ dataDir: path.join(work.path, 'cold'), env: daemonEnv({ ...nodeEnv, GROVE_NODE_ID: 'cold' }) });
    const mirror = path.join(work.path, 'mirror');
    await gitOk([...auth(token), 'clone', '-q', '--mirror', `${cold.url}/acme/app.git`, mirror]);
    await gitOk(['fsck', '--connectivity-only', '--no-dangling'], { cwd: mirror });
    const keys = new Set(await cluster.storedKeys());
    const rows = await cluster.query<{ repo_id: string; name: string }>('select repo_id, name from repo_packs');
    for (const row of rows) assert.ok(keys.has(`repos/${row.repo_id}/pack-${row.name}.pack`), `pack ${row.name} is recorded but not stored`);
    const recorded = new Set(rows.map((row) => `repos/${row.repo_id}/pack-${row.name}.pack`));
    t.diagnostic(`${rows.length} packs recorded, ${[...keys].filter((k) => k.endsWith('.pack') && !recorded.has(k)).length} orphan packs in the store (uploaded, never committed)`);
    cold.child.kill('SIGKILL');
  });
});

async function post(url: string, body: unknown): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.ok(response.ok, `${url}: ${response.status} ${await response.text()}`);
}
