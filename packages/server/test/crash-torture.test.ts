/**
 * SIGKILL torture: pushers push in a loop while the server is killed at random points,
 * then restarted. After every trial: each acknowledged push is on the server with the
 * acknowledged value (or with the value of the one push that was in flight), no ref
 * points at a missing object (`git fsck --connectivity-only`), and startup recovery
 * left no quarantine or lock file behind.
 *
 * GROVE_TORTURE_TRIALS sets the number of trials (CI: 50; `npm run torture -- --long`: 500).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Grove } from '@grove/sdk';
import { auth, git, gitOk, initWorkRepo } from './helpers/git.ts';
import { daemonEnv, startDaemon, type Daemon } from './helpers/daemon.ts';

const TRIALS = Number(process.env.GROVE_TORTURE_TRIALS ?? 50);
const PUSHERS = 3;
const TOKEN = 'grove_torture_admin_token_0123456789';

function startTortureDaemon(dataDir: string): Promise<Daemon> {
  return startDaemon({ dataDir, env: daemonEnv({ GROVE_ADMIN_TOKEN: TOKEN, GROVE_LOG_LEVEL: 'error' }) });
}

interface Pusher {
  readonly dir: string;
  readonly branch: string;
  /** The value the server acknowledged last. */
  acked: string | null;
  /** The value of a push that was cut off (may or may not have landed). */
  inFlight: string | null;
  commits: number;
}

/** Branches created by acknowledged pushes, with their values. */
const createdBranches = new Map<string, string>();

async function pushLoop(pusher: Pusher, url: string, stop: () => boolean): Promise<void> {
  while (!stop()) {
    pusher.commits++;
    await writeFile(path.join(pusher.dir, 'file.txt'), `${pusher.branch} ${pusher.commits} ${Math.random()}\n`);
    await gitOk(['add', 'file.txt'], { cwd: pusher.dir });
    await gitOk(['commit', '-q', '-m', `${pusher.branch} ${pusher.commits}`], { cwd: pusher.dir });
    const sha = (await gitOk(['rev-parse', 'HEAD'], { cwd: pusher.dir })).trim();
    const extra = `refs/heads/created/${pusher.branch}-${pusher.commits}`;
    pusher.inFlight = sha;
    const result = await git([...auth(TOKEN), '-c', 'http.lowSpeedLimit=1', '-c', 'http.lowSpeedTime=5', 'push', '--porcelain', url, `HEAD:refs/heads/${pusher.branch}`, `HEAD:${extra}`], { cwd: pusher.dir });
    if (result.code === 0) {
      pusher.acked = sha;
      pusher.inFlight = null;
      createdBranches.set(extra, sha);
    } else if (/Connection refused|Failed to connect|Empty reply|transfer closed|unexpected disconnect|hung up|RPC failed|Recv failure|Send failure|Connection reset|early EOF|Couldn't connect/.test(result.stderr)) {
      return; // the server was killed under this push: its fate is checked after the restart
    } else {
      throw new Error(`push failed for a reason other than the kill:\n${result.stderr}`);
    }
  }
}

describe('crash safety under SIGKILL', { timeout: 30 * 60_000 }, () => {
  let dataDir: string;
  let workDir: string;
  let repoDir: string;
  let cloneUrl: string;
  const pushers: Pusher[] = [];
  const figures = { trials: 0, acknowledgedPushes: 0, inFlightLanded: 0, inFlightLost: 0, lostAcknowledged: 0 };

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'grove-torture-'));
    workDir = await mkdtemp(path.join(os.tmpdir(), 'grove-torture-work-'));
    const daemon = await startTortureDaemon(dataDir);
    const sdk = new Grove({ baseUrl: daemon.url, token: TOKEN });
    await sdk.orgs.create({ name: 'torture' });
    const repo = await sdk.repos.create('torture', { name: 'target' });
    repoDir = path.join(dataDir, 'repos', repo.id.slice(-2), `${repo.id}.git`);
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    cloneUrl = `/torture/target.git`;
    for (let i = 0; i < PUSHERS; i++) {
      const dir = path.join(workDir, `p${i}`);
      await initWorkRepo(dir);
      pushers.push({ dir, branch: `p${i}`, acked: null, inFlight: null, commits: 0 });
    }
  });

  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
    await rm(workDir, { recursive: true, force: true });
    process.stdout.write(`# torture figures: ${JSON.stringify(figures)}\n`);
  });

  it(`loses no acknowledged push and corrupts nothing across ${TRIALS} SIGKILLs`, async () => {
    for (let trial = 0; trial < TRIALS; trial++) {
      const daemon = await startTortureDaemon(dataDir);
      const url = `${daemon.url}${cloneUrl}`;
      // The server is up: check what the previous kill left.
      await verify(url, trial);
      let stopped = false;
      const loops = pushers.map((p) => pushLoop(p, url, () => stopped));
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 900));
      daemon.child.kill('SIGKILL');
      stopped = true;
      await daemon.exited;
      await Promise.all(loops);
      figures.trials++;
    }
    const daemon = await startTortureDaemon(dataDir);
    await verify(`${daemon.url}${cloneUrl}`, TRIALS);
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    assert.equal(figures.lostAcknowledged, 0);
    assert.ok(figures.acknowledgedPushes > TRIALS / 2, `only ${figures.acknowledgedPushes} pushes were acknowledged in ${TRIALS} trials`);
  });

  async function verify(url: string, trial: number): Promise<void> {
    const listing = await gitOk([...auth(TOKEN), 'ls-remote', url]);
    const remote = new Map(listing.trim().split('\n').filter(Boolean).map((line) => {
      const [sha, ref] = line.split('\t') as [string, string];
      return [ref, sha];
    }));
    for (const pusher of pushers) {
      const value = remote.get(`refs/heads/${pusher.branch}`) ?? null;
      if (pusher.inFlight !== null && value === pusher.inFlight) {
        figures.inFlightLanded++;
        pusher.acked = value;
      } else if (value !== pusher.acked) {
        figures.lostAcknowledged++;
        assert.fail(`trial ${trial}: ${pusher.branch} is ${value} on the server; acknowledged ${pusher.acked}, in flight ${pusher.inFlight}`);
      } else if (pusher.inFlight !== null) {
        figures.inFlightLost++;
      }
      pusher.inFlight = null;
    }
    for (const [ref, sha] of createdBranches) {
      if (remote.get(ref) !== sha) {
        figures.lostAcknowledged++;
        assert.fail(`trial ${trial}: acknowledged ${ref} at ${sha}, server has ${remote.get(ref)}`);
      }
    }
    figures.acknowledgedPushes = createdBranches.size;
    const fsck = await git(['--git-dir', repoDir, 'fsck', '--connectivity-only', '--no-dangling']);
    assert.equal(fsck.code, 0, `trial ${trial}: fsck failed:\n${fsck.stderr}`);
    const objects = await readdir(path.join(repoDir, 'objects'));
    assert.deepEqual(objects.filter((name) => name.startsWith('incoming-')), [], `trial ${trial}: a quarantine survived recovery`);
    const heads = await readdir(path.join(repoDir, 'refs', 'heads'), { recursive: true });
    assert.deepEqual(heads.filter((name) => String(name).endsWith('.lock')), [], `trial ${trial}: a ref lock survived recovery`);
  }
});
