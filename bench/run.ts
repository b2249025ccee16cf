/**
 * `npm run bench` (`node bench/run.ts [--quick|--full]`): Grove against `git http-backend`
 * behind nginx + fcgiwrap, side by side in one run on the same repositories.
 *
 * It generates the workload repository with git fast-import, starts Grove (child process)
 * and the peer on 127.0.0.1, pushes the history to Grove and mirrors it to the peer, runs
 * the protocol-level load (bench/load-client.ts), the end-to-end git CLI workloads and the
 * API workloads (bench/e2e.ts), prints one table and writes it with the method, the machine
 * and the date to docs/benchmarks.md. Everything it starts is stopped and its temp dir
 * removed, also on failure or Ctrl-C; every loop is bounded in count and time.
 *
 * Options: --quick (default) | --full, --concurrency N (default 8), --client raw|http
 * (the load client's transport, default raw), --no-peer, --no-ceiling, --no-write (do not
 * touch docs/benchmarks.md), --out FILE, --help.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { apiWorkloads, cloneWallTimes, describeLayout, mergeFleets, pushFleet, pushStormThenFetch, repack, repoLayout, type ApiResult, type CloneTimes, type PushFleetResult, type RepoLayout, type Side, type StormResult } from './e2e.ts';
import { LOAD_OPS, mergeLoads, runLoad, type LoadOp, type LoadResult, type Transport } from './load-client.ts';
import { markdownTable, ratioOf, textTable, verdict, type Row } from './report.ts';
import { ensurePeer, httpRequest, startGrove, startPeer, startReplay, type GroveServer, type PeerServer } from './servers.ts';
import { appendChains, generateRepo, type GeneratedRepo } from './workload.ts';
import { cleanup, cleanupSync, fmtBytes, fmtMs, gitOk, log, median, processTree, rssBytes, RssSampler, run, setGitHome, sleep, trackTempDir, type RssStats } from './util.ts';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------------------
// Modes

interface Mode {
  readonly name: 'quick' | 'full';
  readonly commits: number;
  /** Per server and workload, split into `loadRounds` interleaved rounds. */
  readonly loadSeconds: Readonly<Record<LoadOp, number>>;
  readonly loadRounds: number;
  readonly loadRequests: Readonly<Record<LoadOp, number>>;
  readonly cloneSamples: number;
  readonly agents: number;
  readonly agentConcurrency: number;
  readonly stormPushes: number;
  readonly stormLanes: number;
  readonly fetchSamples: number;
  readonly rssClones: number;
  readonly creates: number;
  readonly orgRepos: number;
  readonly lists: number;
}

const QUICK: Mode = {
  name: 'quick',
  commits: 2000,
  loadSeconds: { 'ls-refs': 5, 'info-refs': 5, 'shallow-fetch': 6, 'full-fetch': 8 },
  loadRequests: { 'ls-refs': 50_000, 'info-refs': 50_000, 'shallow-fetch': 20_000, 'full-fetch': 5_000 },
  loadRounds: 4,
  cloneSamples: 5,
  agents: 64,
  agentConcurrency: 16,
  stormPushes: 300,
  stormLanes: 4,
  fetchSamples: 5,
  rssClones: 200,
  creates: 200,
  orgRepos: 2000,
  lists: 200,
};

const FULL: Mode = {
  name: 'full',
  commits: 5000,
  loadSeconds: { 'ls-refs': 15, 'info-refs': 15, 'shallow-fetch': 20, 'full-fetch': 30 },
  loadRequests: { 'ls-refs': 500_000, 'info-refs': 500_000, 'shallow-fetch': 100_000, 'full-fetch': 20_000 },
  loadRounds: 6,
  cloneSamples: 7,
  agents: 64,
  agentConcurrency: 16,
  stormPushes: 2000,
  stormLanes: 4,
  fetchSamples: 9,
  rssClones: 200,
  creates: 200,
  orgRepos: 10_000,
  lists: 200,
};

interface Options {
  readonly mode: Mode;
  readonly concurrency: number;
  readonly transport: Transport;
  readonly ceiling: boolean;
  readonly peer: boolean;
  readonly write: boolean;
  readonly out: string;
}

