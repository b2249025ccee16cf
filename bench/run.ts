/**
 * `npm run bench` (`node bench/run.ts [--quick|--full]`): Grove against `git http-backend`
 * behind nginx + fcgiwrap, side by side in one run on the same repositories.
 *
 * It generates the workload repository with git fast-import, builds Grove's package and
 * starts it (child process) and the peer on 127.0.0.1, pushes the history to Grove and
 * mirrors it to the peer, then runs the stages (modes.ts): protocol-level load
 * (load-client.ts), memory under concurrent clones, git CLI clones, agent pushes and small
 * pushes (e2e.ts), the fleet run with latency probes (fleet.ts) and the API workloads. It
 * prints one table (rows.ts) and writes it with the method, the machine and the details to
 * docs/benchmarks.md (markdown.ts). Everything it starts is stopped and its temp dir removed,
 * also on failure or Ctrl-C; every loop is bounded in count and time.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { summarizeProfile } from './cpu-profile.ts';
import { apiWorkloads, cloneWallTimes, describeLayout, mergeFleets, pushFleet, pushStormThenFetch, repack, repoLayout, type PushFleetResult, type Side } from './e2e.ts';
import { runFairness } from './fairness.ts';
import { probesFor, probeWhile, runFleet } from './fleet.ts';
import { LOAD_OPS, mergeLoads, runLoad, type LoadResult } from './load-client.ts';
import { markdown } from './markdown.ts';
import { parseArgs, type Options } from './modes.ts';
import { textTable } from './report.ts';
import { emptyResults, key, stage, type Results, type RssResult } from './results.ts';
import { rows } from './rows.ts';
import { pushBreakdown, scrape } from './server-metrics.ts';
import { ensurePeer, startReplay, type PeerServer } from './servers.ts';
import { groveCommand, machineBusyPercent, machineInfo, setUpGrove, setUpPeer, type GroveSetup } from './sides.ts';
import { appendChains, generateRepo } from './workload.ts';
import { cleanup, cleanupSync, fmtBytes, fmtMs, gitOk, log, median, pssBytes, rssBytes, RssSampler, setGitHome, sleep, trackTempDir, type RssStats } from './util.ts';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function main(options: Options): Promise<Results> {
  const mode = options.mode;
  const command = await groveCommand(PROJECT_ROOT, options.source);
  const results = emptyResults(mode, options.concurrency, options.transport, options.source ? 'source' : 'package', options.peer ? '' : 'disabled with --no-peer');
  const wants = (name: Parameters<typeof options.stages.has>[0]) => options.stages.has(name);
  const t0 = performance.now();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'grove-bench-'));
  trackTempDir(tmp);
  const home = path.join(tmp, 'home');
  await mkdir(home);
  setGitHome(home);
  log(`mode ${mode.name}, stages ${[...options.stages].join(',')}, concurrency ${options.concurrency}, client ${options.transport}, Grove from ${command.label}, temp dir ${tmp}`);
  // Wait (bounded) for the machine to be quiet: other work on 2 cores skews every figure.
  results.busyBeforePercent = await machineBusyPercent(1000);
  for (let i = 0; i < 60 && results.busyBeforePercent > 20; i++) {
    if (i === 0) log(`the machine is ${results.busyBeforePercent.toFixed(0)}% busy: waiting up to 60 s for it to be quiet`);
    results.busyBeforePercent = await machineBusyPercent(1000);
  }
  if (results.busyBeforePercent > 20) log(`WARNING: the machine is still ${results.busyBeforePercent.toFixed(0)}% busy before the run; figures will be perturbed`);

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
  const profileDir = path.join(tmp, 'cpu-profile');
  const groveEnv: Record<string, string> = options.cpuProfile ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profileDir}` } : {};
  // BENCH_GROVE_X=v runs Grove with GROVE_X=v (the harness gives Grove no GROVE_* of its own environment).
  for (const [name, value] of Object.entries(process.env)) if (name.startsWith('BENCH_GROVE_') && value !== undefined) groveEnv[name.slice('BENCH_'.length)] = value;
  const grove: GroveSetup = await setUpGrove(PROJECT_ROOT, path.join(tmp, 'grove-data'), command, repo.dir, groveEnv);
  const groveSide = grove.side;
  results.initialPushMs = grove.initialPushMs;
  log(`grove listening on ${grove.server.url} (pid ${grove.server.pid}); pushed the history in ${fmtMs(grove.initialPushMs)}`);

  // 3. The peer, serving a mirror of the same repository.
  let peer: PeerServer | null = null;
  let peerSide: Side | null = null;
  if (results.peerAvailable) {
    const fcgiChildren = Math.max(32, options.concurrency * 2, mode.agentConcurrency * 2, mode.fleetConcurrency * 2);
    results.peerFcgiChildren = fcgiChildren;
    const set = await stage(results, 'start nginx + fcgiwrap + git http-backend, mirror the repository', () => setUpPeer(path.join(tmp, 'peer'), httpBackend, fcgiChildren, groveSide));
    if (set) {
      peer = set.server;
      peerSide = set.side;
      results.mirrorMs = set.mirrorMs;
      const [a, b] = await Promise.all([
        gitOk([...groveSide.gitAuth, 'ls-remote', groveSide.repoUrl], { timeoutMs: 60_000 }),
        gitOk(['ls-remote', peerSide.repoUrl], { timeoutMs: 60_000 }),
      ]);
      if (a.stdout !== b.stdout) results.problems.push('Grove and the peer advertise different refs after the mirror (ls-remote differs)');
      else log(`   peer serves the same ${a.stdout.trim().split('\n').length} refs (ls-remote identical)`);
    } else {
      results.peerAvailable = false;
      results.peerMessage = `the peer failed to start: ${results.problems.at(-1) ?? ''}`;
    }
  }
  results.machine = await machineInfo(PROJECT_ROOT, tmp, peer, command.label);
  const sides: Side[] = peerSide ? [groveSide, peerSide] : [groveSide];
  await groveSide.waitIdle();
  results.groveIdleRss = rssBytes(grove.server.pid);
  results.groveIdlePss = pssTree(grove.server.pid);

  // 4. Identical on-disk layout on both sides before the read workloads.
  for (const side of sides) results.layoutInitial.set(side.name, await repoLayout(side.repoDir));
  await stage(results, 'repack both repositories (git repack -adb --write-midx)', async () => {
    for (const side of sides) await repack(side);
  });
  for (const side of sides) results.layoutPrepared.set(side.name, await repoLayout(side.repoDir));

  if (wants('load')) await loadStage(results, options, sides, repo.mainTip, tmp);
  if (wants('rss')) await rssStage(results, options, sides, repo.mainTip);
  // The clients' checkouts stand for other machines' disks: on tmpfs when there is one, so the
  // servers' disk (the temp dir) does not also carry the clients' thousands of small files.
  const workDir = existsSync('/dev/shm') ? await mkdtemp('/dev/shm/grove-bench-clients-') : path.join(tmp, 'work');
  if (workDir.startsWith('/dev/shm')) trackTempDir(workDir);
  else await mkdir(workDir);
  results.clientDir = workDir.startsWith('/dev/shm') ? 'tmpfs (/dev/shm)' : 'the temp dir';
  if (wants('clone')) {
    results.clone = await stage(results, `git clone wall time (${mode.cloneSamples} per server, interleaved)`, () => cloneWallTimes(sides, workDir, mode.cloneSamples));
    for (const side of sides) {
      const c = results.clone?.get(side.name);
      if (c) log(`   ${side.label}: median ${fmtMs(c.medianMs)} (${c.samples.map((s) => fmtMs(s)).join(', ')})${c.failures ? `, ${c.failures} failed: ${c.firstError}` : ''}`);
      if (c && c.failures > 0) results.problems.push(`${side.label} git clone: ${c.failures} failed (${c.firstError})`);
    }
  }

  const pusher = path.join(tmp, 'pusher.git');
  await gitOk(['clone', '-q', '--bare', '--shared', repo.dir, pusher]);
  /** Runs `work` while Grove's /metrics are read before and after: the push breakdown of the workload. */
  const measured = async <T>(workload: string, work: () => Promise<T>): Promise<T> => {
    const before = await scrape(grove.server.url);
    const value = await work();
    const breakdown = pushBreakdown(before, await scrape(grove.server.url));
    if (breakdown.pushes > 0) results.pushBreakdowns.set(workload, breakdown);
    return value;
  };

  if (wants('agents')) {
    const agentCommits = (await appendChains(pusher, repo.mainTip, mode.agents, 1, 'agent/', 'agents/agent-')).map((chain) => chain[0]!);
    await stage(results, `${mode.agents} agents pushing a new branch each (${mode.agentConcurrency} at once, servers alternating per wave)`, () => measured(`${mode.agents} agent pushes, ${mode.agentConcurrency} at once`, async () => {
      // Grove's metrics count only Grove's pushes: read around the whole alternating run.
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
        log(`   ${side.label}: p50 ${fmtMs(r.p50Ms)}, p95 ${fmtMs(r.p95Ms)}, ${r.failures} failed, server tree CPU ${fmtMs(r.serverCpuMs / Math.max(1, r.pushes))} per push${r.firstError ? ` (first: ${r.firstError})` : ''}`);
        if (r.failures > 0) results.problems.push(`${side.label} agent pushes: ${r.failures} failed (first: ${r.firstError})`);
      }
    }));
  }

  if (wants('storm')) {
    const perLane = Math.ceil(mode.stormPushes / mode.stormLanes);
    const chains = await appendChains(pusher, repo.mainTip, mode.stormLanes, perLane, 'storm-', 'storm/lane-');
    for (const side of sides) {
      const r = await stage(results, `${perLane * mode.stormLanes} small pushes then git fetch on ${side.label}`, async () => {
        await side.waitIdle();
        const run = () => pushStormThenFetch(side, pusher, chains, 'storm-', workDir, mode.fetchSamples, mode.name === 'full' ? 1_800_000 : 600_000);
        return side.name === 'grove' ? measured(`${perLane * mode.stormLanes} small pushes in ${mode.stormLanes} chains`, run) : run();
      });
      if (r) {
        results.storm.set(side.name, r);
        log(`   ${r.pushes} pushes in ${fmtMs(r.pushWallMs)} (p50 ${fmtMs(r.pushP50Ms)}, ${r.pushFailures} failed); layout: ${describeLayout(r.layoutAfterPushes)}`);
        log(`   fetch p50 right after the pushes ${fmtMs(median(r.afterPushesMs))}, once idle ${fmtMs(median(r.whenIdleMs))}, after repack ${fmtMs(median(r.afterRepackMs))}`);
        if (r.pushFailures > 0) results.problems.push(`${side.label} push storm: ${r.pushFailures} pushes failed (first: ${r.firstError})`);
        if (r.fetchFailures > 0) results.problems.push(`${side.label} push storm: ${r.fetchFailures} fetches failed`);
      }
    }
  }

  if (wants('fleet')) {
    for (const side of sides) {
      const r = await stage(results, `fleet on ${side.label}: ${mode.fleetAgents} agents, ${mode.fleetConcurrency} at once, clone + commit + push`, async () => {
        await side.waitIdle();
        const probes = probesFor(side, side.name === 'grove' ? grove.apiBase : null, 'main', 'README.md');
        const run = () => runFleet(side, workDir, mode.fleetAgents, mode.fleetConcurrency, 900_000, 'fleet/');
        const fleet = side.name === 'grove' ? measured(`fleet of ${mode.fleetAgents}, ${mode.fleetConcurrency} at once`, run) : run();
        const [result, probed] = await Promise.all([fleet, probeWhile(probes, fleet)]);
        results.probes.set(side.name, probed);
        return result;
      });
      if (r) {
        results.fleet.set(side.name, r);
        log(`   ${side.label}: end-to-end p50 ${fmtMs(r.endToEnd.p50Ms)}, p95 ${fmtMs(r.endToEnd.p95Ms)}, p99 ${fmtMs(r.endToEnd.p99Ms)}; clone p95 ${fmtMs(r.clone.p95Ms)}, push p95 ${fmtMs(r.push.p95Ms)}; ${r.failures} failed`);
        for (const p of results.probes.get(side.name) ?? []) log(`   meanwhile ${p.name}: p50 ${fmtMs(p.latency.p50Ms)}, p99 ${fmtMs(p.latency.p99Ms)} over ${p.latency.samples}, ${p.errors} errors`);
        if (r.failures > 0) results.problems.push(`${side.label} fleet: ${r.failures} agents failed (first: ${r.firstError})`);
      }
    }
  }

  if (wants('fairness')) {
    const commits = (await appendChains(pusher, repo.mainTip, mode.fairnessAgents, 1, 'fair/', 'fairness/agent-')).map((chain) => chain[0]!);
    const r = await stage(results, `fairness: ${mode.fairnessAgents / 2} agents push alone, then beside one key's ${mode.fairnessClones} concurrent clones (Grove)`, () =>
      runFairness(grove.side, `${grove.server.url}/api/v1`, grove.server.authHeaders, pusher, commits, repo.mainTip, mode.fairnessClones));
    if (r) {
      results.fairness = r;
      log(`   push p95 alone ${fmtMs(r.alone.p95Ms)}, beside the runaway ${fmtMs(r.withRunaway.p95Ms)} (${(r.withRunaway.p95Ms / r.alone.p95Ms).toFixed(2)}x); runaway: ${r.runaway.completed} clones done, ${r.runaway.errors} refused`);
      const failed = r.alone.failures + r.withRunaway.failures;
      if (failed > 0) results.problems.push(`fairness: ${failed} agent pushes failed (first: ${r.alone.firstError ?? r.withRunaway.firstError})`);
    }
  }

  if (wants('api')) {
    results.api = await stage(results, `API: ${mode.creates} creates, an org of ${mode.orgRepos} repos, ${mode.lists} page lists`, () =>
      apiWorkloads(grove.server.url, grove.server.authHeaders, { creates: mode.creates, orgRepos: mode.orgRepos, concurrency: options.concurrency, lists: mode.lists, pageSize: 100, timeLimitMs: 600_000 }),
    );
    if (results.api?.firstError) results.problems.push(`API: ${results.api.firstError}`);
  }

  // Stop the servers (cleanup() would too; stopping here lets us see how Grove exits).
  if (peer) await peer.stop();
  await grove.server.stop();
  results.groveExit = grove.server.child.exitCode !== null ? `exit ${grove.server.child.exitCode}` : `signal ${grove.server.child.signalCode}`;
  results.groveLogTail = grove.server.output().trim();
  if (grove.server.child.exitCode !== 0) results.problems.push(`Grove did not exit cleanly on SIGTERM (${results.groveExit})`);
  if (options.cpuProfile) {
    const files = (await readdir(profileDir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile'));
    // The biggest profile is Grove's own process (its launcher writes a small one too).
    const sized = await Promise.all(files.map(async (f) => ({ file: path.join(profileDir, f), size: (await stat(path.join(profileDir, f))).size })));
    const biggest = sized.sort((a, b) => b.size - a.size)[0];
    if (biggest) results.cpuProfile = await summarizeProfile(biggest.file, PROJECT_ROOT);
    else results.problems.push('--cpu-prof: Grove wrote no CPU profile');
  }
  if (results.busyBeforePercent > 20) {
    results.problems.push(`the machine was ${results.busyBeforePercent.toFixed(0)}% busy with other work before the run started (waited up to 60 s for it to be quiet); every figure is perturbed`);
  }
  results.durationMs = performance.now() - t0;
  return results;
}

/** PSS of a process and its non-git descendants (Grove and its launcher). */
function pssTree(pid: number): number {
  let total = pssBytes(pid);
  for (const child of childPids(pid)) total += pssBytes(child);
  return total;
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Protocol-level load, the servers alternating in rounds, then the client ceiling for the same bytes. */
async function loadStage(results: Results, options: Options, sides: readonly Side[], tip: string, tmp: string): Promise<void> {
  const mode = options.mode;
  for (const op of LOAD_OPS) {
    let sample: Buffer | null = null;
    const rounds = new Map<string, LoadResult[]>(sides.map((side) => [side.name, []]));
    const roundMs = (mode.loadSeconds[op] * 1000) / mode.loadRounds;
    await stage(results, `load ${op}: ${mode.loadRounds} rounds of ${(roundMs / 1000).toFixed(2)} s per server, ${options.concurrency} at once`, async () => {
      for (let round = 0; round < mode.loadRounds; round++) {
        for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
          rounds.get(side.name)!.push(await runLoad({ repoUrl: side.repoUrl, headers: side.headers }, {
            op,
            tip,
            requests: Math.ceil(mode.loadRequests[op] / mode.loadRounds),
            concurrency: options.concurrency,
            timeLimitMs: roundMs,
            warmup: round === 0 ? options.concurrency : 0,
            transport: options.transport,
            recordBody: side.name === 'grove' && round === 0,
            cpuRoots: side.rootPids,
          }));
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
      log(`   ${side.label}: ${result.completed} ok, ${result.errors} errors, ${result.rps.toFixed(1)} req/s (rounds ${parts.map((p) => p.rps.toFixed(0)).join('/')}), p50 ${fmtMs(result.p50Ms)}, p95 ${fmtMs(result.p95Ms)}, server CPU ${serverCpu} ms/req${result.firstError ? `; first error: ${result.firstError}` : ''}`);
      if (result.errors > 0) results.problems.push(`${side.label} ${op}: ${result.errors} failed requests (first: ${result.firstError})`);
    }
    if (options.ceiling && sample) {
      const body = sample;
      const ceiling = await stage(results, `client ceiling for ${op} (replaying Grove's response, <= 3 s)`, async () => {
        const file = path.join(tmp, `replay-${op}.bin`);
        await writeFile(file, body);
        const replay = await startReplay(PROJECT_ROOT, file, op === 'info-refs' ? 'application/x-git-upload-pack-advertisement' : 'application/x-git-upload-pack-result');
        try {
          return await runLoad({ repoUrl: `${replay.url}/bench/app.git`, headers: {} }, { op, tip, requests: mode.loadRequests[op], concurrency: options.concurrency, timeLimitMs: 3000, transport: options.transport, cpuRoots: [replay.pid] });
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
}

/** Memory while many full clones run at once: both servers at `rssClones`, Grove alone at `rssClonesGrove`. */
async function rssStage(results: Results, options: Options, sides: readonly Side[], tip: string): Promise<void> {
  const mode = options.mode;
  const runs: [Side, number, string][] = sides.map((side) => [side, mode.rssClones, side.name]);
  runs.push([sides[0]!, mode.rssClonesGrove, 'grove-many']);
  for (const [side, clones, name] of runs) {
    const rss = await stage(results, `memory during ${clones} concurrent full clones on ${side.label}`, async () => {
      await side.waitIdle();
      const sampler = new RssSampler(side.rootPids, 50);
      await sampler.start();
      let load: LoadResult;
      let stats: RssStats;
      try {
        load = await runLoad({ repoUrl: side.repoUrl, headers: side.headers }, { op: 'full-fetch', tip, requests: clones, concurrency: clones, warmup: 0, timeLimitMs: 300_000, requestTimeoutMs: 300_000, transport: options.transport, cpuRoots: side.rootPids });
      } finally {
        stats = await sampler.stop();
      }
      const result: RssResult = { ...stats, load };
      return result;
    });
    if (rss) {
      results.rss.set(name, rss);
      log(`   peak ${fmtBytes(rss.peakServer)} (server processes, PSS), ${fmtBytes(rss.peakTree)} with git children; ${rss.load.completed} ok, ${rss.load.errors} errors in ${fmtMs(rss.load.elapsedMs)}`);
      if (rss.load.errors > 0) results.problems.push(`${side.label} ${clones} concurrent clones: ${rss.load.errors} failed (first: ${rss.load.firstError})`);
    }
    await sleep(500);
  }
}

// ---------------------------------------------------------------------------

async function entry(): Promise<void> {
  let options: Options;
  try {
    options = parseArgs(process.argv.slice(2), PROJECT_ROOT);
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
  }, (options.mode.name === 'full' ? 150 : 40) * 60_000);
  cap.unref();

  try {
    const results = await main(options);
    const table = rows(results);
    process.stdout.write(`\nGrove vs git http-backend (nginx + fcgiwrap), ${results.mode.name} mode, ${fmtMs(results.durationMs)}\n\n`);
    process.stdout.write(textTable(table, results.peerAvailable) + '\n\n');
    if (!results.peerAvailable) process.stdout.write(`peer unavailable: ${results.peerMessage}\n`);
    if (results.problems.length > 0) process.stdout.write(`problems:\n${results.problems.map((p) => `  - ${p}`).join('\n')}\n`);
    if (results.groveLogTail) process.stdout.write(`Grove logged ${results.groveLogTail.split('\n').length} line(s) at level error (see docs/benchmarks.md)\n`);
    for (const [workload, b] of results.pushBreakdowns) {
      process.stdout.write(`${workload}: ${fmtMs(b.meanMs)} per push on the server: ${Object.entries(b.phasesMs).map(([p, ms]) => `${p} ${fmtMs(ms)}`).join(', ')}; ${b.processes.map((p) => `${p.command} ${p.perPush.toFixed(2)}`).join(', ')} processes per push\n`);
    }
    if (results.cpuProfile) process.stdout.write(`CPU profile, top self time: ${results.cpuProfile.top.slice(0, 8).map((f) => `${f.name} ${(f.share * 100).toFixed(1)}%`).join(', ')}\n`);
    if (options.write) {
      await writeFile(options.out, markdown(results, table));
      log(`wrote ${path.relative(process.cwd(), options.out) || options.out}`);
    } else if (options.stages.size < 7) {
      log('a partial run (--only) does not rewrite docs/benchmarks.md; pass --out FILE to write it somewhere');
    }
  } catch (error) {
    log(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

await entry();