function parseArgs(argv: readonly string[]): Options {
  let mode = QUICK;
  let concurrency = 8;
  let peer = true;
  let write = true;
  let transport: Transport = 'raw';
  let ceiling = true;
  let out = path.join(PROJECT_ROOT, 'docs', 'benchmarks.md');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') mode = QUICK;
    else if (arg === '--full') mode = FULL;
    else if (arg === '--no-peer') peer = false;
    else if (arg === '--no-ceiling') ceiling = false;
    else if (arg === '--client') {
      const value = argv[++i];
      if (value !== 'raw' && value !== 'http') throw new Error('--client must be raw or http');
      transport = value;
    }
    else if (arg === '--no-write') write = false;
    else if (arg === '--concurrency') concurrency = Number(argv[++i]);
    else if (arg === '--out') out = path.resolve(argv[++i] ?? '');
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: node bench/run.ts [--quick|--full] [--concurrency N] [--client raw|http] [--no-peer] [--no-ceiling] [--no-write] [--out FILE]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (see --help)`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new Error('--concurrency must be an integer in 1..256');
  return { mode, concurrency, transport, ceiling, peer, write, out };
}

// ---------------------------------------------------------------------------
// Results of one run

interface Results {
  started: Date;
  durationMs: number;
  mode: Mode;
  concurrency: number;
  transport: Transport;
  peerAvailable: boolean;
  groveRssAtStart: number;
  busyBeforePercent: number;
  peerMessage: string;
  peerFcgiChildren: number;
  machine: Record<string, string>;
  repo: GeneratedRepo | null;
  initialPushMs: number | null;
  mirrorMs: number | null;
  layoutInitial: Map<string, RepoLayout>;
  layoutPrepared: Map<string, RepoLayout>;
  load: Map<string, LoadResult>;
  rss: Map<string, RssResult>;
  clone: Map<string, CloneTimes> | null;
  agents: Map<string, PushFleetResult>;
  storm: Map<string, StormResult>;
  api: ApiResult | null;
  problems: string[];
  groveLogTail: string;
  groveExit: string;
}

interface RssResult extends RssStats {
  readonly load: LoadResult;
}

const key = (side: string, what: string): string => `${side}:${what}`;

async function stage<T>(results: Results, name: string, fn: () => Promise<T>): Promise<T | null> {
  log(`== ${name}`);
  const started = performance.now();
  try {
    const value = await fn();
    log(`   ${name}: done in ${fmtMs(performance.now() - started)}`);
    return value;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    results.problems.push(`${name}: ${message.split('\n').slice(0, 6).join(' / ')}`);
    log(`   ${name}: FAILED: ${message}`);
    return null;
  }
}

// ---------------------------------------------------------------------------
// Machine

async function machineInfo(tmp: string, peer: PeerServer | null): Promise<Record<string, string>> {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const nproc = (await run('nproc', [], { timeoutMs: 5000 }).catch(() => null))?.stdout.trim() || String(os.availableParallelism());
  const gitVersion = (await run('git', ['--version'], { timeoutMs: 5000 })).stdout.trim();
  const debian = existsSync('/etc/debian_version') ? `Debian ${readFileSync('/etc/debian_version', 'utf8').trim()}` : os.type();
  const df = await run('df', ['-PT', tmp], { timeoutMs: 5000 }).catch(() => null);
  const fs = df?.stdout.trim().split('\n')[1]?.split(/\s+/)[1] ?? 'unknown';
  const head = (await run('git', ['-C', PROJECT_ROOT, 'rev-parse', '--short', 'HEAD'], { timeoutMs: 10_000 }).catch(() => null))?.stdout.trim() ?? '';
  const dirty = (await run('git', ['-C', PROJECT_ROOT, 'status', '--porcelain', '--', 'packages', 'bin'], { timeoutMs: 30_000 }).catch(() => null))?.stdout.trim() ?? '';
  return {
    'Grove under test': head ? `commit ${head}${dirty ? ' with uncommitted changes in packages/ or bin/' : ''}` : 'unknown (not a git checkout)',
    'nproc': nproc,
    'memory': fmtBytes(os.totalmem()),
    'CPU': model,
    'OS': `${debian}, Linux ${os.release()}`,
    'git': gitVersion,
    'node': process.version,
    'nginx': peer?.nginxVersion ?? 'not used',
    'temp dir filesystem': `${fs} (${os.tmpdir()})`,
  };
}

/** How busy the whole machine is over `ms`, in percent of all cores (from /proc/stat). */
async function machineBusyPercent(ms: number): Promise<number> {
  const read = (): [number, number] => {
    const f = readFileSync('/proc/stat', 'latin1').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return [total - (f[3] ?? 0) - (f[4] ?? 0), total];
  };
  try {
    const [b0, t0] = read();
    await sleep(ms);
    const [b1, t1] = read();
    return t1 > t0 ? ((b1 - b0) / (t1 - t0)) * 100 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

// ---------------------------------------------------------------------------
// The run

async function main(options: Options): Promise<Results> {
  const mode = options.mode;
  const results: Results = {
    started: new Date(),
    durationMs: 0,
    mode,
    concurrency: options.concurrency,
    transport: options.transport,
    peerAvailable: false,
    groveRssAtStart: 0,
    busyBeforePercent: Number.NaN,
    peerMessage: options.peer ? '' : 'disabled with --no-peer',
    peerFcgiChildren: 0,
    machine: {},
    repo: null,
    initialPushMs: null,
    mirrorMs: null,
    layoutInitial: new Map(),
    layoutPrepared: new Map(),
    load: new Map(),
    rss: new Map(),
    clone: null,
    agents: new Map(),
    storm: new Map(),
    api: null,
    problems: [],
    groveLogTail: '',
    groveExit: '',
  };
  const t0 = performance.now();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'grove-bench-'));
  trackTempDir(tmp);
  const home = path.join(tmp, 'home');
  await mkdir(home);
  setGitHome(home);
  log(`mode ${mode.name}, concurrency ${options.concurrency}, client ${options.transport}, temp dir ${tmp}`);
  // Wait (bounded) for the machine to be quiet: other work on 2 cores skews every figure.
  results.busyBeforePercent = await machineBusyPercent(1000);
  for (let i = 0; i < 60 && results.busyBeforePercent > 20; i++) {
    if (i === 0) log(`the machine is ${results.busyBeforePercent.toFixed(0)}% busy: waiting up to 60 s for it to be quiet`);
    results.busyBeforePercent = await machineBusyPercent(1000);
  }
  if (results.busyBeforePercent > 20) log(`WARNING: the machine is still ${results.busyBeforePercent.toFixed(0)}% busy before the run; figures will be perturbed`);

  // The peer's binaries (installed when missing and root).
  let httpBackend = '';
  if (options.peer) {
    const availability = await ensurePeer();
    results.peerAvailable = availability.ok;
    results.peerMessage = availability.message;
    httpBackend = availability.httpBackend;
    if (!availability.ok) log(`PEER UNAVAILABLE: ${availability.message}. Running Grove alone; ratios will be missing.`);
  }

  // 1. The workload repository.
  const repo = await stage(results, `generate ${mode.commits} commits with git fast-import`, () => generateRepo(path.join(tmp, 'src.git'), { commits: mode.commits }));
  if (!repo) throw new Error(results.problems.join('\n'));
  results.repo = repo;
  log(`   ${repo.commits} commits (${repo.merges} merges), ${repo.branches} branches, ${repo.annotatedTags + repo.lightweightTags} tags, pack ${fmtBytes(repo.packBytes)}`);

  // 2. Grove, the repository through its API, the history pushed to it.
  const token = `grove_bench_${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const grove: GroveServer = await startGrove(PROJECT_ROOT, path.join(tmp, 'grove-data'), token);
  log(`grove listening on ${grove.url} (pid ${grove.pid})`);
  results.groveRssAtStart = rssBytes(grove.pid);
  const api = `${grove.url}/api/v1`;
  const headers = { ...grove.authHeaders, Accept: 'application/json' };
  const orgAnswer = await httpRequest(undefined, `${api}/orgs`, { method: 'POST', headers, body: JSON.stringify({ name: 'bench' }) });
  if (orgAnswer.status !== 201) throw new Error(`create org: HTTP ${orgAnswer.status} ${orgAnswer.body}`);
  const repoAnswer = await httpRequest(undefined, `${api}/orgs/bench/repos`, { method: 'POST', headers, body: JSON.stringify({ name: 'app', defaultBranch: 'main' }) });
  if (repoAnswer.status !== 201) throw new Error(`create repo: HTTP ${repoAnswer.status} ${repoAnswer.body}`);
  const repoId = (JSON.parse(repoAnswer.body) as { id: string }).id;
  const groveRepoDir = await grove.repoDir(repoId);
  const groveAuth = ['-c', `http.extraHeader=Authorization: Bearer ${token}`];
  const groveSide: Side = {
    name: 'grove',
    label: 'Grove',
    repoUrl: `${grove.url}/bench/app.git`,
    gitAuth: groveAuth,
    headers: grove.authHeaders,
    repoDir: groveRepoDir,
    rootPids: [grove.pid],
    busyChildren: () => processTree([grove.pid]).length - 1,
    async waitIdle(maxMs = 30_000) {
      // Idle = no child process (git work, maintenance included) for 3 samples in a row.
      const deadline = Date.now() + maxMs;
      let quiet = 0;
      while (Date.now() < deadline && quiet < 3) {
        quiet = processTree([grove.pid]).length <= 1 ? quiet + 1 : 0;
        await sleep(100);
      }
    },
  };
  const pushStart = performance.now();
  await gitOk([...groveAuth, 'push', '-q', groveSide.repoUrl, 'refs/heads/*:refs/heads/*', 'refs/tags/*:refs/tags/*'], { cwd: repo.dir, timeoutMs: 600_000 });
  results.initialPushMs = performance.now() - pushStart;
  log(`   pushed the history to Grove in ${fmtMs(results.initialPushMs)}`);

  // 3. The peer, serving a mirror of the same repository.
  let peer: PeerServer | null = null;
  let peerSide: Side | null = null;
  if (results.peerAvailable) {
    const fcgiChildren = Math.max(32, options.concurrency * 2, mode.agentConcurrency * 2);
    results.peerFcgiChildren = fcgiChildren;
    peer = await stage(results, 'start nginx + fcgiwrap + git http-backend', () => startPeer(path.join(tmp, 'peer'), path.join(tmp, 'peer', 'root'), httpBackend, fcgiChildren));
    if (peer) {
      const peerRepoDir = path.join(peer.projectRoot, 'bench', 'app.git');
      const mirrorStart = performance.now();
      await gitOk([...groveAuth, 'clone', '-q', '--mirror', groveSide.repoUrl, peerRepoDir], { timeoutMs: 600_000 });
      results.mirrorMs = performance.now() - mirrorStart;
      await gitOk(['config', '--remove-section', 'remote.origin'], { cwd: peerRepoDir });
      // Same durability and validation as Grove's repositories; stock gc behaviour otherwise.
      for (const [k, v] of [
        ['http.receivepack', 'true'],
        ['core.fsync', 'committed,reference'],
        ['core.fsyncMethod', 'fsync'],
        ['receive.fsckObjects', 'true'],
        ['pack.writeReverseIndex', 'true'],
      ] as const) {
        await gitOk(['config', k, v], { cwd: peerRepoDir });
      }
      const peerPids = [peer.nginxPid, peer.fcgiwrapPid];
      peerSide = {
        name: 'peer',
        label: 'peer',
        repoUrl: `${peer.url}/bench/app.git`,
        gitAuth: [],
        headers: {},
        repoDir: peerRepoDir,
        rootPids: peerPids,
        busyChildren: () => (existsSync(path.join(peerRepoDir, 'gc.pid')) ? 1 : 0),
        async waitIdle(maxMs = 60_000) {
          const deadline = Date.now() + maxMs;
          while (Date.now() < deadline && existsSync(path.join(peerRepoDir, 'gc.pid'))) await sleep(200);
        },
      };
      // Both must advertise exactly the same refs.
      const [a, b] = await Promise.all([
        gitOk([...groveAuth, 'ls-remote', groveSide.repoUrl], { timeoutMs: 60_000 }),
        gitOk(['ls-remote', peerSide.repoUrl], { timeoutMs: 60_000 }),
      ]);
      if (a.stdout !== b.stdout) results.problems.push('Grove and the peer advertise different refs after the mirror (ls-remote differs)');
      else log(`   peer serves the same ${a.stdout.trim().split('\n').length} refs (ls-remote identical)`);
    } else {
      results.peerAvailable = false;
      results.peerMessage = `the peer failed to start: ${results.problems.at(-1) ?? ''}`;
    }
  }
  results.machine = await machineInfo(tmp, peer);
  const sides: Side[] = peerSide ? [groveSide, peerSide] : [groveSide];

  // 4. Identical on-disk layout on both sides before the read workloads.
  for (const side of sides) results.layoutInitial.set(side.name, await repoLayout(side.repoDir));
  await stage(results, 'repack both repositories (git repack -adb --write-midx)', async () => {
    for (const side of sides) await repack(side);
  });
  for (const side of sides) results.layoutPrepared.set(side.name, await repoLayout(side.repoDir));

  // 5. Protocol-level load, the servers alternating in rounds (so that other work on the
  //    machine, if any, hits both alike), then the client ceiling for the same bytes.
  for (const op of LOAD_OPS) {
    let sample: Buffer | null = null;
    const rounds = new Map<string, LoadResult[]>(sides.map((side) => [side.name, []]));
    const roundMs = (mode.loadSeconds[op] * 1000) / mode.loadRounds;
    await stage(results, `load ${op}: ${mode.loadRounds} rounds of ${(roundMs / 1000).toFixed(2)} s per server, ${options.concurrency} at once`, async () => {
      for (let round = 0; round < mode.loadRounds; round++) {
        const order = round % 2 === 0 ? sides : [...sides].reverse();
        for (const side of order) {
          const result = await runLoad(
            { repoUrl: side.repoUrl, headers: side.headers },
            {
              op,
              tip: repo.mainTip,
              requests: Math.ceil(mode.loadRequests[op] / mode.loadRounds),
              concurrency: options.concurrency,
              timeLimitMs: roundMs,
              // Warm-up (connections open, caches warm) in the first round only.
              warmup: round === 0 ? options.concurrency : 0,
              transport: options.transport,
              recordBody: side.name === 'grove' && round === 0,
              cpuRoots: side.rootPids,
            },
          );
          rounds.get(side.name)!.push(result);
        }
      }
    });
    for (const side of sides) {
      const parts = rounds.get(side.name)!;
      if (parts.length === 0) continue;
      const result = mergeLoads(parts);
      results.load.set(key(side.name, op), result);
      if (result.sampleBody) sample = result.sampleBody;
      const serverCpu = side.name === 'peer' ? `<= ${(result.machineCpuMsPerRequest - result.clientCpuMsPerRequest).toFixed(2)}` : result.serverCpuMsPerRequest.toFixed(2);
      const perRound = parts.map((p) => p.rps.toFixed(0)).join('/');
      log(`   ${side.label}: ${result.completed} ok, ${result.errors} errors, ${result.rps.toFixed(1)} req/s (rounds ${perRound}), p50 ${fmtMs(result.p50Ms)}, p95 ${fmtMs(result.p95Ms)}, server CPU ${serverCpu} ms/req, machine ${result.machineBusyPercent.toFixed(0)}% busy${result.firstError ? `; first error: ${result.firstError}` : ''}`);
      if (result.errors > 0) results.problems.push(`${side.label} ${op}: ${result.errors} failed requests (first: ${result.firstError})`);
    }
    if (options.ceiling && sample) {
      const body = sample;
      const ceiling = await stage(results, `client ceiling for ${op} (replaying Grove's response, <= 3 s)`, async () => {
        const file = path.join(tmp, `replay-${op}.bin`);
        await writeFile(file, body);
        const replay = await startReplay(PROJECT_ROOT, file, op === 'info-refs' ? 'application/x-git-upload-pack-advertisement' : 'application/x-git-upload-pack-result');
        try {
          return await runLoad(
            { repoUrl: `${replay.url}/bench/app.git`, headers: {} },
            { op, tip: repo.mainTip, requests: mode.loadRequests[op], concurrency: options.concurrency, timeLimitMs: 3000, transport: options.transport, cpuRoots: [replay.pid] },
          );
        } finally {
          await replay.stop();
        }
      });
      if (ceiling) {
        results.load.set(key('ceiling', op), ceiling);
        log(`   ceiling ${ceiling.rps.toFixed(1)} req/s (client CPU ${ceiling.clientCpuMsPerRequest.toFixed(2)} ms/req, replay server ${ceiling.serverCpuMsPerRequest.toFixed(2)} ms/req)`);
      }
    }
  }
  for (const op of ['shallow-fetch', 'full-fetch'] as const) {
    const g = results.load.get(key('grove', op))?.detail?.packObjects;
    const p = results.load.get(key('peer', op))?.detail?.packObjects;
    if (g != null && p != null && g !== p) results.problems.push(`${op}: Grove's pack has ${g} objects, the peer's ${p}`);
  }

  // 6. Server RSS during 200 concurrent clones (protocol client, full-clone fetch).
  for (const side of sides) {
    const rss = await stage(results, `RSS during ${mode.rssClones} concurrent full clones on ${side.label}`, async () => {
      await side.waitIdle();
      const sampler = new RssSampler(side.rootPids, 50);
      await sampler.start();
      let load: LoadResult;
      let stats: RssStats;
      try {
        load = await runLoad(
          { repoUrl: side.repoUrl, headers: side.headers },
          { op: 'full-fetch', tip: repo.mainTip, requests: mode.rssClones, concurrency: mode.rssClones, warmup: 0, timeLimitMs: 180_000, requestTimeoutMs: 180_000, transport: options.transport, cpuRoots: side.rootPids },
        );
      } finally {
        stats = await sampler.stop();
      }
      const result: RssResult = { ...stats, load };
      return result;
    });
    if (rss) {
      results.rss.set(side.name, rss);
      log(`   peak RSS ${fmtBytes(rss.peakServer)} (server processes), ${fmtBytes(rss.peakTree)} with git children; ${rss.load.completed} ok, ${rss.load.errors} errors in ${fmtMs(rss.load.elapsedMs)}`);
      if (rss.load.errors > 0) results.problems.push(`${side.label} ${mode.rssClones} concurrent clones: ${rss.load.errors} failed (first: ${rss.load.firstError})`);
    }
  }

  // 7. A single full clone with the git CLI, wall time.
  const workDir = path.join(tmp, 'work');
  await mkdir(workDir);
  results.clone = await stage(results, `git clone wall time (${mode.cloneSamples} per server, interleaved)`, () => cloneWallTimes(sides, workDir, mode.cloneSamples));
  for (const side of sides) {
    const c = results.clone?.get(side.name);
    if (c) log(`   ${side.label}: median ${fmtMs(c.medianMs)} (${c.samples.map((s) => fmtMs(s)).join(', ')})${c.failures ? `, ${c.failures} failed: ${c.firstError}` : ''}`);
    if (c && c.failures > 0) results.problems.push(`${side.label} git clone: ${c.failures} failed (${c.firstError})`);
  }

  // 8. 64 agents, each pushing a new branch, 16 at once.
  const pusher = path.join(tmp, 'pusher.git');
  await gitOk(['clone', '-q', '--bare', '--shared', repo.dir, pusher]);
  const agentCommits = (await appendChains(pusher, repo.mainTip, mode.agents, 1, 'agent/', 'agents/agent-')).map((chain) => chain[0]!);
  // In waves of `agentConcurrency`, the servers alternating wave by wave.
  await stage(results, `${mode.agents} agents pushing a new branch each (${mode.agentConcurrency} at once, servers alternating per wave)`, async () => {
    for (const side of sides) await side.waitIdle();
    const waves = new Map<string, PushFleetResult[]>(sides.map((side) => [side.name, []]));
    for (let start = 0, wave = 0; start < agentCommits.length; start += mode.agentConcurrency, wave++) {
      const items = agentCommits.slice(start, start + mode.agentConcurrency).map((commit, i) => ({ commit, ref: `refs/heads/agent/${start + i}` }));
      for (const side of wave % 2 === 0 ? sides : [...sides].reverse()) {
        waves.get(side.name)!.push(await pushFleet(side, pusher, items, mode.agentConcurrency, 300_000));
      }
    }
    for (const side of sides) {
      const r = mergeFleets(waves.get(side.name)!);
      results.agents.set(side.name, r);
      log(`   ${side.label}: p50 ${fmtMs(r.p50Ms)}, p95 ${fmtMs(r.p95Ms)}, ${r.failures} failed${r.firstError ? ` (first: ${r.firstError})` : ''}`);
      if (r.failures > 0) results.problems.push(`${side.label} agent pushes: ${r.failures} failed (first: ${r.firstError})`);
    }
  });

  // 9. Many small pushes, then fetch latency: after the pushes, and after a repack.
  const perLane = Math.ceil(mode.stormPushes / mode.stormLanes);
  const chains = await appendChains(pusher, repo.mainTip, mode.stormLanes, perLane, 'storm-', 'storm/lane-');
  for (const side of sides) {
    const r = await stage(results, `${perLane * mode.stormLanes} small pushes then git fetch on ${side.label}`, async () => {
      await side.waitIdle();
      return pushStormThenFetch(side, pusher, chains, 'storm-', workDir, mode.fetchSamples, mode.name === 'full' ? 1_800_000 : 600_000);
    });
    if (r) {
      results.storm.set(side.name, r);
      log(`   ${r.pushes} pushes in ${fmtMs(r.pushWallMs)} (p50 ${fmtMs(r.pushP50Ms)}, ${r.pushFailures} failed); layout: ${describeLayout(r.layoutAfterPushes)}`);
      log(`   fetch p50 right after the pushes ${fmtMs(median(r.afterPushesMs))} (server git children seen: ${r.busyChildrenAfterPushes}), once idle ${fmtMs(median(r.whenIdleMs))} (waited ${fmtMs(r.idleWaitMs)}; ${describeLayout(r.layoutWhenIdle)}), after repack ${fmtMs(median(r.afterRepackMs))} (repack took ${fmtMs(r.repackMs)})`);
      if (r.pushFailures > 0) results.problems.push(`${side.label} push storm: ${r.pushFailures} pushes failed (first: ${r.firstError})`);
      if (r.fetchFailures > 0) results.problems.push(`${side.label} push storm: ${r.fetchFailures} fetches failed`);
    }
  }

  // 10. Grove's API.
  results.api = await stage(results, `API: ${mode.creates} creates, an org of ${mode.orgRepos} repos, ${mode.lists} page lists`, () =>
    apiWorkloads(grove.url, grove.authHeaders, { creates: mode.creates, orgRepos: mode.orgRepos, concurrency: options.concurrency, lists: mode.lists, pageSize: 100, timeLimitMs: 600_000 }),
  );
  if (results.api?.firstError) results.problems.push(`API: ${results.api.firstError}`);

  // Stop the servers (cleanup() would too; stopping here lets us see how Grove exits).
  if (peer) await peer.stop();
  await grove.stop();
  results.groveExit = grove.child.exitCode !== null ? `exit ${grove.child.exitCode}` : `signal ${grove.child.signalCode}`;
  results.groveLogTail = grove.output().trim();
  if (grove.child.exitCode !== 0) results.problems.push(`Grove did not exit cleanly on SIGTERM (${results.groveExit})`);
  if (results.busyBeforePercent > 20) {
    results.problems.push(`the machine was ${results.busyBeforePercent.toFixed(0)}% busy with other work before the run started (waited up to 60 s for it to be quiet); every figure is perturbed`);
  }
  results.durationMs = performance.now() - t0;
  return results;
}

// ---------------------------------------------------------------------------
// The table

/** Which load op a table row shows (for the ceiling note). */
const ROW_OPS = new Map<string, LoadOp>();

function rows(r: Results): Row[] {
  const out: Row[] = [];
  const load = (side: string, op: LoadOp): LoadResult | undefined => r.load.get(key(side, op));
  const rps = (side: string, op: LoadOp): number | null => load(side, op)?.rps ?? null;
  const ratioAtLeast = (n: number) => (_row: Row, ratio: number | null) => (ratio === null ? null : ratio >= n);
  const ratioAtMost = (n: number) => (_row: Row, ratio: number | null) => (ratio === null ? null : ratio <= n);
  const c = r.concurrency;
  ROW_OPS.set(`ls-refs, req/s (c=${c})`, 'ls-refs');
  out.push({ workload: `ls-refs, req/s (c=${c})`, grove: rps('grove', 'ls-refs'), peer: rps('peer', 'ls-refs'), unit: 'req/s', better: 'higher', target: { text: '>= 10x', check: ratioAtLeast(10) } });
  ROW_OPS.set(`info/refs v2 advertisement, req/s (c=${c})`, 'info-refs');
  out.push({ workload: `info/refs v2 advertisement, req/s (c=${c})`, grove: rps('grove', 'info-refs'), peer: rps('peer', 'info-refs'), unit: 'req/s', better: 'higher', target: { text: '>= 10x', check: ratioAtLeast(10) } });
  ROW_OPS.set(`shallow clone (deepen 1) of one commit, req/s (c=${c})`, 'shallow-fetch');
  out.push({ workload: `shallow clone (deepen 1) of one commit, req/s (c=${c})`, grove: rps('grove', 'shallow-fetch'), peer: rps('peer', 'shallow-fetch'), unit: 'req/s', better: 'higher', target: { text: '>= 10x', check: ratioAtLeast(10) } });
  ROW_OPS.set(`full clone of one commit, req/s (c=${c})`, 'full-fetch');
  out.push({ workload: `full clone of one commit, req/s (c=${c})`, grove: rps('grove', 'full-fetch'), peer: rps('peer', 'full-fetch'), unit: 'req/s', better: 'higher', target: { text: '>= 5x', check: ratioAtLeast(5) } });

  const clone = (side: string): number | null => {
    const v = r.clone?.get(side);
    return v && v.samples.length > 0 ? v.medianMs : null;
  };
  out.push({ workload: `single full git clone, wall time (median of ${r.mode.cloneSamples})`, grove: clone('grove'), peer: clone('peer'), unit: 'ms', better: 'lower', target: { text: '<= 1.05x', check: ratioAtMost(1.05) } });

  const agents = (side: string): PushFleetResult | undefined => r.agents.get(side);
  const agentText = (side: string): string | undefined => {
    const a = agents(side);
    return a ? `${fmtMs(a.p50Ms)}, ${a.failures} failed` : undefined;
  };
  const g = agents('grove');
  const gText = agentText('grove');
  const pText = agentText('peer');
  out.push({
    workload: `${r.mode.agents} agents push a new branch (git CLI, ${r.mode.agentConcurrency} at once): p50`,
    grove: g ? g.p50Ms : null,
    peer: agents('peer')?.p50Ms ?? null,
    unit: 'ms',
    better: 'lower',
    ...(gText ? { groveText: gText } : {}),
    ...(pText ? { peerText: pText } : {}),
    target: { text: '<= 1.0x, 0 failures', check: (_row, ratio) => (ratio === null || !g ? null : ratio <= 1.0 && g.failures === 0) },
  });
  out.push({ workload: `  same, p95`, grove: g?.p95Ms ?? null, peer: agents('peer')?.p95Ms ?? null, unit: 'ms', better: 'lower' });

  const storm = (side: string): StormResult | undefined => r.storm.get(side);
  const afterPushes = (side: string): number | null => {
    const s = storm(side);
    return s && s.afterPushesMs.length ? median(s.afterPushesMs) : null;
  };
  const afterRepack = (side: string): number | null => {
    const s = storm(side);
    return s && s.afterRepackMs.length ? median(s.afterRepackMs) : null;
  };
  const pushes = storm('grove')?.pushes ?? r.mode.stormPushes;
  const quickNote = r.mode.name === 'quick' ? ' (quick mode: not 2,000)' : '';
  out.push({ workload: `git fetch right after ${pushes} small pushes${quickNote}, p50`, grove: afterPushes('grove'), peer: afterPushes('peer'), unit: 'ms', better: 'lower' });
  const whenIdle = (side: string): number | null => {
    const s = storm(side);
    return s && s.whenIdleMs.length ? median(s.whenIdleMs) : null;
  };
  out.push({ workload: `  same, once the server is idle (its own maintenance done)`, grove: whenIdle('grove'), peer: whenIdle('peer'), unit: 'ms', better: 'lower' });
  out.push({ workload: `git fetch after repack -adb --write-midx, p50`, grove: afterRepack('grove'), peer: afterRepack('peer'), unit: 'ms', better: 'lower' });
  const own = (side: string): number | null => {
    const a = afterPushes(side);
    const b = afterRepack(side);
    return a !== null && b !== null && b > 0 ? a / b : null;
  };
  out.push({
    workload: `fetch right after pushes ÷ after repack (each server's own)`,
    grove: own('grove'),
    peer: own('peer'),
    unit: 'x',
    better: 'lower',
    noRatio: true,
    target: { text: '<= 1.5x (Grove)', check: (row) => (row.grove === null ? null : row.grove <= 1.5) },
  });

  const rss = (side: string): RssResult | undefined => r.rss.get(side);
  const mb = (bytes: number | undefined): number | null => (bytes === undefined ? null : bytes / 1024 ** 2);
  out.push({
    workload: `peak RSS during ${r.mode.rssClones} concurrent clones: server processes`,
    grove: mb(rss('grove')?.peakServer),
    peer: mb(rss('peer')?.peakServer),
    unit: 'MB',
    better: 'lower',
    target: { text: '<= 300 MB (Grove)', on: 'grove', check: (row) => (row.grove === null ? null : row.grove <= 300) },
  });
  out.push({ workload: `  same, with their git children (sum over the tree)`, grove: mb(rss('grove')?.peakTree), peer: mb(rss('peer')?.peakTree), unit: 'MB', better: 'lower' });

  const api = r.api;
  out.push({
    workload: `create repo via API, p50 (${api?.creates ?? r.mode.creates} creates, one at a time)`,
    grove: api ? api.createP50Ms : null,
    peer: null,
    peerText: '—',
    unit: 'ms',
    better: 'lower',
    noRatio: true,
    target: { text: '< 20 ms', check: (row) => (row.grove === null ? null : row.grove < 20) },
  });
  const orgNote = r.mode.name === 'quick' ? ' (quick mode: not 10,000)' : '';
  out.push({
    workload: `list a page (100) of an org with ${(api?.populated ?? r.mode.orgRepos).toLocaleString('en-US')} repos${orgNote}, p50`,
    grove: api ? api.listP50Ms : null,
    peer: null,
    peerText: '—',
    unit: 'ms',
    better: 'lower',
    noRatio: true,
    target: { text: '< 20 ms', check: (row) => (row.grove === null ? null : row.grove < 20) },
  });
  return out;
}

// ---------------------------------------------------------------------------
// docs/benchmarks.md

function details(r: Results): string {
  const lines: string[] = [];
  const sides = r.peerAvailable ? ['grove', 'peer'] : ['grove'];
  const label = (s: string): string => (s === 'grove' ? 'Grove' : 'peer');
  lines.push('### Protocol load (bench/load-client.ts)', '');
  lines.push(
    `Transport \`${r.transport}\`. "server CPU/req": CPU time of the server's processes per good response. For Grove`,
    "(and the replay server) it is exact: its node process plus its git children, which node waits for. fcgiwrap's",
    'workers do not account their CGI children, so for the peer it is the whole machine\'s CPU minus the client\'s,',
    'an upper bound that includes anything else running then. "machine busy" is the share of all cores in use',
    'during the run; "other work" the share used by neither the server nor the client (other processes on the',
    "machine: it should be near 0%). The ceiling rows replay Grove's recorded response from a trivial Node server",
    '(`bench/replay-server.ts`): the most this client can receive on this machine for that workload.',
    '',
  );
  lines.push('| workload | server | ok | errors | time | req/s | p50 | p95 | max | mean body | server CPU/req | client CPU/req | machine busy | other work | first response |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  const other = (l: LoadResult, s: string): string => {
    if (s === 'peer' || !Number.isFinite(l.totals.serverCpuMs)) return '—';
    const ms = Math.max(0, l.totals.machineBusyMs - l.totals.clientCpuMs - l.totals.serverCpuMs);
    return `${((ms / (l.elapsedMs * os.availableParallelism())) * 100).toFixed(0)}%`;
  };
  const cpu = (v: number, upper = false): string => (Number.isFinite(v) ? `${upper ? '≤ ' : ''}${v.toFixed(2)} ms` : '—');
  for (const op of LOAD_OPS) {
    for (const s of [...sides, 'ceiling']) {
      const l = r.load.get(key(s, op));
      const name = s === 'ceiling' ? 'client ceiling' : label(s);
      if (!l) {
        if (s !== 'ceiling') lines.push(`| ${op} | ${name} | — | — | — | — | — | — | — | — | — | — | — | — | failed |`);
        continue;
      }
      const d = l.detail;
      const what = !d ? '' : op === 'ls-refs' ? `${d.refs} refs` : op === 'info-refs' ? `${d.lines} lines` : `${d.packObjects ?? '?'} objects, ${fmtBytes(d.packBytes)} pack${d.shallowLines ? `, ${d.shallowLines} shallow line(s)` : ''}`;
      lines.push(
        `| ${op} | ${name} | ${l.completed} | ${l.errors} | ${(l.elapsedMs / 1000).toFixed(1)} s${l.hitTimeLimit ? ' (cap)' : ''} | ${l.rps.toFixed(1)} | ${fmtMs(l.p50Ms)} | ${fmtMs(l.p95Ms)} | ${fmtMs(l.maxMs)} | ${fmtBytes(l.meanBytes)} | ${s === 'peer' ? cpu(l.machineCpuMsPerRequest - l.clientCpuMsPerRequest, true) : cpu(l.serverCpuMsPerRequest)} | ${cpu(l.clientCpuMsPerRequest)} | ${l.machineBusyPercent.toFixed(0)}% | ${other(l, s)} | ${s === 'ceiling' ? '' : what} |`,
      );
    }
  }
  lines.push('');
  if (r.rss.size > 0) {
    lines.push(`### ${r.mode.rssClones} concurrent full clones (RSS sampled every 50 ms)`, '');
    lines.push('| server | before | peak, server processes | peak, with git children | git processes at peak | samples | clones ok | errors | wall time | p50 | p95 |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const s of sides) {
      const x = r.rss.get(s);
      if (!x) continue;
      lines.push(`| ${label(s)} | ${fmtBytes(x.baselineServer)} | ${fmtBytes(x.peakServer)} | ${fmtBytes(x.peakTree)} | ${x.peakGitProcesses} | ${x.samples} | ${x.load.completed} | ${x.load.errors} | ${fmtMs(x.load.elapsedMs)} | ${fmtMs(x.load.p50Ms)} | ${fmtMs(x.load.p95Ms)} |`);
    }
    lines.push('', `Grove's RSS right after it started (before any workload): ${fmtBytes(r.groveRssAtStart)}.`, '');
  }
  if (r.clone) {
    lines.push('### git CLI', '');
    for (const s of sides) {
      const c = r.clone.get(s);
      if (c) lines.push(`- \`git clone\` on ${label(s)}: ${c.samples.map((x) => fmtMs(x)).join(', ')} (median ${fmtMs(c.medianMs)})${c.failures ? `; ${c.failures} failed: ${c.firstError}` : ''}`);
    }
    for (const s of sides) {
      const a = r.agents.get(s);
      if (a) lines.push(`- ${a.pushes} agent pushes on ${label(s)}, ${a.concurrency} at once: p50 ${fmtMs(a.p50Ms)}, p95 ${fmtMs(a.p95Ms)}, max ${fmtMs(a.maxMs)}, ${a.failures} failed, waves took ${fmtMs(a.wallMs)} in all${a.firstError ? ` (first error: ${a.firstError.replace(/\n/g, ' ')})` : ''}`);
    }
    for (const s of sides) {
      const x = r.storm.get(s);
      if (!x) continue;
      lines.push(
        `- push storm on ${label(s)}: ${x.pushes} pushes in ${fmtMs(x.pushWallMs)} (push p50 ${fmtMs(x.pushP50Ms)}, ${x.pushFailures} failed); ` +
          `repository right after the pushes: ${describeLayout(x.layoutAfterPushes)}; \`git fetch\` ${x.afterPushesMs.map((v) => fmtMs(v)).join(', ')} (most server git children running at a sample start: ${x.busyChildrenAfterPushes}); ` +
          `idle after ${fmtMs(x.idleWaitMs)}: ${describeLayout(x.layoutWhenIdle)}; \`git fetch\` ${x.whenIdleMs.map((v) => fmtMs(v)).join(', ')}; ` +
          `repack took ${fmtMs(x.repackMs)}, then: ${describeLayout(x.layoutAfterRepack)}; \`git fetch\` ${x.afterRepackMs.map((v) => fmtMs(v)).join(', ')}`,
      );
    }
    lines.push('');
  }
  if (r.api) {
    const a = r.api;
    lines.push('### API', '');
    lines.push(`- create repo, one at a time: ${a.creates} ok, ${a.createFailures} failed, p50 ${fmtMs(a.createP50Ms)}, p95 ${fmtMs(a.createP95Ms)}`);
    lines.push(`- populating the listed org: ${a.populated} repos created ${a.populateConcurrency} at once in ${fmtMs(a.populateWallMs)} (create p50 at that concurrency ${fmtMs(a.populateP50Ms)}, ${a.populateFailures} failed)`);
    lines.push(`- list a page of ${a.pageSize}, one request at a time, walking the cursor: ${a.lists} ok, ${a.listFailures} failed, p50 ${fmtMs(a.listP50Ms)}, p95 ${fmtMs(a.listP95Ms)}`);
    lines.push('');
  }
  lines.push('### Repositories', '');
  if (r.repo) {
    const g = r.repo;
    lines.push(`- generated: ${g.commits} commits (${g.merges} merge commits), ${g.branches} branches, ${g.annotatedTags} annotated + ${g.lightweightTags} lightweight tags, ${g.textFiles} text files, ${g.binaryFiles} binary files (${g.binaryBlobs} binary versions); fast-import stream ${fmtBytes(g.streamBytes)}, packed ${fmtBytes(g.packBytes)}`);
  }
  if (r.initialPushMs !== null) lines.push(`- initial push of the whole history to Grove: ${fmtMs(r.initialPushMs)}; mirror clone from Grove to the peer: ${r.mirrorMs !== null ? fmtMs(r.mirrorMs) : '—'}`);
  for (const s of sides) {
    const a = r.layoutInitial.get(s);
    const b = r.layoutPrepared.get(s);
    if (a && b) lines.push(`- ${label(s)}'s repository as received: ${describeLayout(a)}; after the preparatory repack: ${describeLayout(b)}`);
  }
  lines.push('');
  return lines.join('\n');
}

const METHOD = (r: Results): string => `## Method

One run starts both servers on 127.0.0.1 on this machine and measures them one after the
other on the same repository content; the harness runs nothing else meanwhile (other work
on the machine is not under its control: it waits up to 60 s for the machine to be quiet
and reports how busy it was). All traffic stays on
the loopback interface, every loop is bounded in count and time, and everything started
is stopped (and the temp dir removed) at the end, also on failure.

- **Workload repository.** Generated by a Node-written \`git fast-import\` stream
  (\`bench/workload.ts\`): ${r.mode.commits.toLocaleString('en-US')} commits on \`main\` and feature branches
  (200 text files edited a few lines per commit, a feature branch of 3 commits every 25
  steps merged back with a real merge commit 12 steps later, a release branch every 100
  steps, a tag every 20 steps, alternately annotated and lightweight, 6 binary files of
  32–160 KiB replaced with fresh random bytes every 150 steps), deterministic (fixed seed).
- **Grove** runs as a child process, \`node bin/grove.js serve --data <tmp> --listen
  127.0.0.1:<port>\` with \`GROVE_ADMIN_TOKEN\` set and \`GROVE_LOG_LEVEL=error\`, default
  limits. The repository \`bench/app\` is created through the API and the history pushed
  to it with \`git push\` (all branches and tags).
- **The peer** is \`git http-backend\` (${r.machine.git ?? 'git'}) behind nginx
  (${r.machine.nginx ?? '?'}, ${os.availableParallelism()} workers, keep-alive, \`fastcgi_buffering off\`)
  and fcgiwrap (\`fcgiwrap -c ${r.peerFcgiChildren || 32} -s unix:<sock>\`: ${r.peerFcgiChildren || 32} preforked
  workers, so it never serialises requests below that concurrency), run as the current
  user from a generated config in the temp dir, \`GIT_PROJECT_ROOT\`, \`GIT_HTTP_EXPORT_ALL\`,
  \`GIT_PROTOCOL\` passed from the \`Git-Protocol\` header, no authentication. Its repository
  is \`git clone --mirror\` of Grove's, with \`http.receivepack=true\` and Grove's durability
  and validation settings (\`core.fsync=committed,reference\`, \`core.fsyncMethod=fsync\`,
  \`receive.fsckObjects=true\`, \`pack.writeReverseIndex=true\`); its gc settings are git's
  defaults (\`receive.autogc\`, \`gc.auto=6700\`). Both servers advertise identical refs
  (checked with \`git ls-remote\`).
- **Same layout.** Before the read workloads, both repositories get the same
  \`git repack -adb --write-midx\` (one pack, bitmap, multi-pack-index), so the two
  servers read identical packs and the figures compare the servers, not the layout.
- **Protocol load** (\`bench/load-client.ts\`): a client that speaks protocol v2 itself
  over keep-alive HTTP/1.1, ${r.concurrency} connections, each carrying one request at a time
  (concurrency ${r.concurrency}). Transport \`${r.transport}\`${r.transport === 'raw' ? ': net sockets reading into one reused buffer, with a minimal HTTP/1.1 response parser (\`--client http\` uses a node:http keep-alive Agent with maxSockets = concurrency instead; on this 2-core machine it costs the client about six times more CPU per byte, which caps what any server can show)' : ': node:http with a keep-alive Agent, maxSockets = concurrency'}. Each
  workload first sends ${r.concurrency} unmeasured requests to each server (connections open, caches
  warm), then keeps ${r.concurrency} requests in flight for ${Object.values(r.mode.loadSeconds).join('/')} s per server, split
  into ${r.mode.loadRounds} rounds in which the servers alternate (Grove, peer, peer, Grove, …), so that any
  other work on the machine weighs on both alike; the rounds are summed. Every response is read to the end and validated
  (HTTP 200 and content type, pkt-line framing, final flush, sections, \`PACK\` header in
  side-band 1, no side-band 3 error); req/s = good responses ÷ wall time. After each
  workload, the same client runs for 3 s against a trivial server replaying Grove's
  recorded response (the client ceiling, in the details). The requests are
  framed as git 2.39 frames them:
  - \`ls-refs\`: POST \`git-upload-pack\` with \`command=ls-refs\`, \`agent\`, \`object-format=sha1\`,
    delim, \`peel\`, \`symrefs\`, \`unborn\`, \`ref-prefix HEAD\`, \`ref-prefix refs/heads/\`,
    \`ref-prefix refs/tags/\`, flush (what \`git clone\` sends);
  - info/refs: GET \`info/refs?service=git-upload-pack\` with \`Git-Protocol: version=2\`;
  - shallow clone: POST \`command=fetch\`, delim, \`ofs-delta\`, \`no-progress\`, \`deepen 1\`,
    \`want <main tip>\`, \`done\`, flush;
  - full clone of one commit: the same without \`deepen\` (the whole history of \`main\`).
- **Server RSS during ${r.mode.rssClones} concurrent clones**: the protocol client sends ${r.mode.rssClones} full-clone fetches
  at once (${r.mode.rssClones} connections); \`VmRSS\` from \`/proc/<pid>/status\` is sampled every 50 ms.
  "Server processes" is Grove's node process, or nginx + fcgiwrap (all processes of the
  tree that are not git); "with git children" adds every git process under them
  (summed, so pages shared between processes count more than once).
- **Single full clone**: \`git clone\` (with checkout) of the repository, ${r.mode.cloneSamples} times per server,
  the servers alternating; the median wall time of the git process.
- **${r.mode.agents} agents**: ${r.mode.agents} commits made beforehand (one per agent, each on top of \`main\` adding
  its own file), then ${r.mode.agents} \`git push <url> <commit>:refs/heads/agent/<i>\` processes,
  ${r.mode.agentConcurrency} running at once, in waves of ${r.mode.agentConcurrency} with the servers alternating wave by wave;
  latency of each push process, failures = non-zero exits.
- **Fetch after small pushes vs. freshly repacked**: ${r.mode.stormPushes.toLocaleString('en-US')} tiny commits in ${r.mode.stormLanes} chains
  (one file changed each) are pushed one \`git push\` each, the ${r.mode.stormLanes} branches in parallel and
  each branch in order${r.mode.name === 'quick' ? ' (quick mode pushes 300, not 2,000; `--full` pushes 2,000)' : ''}. Before the very last push a clone is made; then
  \`git fetch origin\` into fresh copies of that clone (up to date minus one push) is timed
  ${r.mode.fetchSamples} times right after that last push ("right after"; Grove may be running its own
  maintenance then, and the number of git children it had running is in the details). Then
  the harness waits (at most 120 s) for the server to have no git child (Grove) or no
  \`gc.pid\` (the peer) and times the fetch again ("once idle"). Then \`git repack -adb
  --write-midx\` runs on the repository directory and the fetch is timed a third time
  ("after repack"). The target compares each server with itself: right after the pushes
  ÷ after the repack.
- **API** (Grove only): ${r.mode.creates} \`POST /api/v1/orgs/{org}/repos\` one after the other (p50);
  then an org is filled with ${r.mode.orgRepos.toLocaleString('en-US')} repositories through the API (${r.concurrency} at once)${r.mode.name === 'quick' ? ' — quick mode uses 2,000, not 10,000; `--full` uses 10,000 —' : ''}
  and ${r.mode.lists} \`GET /api/v1/orgs/{org}/repos?limit=100\` requests walk its pages by cursor,
  one at a time (p50).
- **Ratios** are Grove ÷ peer of the figure in the row, so for throughput rows > 1 means
  Grove is better and for latency, time and memory rows < 1 means Grove is better (the
  "better is" column). Absolute numbers depend on this machine; the ratios are the
  figures.
`;

function markdown(r: Results, table: Row[]): string {
  const notMet = table.filter((row) => verdict(row) === 'not met' || verdict(row) === 'not measured');
  const when = r.started.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  const out: string[] = [];
  out.push('# Benchmarks', '');
  out.push(
    `Generated by \`npm run bench\` (\`node bench/run.ts --${r.mode.name}\`) on ${when}; the run took ${fmtMs(r.durationMs)}.`,
    'This file is rewritten by every run that is not given `--no-write`. Grove is compared with',
    '`git http-backend` behind nginx + fcgiwrap, side by side in the same run on the same',
    'repositories; the targets are those of issue 5.',
    '',
  );
  if (!r.peerAvailable) out.push(`**The peer was not measured: ${r.peerMessage}.** Ratios are missing.`, '');
  out.push('## Results', '');
  out.push(markdownTable(table, r.peerAvailable), '');
  out.push('## Targets not met', '');
  if (notMet.length === 0) out.push('None: every target of issue 5 is met in this run.', '');
  else {
    for (const row of notMet) {
      const ratio = ratioOf(row);
      const measured = row.noRatio || row.target?.on === 'grove' ? `Grove ${row.groveText ?? (row.grove === null ? 'n/a' : row.unit === 'x' ? `${row.grove.toFixed(2)}x` : `${row.grove.toFixed(1)} ${row.unit}`)}` : `ratio ${ratio === null ? 'n/a' : `${ratio.toFixed(2)}x`}`;
      const op = ROW_OPS.get(row.workload);
      const ceiling = op ? r.load.get(key('ceiling', op)) : undefined;
      const bound = ceiling && row.grove !== null && ceiling.rps > 0 ? row.grove / ceiling.rps : null;
      let note = bound !== null ? ` Grove reached ${(bound * 100).toFixed(0)}% of the client ceiling (${ceiling!.rps.toFixed(0)} req/s)${bound >= 0.7 ? ', so this figure is limited by the harness sharing the machine, and the ratio is a lower bound' : ''}.` : '';
      const peerLoad = op ? r.load.get(key('peer', op)) : undefined;
      const needed = /^>= (\d+(?:\.\d+)?)x/.exec(row.target?.text ?? '');
      if (ceiling && peerLoad && peerLoad.rps > 0 && needed) {
        const most = ceiling.rps / peerLoad.rps;
        if (most < Number(needed[1])) note += ` Even a server that cost nothing could show at most ${most.toFixed(1)}x here (client ceiling ÷ peer), so this target cannot be shown on this machine with this client.`;
      }
      out.push(`- ${row.workload.trim()}: ${verdict(row)}; target ${row.target?.text}, measured ${measured}.${note}`);
    }
    out.push('');
  }
  const busiest = [...r.load.values()].reduce((m, l) => Math.max(m, l.machineBusyPercent), 0);
  if (r.problems.length > 0) {
    out.push('## Problems seen during the run', '');
    for (const p of r.problems) out.push(`- ${p.replace(/\n/g, ' ')}`);
    out.push('');
  }
  if (r.groveLogTail) {
    const tail = r.groveLogTail.split('\n').slice(-15).map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l));
    out.push("## Grove's log during the run (level error)", '', 'Its last lines (Grove ran with `GROVE_LOG_LEVEL=error`, so anything here is an error it logged):', '', '```', ...tail, '```', '');
  }
  out.push('## Machine', '');
  for (const [k, v] of Object.entries(r.machine)) out.push(`- ${k}: ${v}`);
  out.push(`- machine busy before the run (1 s sample, all cores): ${Number.isFinite(r.busyBeforePercent) ? `${r.busyBeforePercent.toFixed(0)}%` : 'n/a'}; busiest protocol-load run: ${busiest.toFixed(0)}%`);
  out.push(`- mode: ${r.mode.name}, concurrency ${r.concurrency}, load client transport ${r.transport}`);
  out.push('');
  out.push(METHOD(r));
  out.push('## Details', '');
  out.push(details(r));
  out.push('## Running it', '');
  out.push('```sh', 'npm run bench              # quick mode (the default): a few minutes on 2 cores', 'npm run bench -- --full    # 5,000 commits, 2,000 pushes, an org of 10,000 repos, longer load runs', 'node bench/run.ts --no-peer --no-write   # Grove alone, without touching this file', '```', '');
  out.push(
    'The harness needs git, and for the peer `/usr/sbin/nginx` and `/usr/sbin/fcgiwrap`',
    '(Debian packages `nginx` and `fcgiwrap`); when they are missing and it runs as root it',
    'installs them with `apt-get install -y nginx fcgiwrap`, otherwise it says so and measures',
    'Grove alone.',
    '',
  );
  return out.join('\n');
}

// ---------------------------------------------------------------------------

async function entry(): Promise<void> {
  let options: Options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
    return;
  }
  process.on('exit', cleanupSync);
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (interrupted) return;
      interrupted = true;
      log(`${signal}: stopping the servers and removing the temp dir`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  // A hard cap on the whole run, whatever happens.
  const cap = setTimeout(() => {
    log('the run exceeded its overall time cap; aborting');
    void cleanup().finally(() => process.exit(1));
  }, (options.mode.name === 'full' ? 150 : 30) * 60_000);
  cap.unref();

  try {
    const results = await main(options);
    const table = rows(results);
    process.stdout.write(`\nGrove vs git http-backend (nginx + fcgiwrap), ${results.mode.name} mode, ${fmtMs(results.durationMs)}\n\n`);
    process.stdout.write(textTable(table, results.peerAvailable) + '\n\n');
    if (!results.peerAvailable) process.stdout.write(`peer unavailable: ${results.peerMessage}\n`);
    if (results.problems.length > 0) process.stdout.write(`problems:\n${results.problems.map((p) => `  - ${p}`).join('\n')}\n`);
    if (results.groveLogTail) process.stdout.write(`Grove logged ${results.groveLogTail.split('\n').length} line(s) at level error (see docs/benchmarks.md)\n`);
    if (options.write) {
      await writeFile(options.out, markdown(results, table));
      log(`wrote ${path.relative(process.cwd(), options.out) || options.out}`);
    }
  } catch (error) {
    log(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

await entry();
