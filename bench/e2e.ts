/**
 * End-to-end workloads with the real git CLI, and Grove's API workloads.
 * Every loop is bounded in count and in time.
 */
import { cp, readdir, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { httpRequest } from './servers.ts';
import { git, gitOk, log, median, percentile, treeCpuMs } from './util.ts';

/** One server as the workloads see it. */
export interface Side {
  readonly name: 'grove' | 'peer';
  readonly label: string;
  /** http://127.0.0.1:PORT/bench/app.git */
  readonly repoUrl: string;
  /** `-c http.extraHeader=…` for Grove, nothing for the peer. */
  readonly gitAuth: readonly string[];
  readonly headers: Readonly<Record<string, string>>;
  /** The bare repository on disk. */
  readonly repoDir: string;
  /** Pids whose RSS is "the server" (Grove: its process; peer: nginx master and fcgiwrap). */
  readonly rootPids: readonly number[];
  /** Resolves when the server runs no git work (Grove: no child process; peer: no gc.pid). Bounded. */
  waitIdle(maxMs?: number): Promise<void>;
  /** Git work running now outside any request: Grove's child processes; the peer's gc (0 or 1). */
  busyChildren(): number;
}

export interface RepoLayout {
  readonly packs: number;
  readonly looseObjects: number;
  readonly bitmaps: number;
  readonly midx: boolean;
  readonly commitGraph: boolean;
  readonly packedRefs: boolean;
}

export async function repoLayout(dir: string): Promise<RepoLayout> {
  const packDir = path.join(dir, 'objects', 'pack');
  const files = await readdir(packDir).catch(() => [] as string[]);
  const counted = await git(['count-objects', '-v'], { cwd: dir, timeoutMs: 60_000 });
  const loose = /^count: (\d+)/m.exec(counted.stdout);
  const exists = (p: string): Promise<boolean> => stat(path.join(dir, p)).then(() => true, () => false);
  return {
    packs: files.filter((f) => f.endsWith('.pack')).length,
    looseObjects: loose ? Number(loose[1]) : -1,
    bitmaps: files.filter((f) => f.endsWith('.bitmap')).length,
    midx: files.includes('multi-pack-index'),
    commitGraph: (await exists('objects/info/commit-graph')) || (await exists('objects/info/commit-graphs')),
    packedRefs: await exists('packed-refs'),
  };
}

export function describeLayout(l: RepoLayout): string {
  return `${l.packs} pack${l.packs === 1 ? '' : 's'}, ${l.looseObjects} loose objects, ${l.bitmaps ? `${l.bitmaps} bitmap${l.bitmaps === 1 ? '' : 's'}` : 'no bitmap'}${l.midx ? ', multi-pack-index' : ''}${l.commitGraph ? ', commit-graph' : ''}${l.packedRefs ? ', packed-refs' : ''}`;
}

/** The repack the benchmark itself runs on both servers' repositories. */
export async function repack(side: Side): Promise<number> {
  await side.waitIdle();
  const started = performance.now();
  await gitOk(['repack', '-adbq', '--write-midx'], { cwd: side.repoDir, timeoutMs: 600_000 });
  return performance.now() - started;
}

// ---------------------------------------------------------------------------
// Single full clone, wall time

export interface CloneTimes {
  readonly samples: number[];
  readonly medianMs: number;
  readonly failures: number;
  readonly firstError: string | null;
}

/** `git clone` of the whole repository, `samples` times per side, sides interleaved. */
export async function cloneWallTimes(sides: readonly Side[], workDir: string, samples: number): Promise<Map<string, CloneTimes>> {
  const times = new Map<string, number[]>(sides.map((s) => [s.name, []]));
  const failures = new Map<string, { n: number; first: string | null }>(sides.map((s) => [s.name, { n: 0, first: null }]));
  for (let i = 0; i < samples; i++) {
    // Alternate which side goes first so drift (page cache, CPU boost) hits both alike.
    const order = i % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) {
      const dest = path.join(workDir, `clone-${side.name}-${i}`);
      const started = performance.now();
      const result = await git([...side.gitAuth, 'clone', '-q', side.repoUrl, dest], { timeoutMs: 300_000 });
      const ms = performance.now() - started;
      if (result.code === 0) times.get(side.name)!.push(ms);
      else {
        const f = failures.get(side.name)!;
        f.n++;
        f.first ??= result.stderr.trim().slice(-500);
      }
      await rm(dest, { recursive: true, force: true });
    }
  }
  return new Map(
    sides.map((s) => {
      const list = times.get(s.name)!;
      const f = failures.get(s.name)!;
      return [s.name, { samples: list, medianMs: median(list), failures: f.n, firstError: f.first }];
    }),
  );
}

// ---------------------------------------------------------------------------
// A fleet of agents, each pushing a new branch

export interface PushFleetResult {
  readonly pushes: number;
  readonly concurrency: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
  readonly failures: number;
  readonly firstError: string | null;
  readonly wallMs: number;
  readonly latencies: readonly number[];
  /** CPU time of the server's process tree (its reaped children included) over the run. */
  readonly serverCpuMs: number;
}

/** Pushes each `commit` to its `ref` with the git CLI, `concurrency` at once. */
export async function pushFleet(side: Side, localRepo: string, items: readonly { commit: string; ref: string }[], concurrency: number, timeLimitMs: number): Promise<PushFleetResult> {
  const latencies: number[] = [];
  let failures = 0;
  let firstError: string | null = null;
  let next = 0;
  const started = performance.now();
  const cpuBefore = treeCpuMs(side.rootPids);
  const deadline = started + timeLimitMs;
  const worker = async (): Promise<void> => {
    while (next < items.length && performance.now() < deadline) {
      const item = items[next++]!;
      const t = performance.now();
      const result = await git([...side.gitAuth, 'push', '-q', side.repoUrl, `${item.commit}:${item.ref}`], { cwd: localRepo, timeoutMs: 120_000 });
      const ms = performance.now() - t;
      if (result.code === 0) latencies.push(ms);
      else {
        failures++;
        firstError ??= result.stderr.trim().slice(-500);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  const skipped = items.length - latencies.length - failures;
  return {
    pushes: latencies.length + failures,
    concurrency,
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
    maxMs: latencies.length ? Math.max(...latencies) : Number.NaN,
    failures: failures + skipped,
    firstError: firstError ?? (skipped > 0 ? `${skipped} pushes not attempted within the time limit` : null),
    wallMs: performance.now() - started,
    latencies,
    serverCpuMs: treeCpuMs(side.rootPids) - cpuBefore,
  };
}

export function mergeFleets(parts: readonly PushFleetResult[]): PushFleetResult {
  const latencies = parts.flatMap((p) => p.latencies);
  return {
    pushes: parts.reduce((n, p) => n + p.pushes, 0),
    concurrency: parts[0]?.concurrency ?? 0,
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
    maxMs: latencies.length ? Math.max(...latencies) : Number.NaN,
    failures: parts.reduce((n, p) => n + p.failures, 0),
    firstError: parts.find((p) => p.firstError)?.firstError ?? null,
    wallMs: parts.reduce((n, p) => n + p.wallMs, 0),
    latencies,
    serverCpuMs: parts.reduce((n, p) => n + p.serverCpuMs, 0),
  };
}

// ---------------------------------------------------------------------------
// Many small pushes, then fetch latency: as left by the pushes, and freshly repacked

export interface StormResult {
  readonly pushes: number;
  readonly pushFailures: number;
  readonly firstError: string | null;
  readonly pushP50Ms: number;
  readonly pushWallMs: number;
  readonly layoutAfterPushes: RepoLayout;
  readonly afterPushesMs: number[];
  /** Most server child processes (git: maintenance, gc) seen at the start of an "after pushes" sample. */
  readonly busyChildrenAfterPushes: number;
  /** How long the server took to become idle after the samples (bounded). */
  readonly idleWaitMs: number;
  readonly layoutWhenIdle: RepoLayout;
  readonly whenIdleMs: number[];
  readonly repackMs: number;
  readonly layoutAfterRepack: RepoLayout;
  readonly afterRepackMs: number[];
  readonly fetchFailures: number;
}

/**
 * `chains[lane]` are sequential tiny commits for branch `<refPrefix><lane>`. All but the
 * very last commit (lane 0's) are pushed one `git push` each (the lanes in parallel), a
 * clone is made (up to date minus one), the last commit is pushed, then `git fetch` into
 * fresh copies of that clone is timed. Then the repository is repacked and timed again.
 */
export async function pushStormThenFetch(
  side: Side,
  localRepo: string,
  chains: readonly (readonly string[])[],
  refPrefix: string,
  workDir: string,
  fetchSamples: number,
  timeLimitMs: number,
): Promise<StormResult> {
  const latencies: number[] = [];
  let failures = 0;
  let firstError: string | null = null;
  const started = performance.now();
  const deadline = started + timeLimitMs;
  const pushOne = async (lane: number, commit: string): Promise<boolean> => {
    const t = performance.now();
    const result = await git([...side.gitAuth, 'push', '-q', side.repoUrl, `${commit}:refs/heads/${refPrefix}${lane}`], { cwd: localRepo, timeoutMs: 120_000 });
    if (result.code === 0) {
      latencies.push(performance.now() - t);
      return true;
    }
    failures++;
    firstError ??= result.stderr.trim().slice(-500);
    return false;
  };
  await Promise.all(
    chains.map(async (chain, lane) => {
      const upTo = lane === 0 ? chain.length - 1 : chain.length;
      for (let i = 0; i < upTo; i++) {
        if (performance.now() > deadline) {
          failures++;
          firstError ??= 'push storm hit its time limit';
          return;
        }
        // A failed push breaks the chain's fast-forward order only if retried out of order; just go on.
        await pushOne(lane, chain[i]!);
      }
    }),
  );
  const base = path.join(workDir, `fetch-base-${side.name}`);
  const cloneStarted = performance.now();
  await gitOk([...side.gitAuth, 'clone', '-q', '--no-checkout', side.repoUrl, base], { timeoutMs: 600_000 });
  const cloneMs = performance.now() - cloneStarted;
  const last = chains[0]![chains[0]!.length - 1]!;
  await pushOne(0, last);
  // The pushes' time: the clone made before the last one is not part of it.
  const pushWallMs = performance.now() - started - cloneMs;
  const pushes = chains.reduce((n, c) => n + c.length, 0);

  const layoutAfterPushes = await repoLayout(side.repoDir);
  let fetchFailures = 0;
  let busyChildren = 0;
  const sample = async (n: number, watch = false): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      if (watch) busyChildren = Math.max(busyChildren, side.busyChildren());
      const copy = path.join(workDir, `fetch-${side.name}-${i}`);
      await cp(base, copy, { recursive: true });
      const t = performance.now();
      const result = await git([...side.gitAuth, 'fetch', '-q', 'origin'], { cwd: copy, timeoutMs: 300_000 });
      const ms = performance.now() - t;
      const got = result.code === 0 ? (await git(['rev-parse', `refs/remotes/origin/${refPrefix}0`], { cwd: copy })).stdout.trim() : '';
      if (result.code === 0 && got === last) out.push(ms);
      else {
        fetchFailures++;
        log(`${side.label}: fetch failed: ${result.stderr.trim().slice(-300) || `got ${got}, expected ${last}`}`);
      }
      await rm(copy, { recursive: true, force: true });
    }
    return out;
  };
  const afterPushesMs = await sample(fetchSamples, true);
  // The server's own maintenance, if any, gets to finish; then the same fetch again.
  const idleStart = performance.now();
  await side.waitIdle(120_000);
  const idleWaitMs = performance.now() - idleStart;
  const layoutWhenIdle = await repoLayout(side.repoDir);
  const whenIdleMs = await sample(fetchSamples);
  const repackMs = await repack(side);
  const layoutAfterRepack = await repoLayout(side.repoDir);
  const afterRepackMs = await sample(fetchSamples);
  await rm(base, { recursive: true, force: true });
  return {
    pushes,
    pushFailures: failures,
    firstError,
    pushP50Ms: percentile(latencies, 50),
    pushWallMs,
    layoutAfterPushes,
    afterPushesMs,
    busyChildrenAfterPushes: busyChildren,
    idleWaitMs,
    layoutWhenIdle,
    whenIdleMs,
    repackMs,
    layoutAfterRepack,
    afterRepackMs,
    fetchFailures,
  };
}

// ---------------------------------------------------------------------------
// Grove's API: create repo, list a page of a large org

export interface ApiResult {
  readonly createP50Ms: number;
  readonly createP95Ms: number;
  readonly creates: number;
  readonly createFailures: number;
  readonly populated: number;
  readonly populateConcurrency: number;
  readonly populateP50Ms: number;
  readonly populateWallMs: number;
  readonly populateFailures: number;
  readonly listP50Ms: number;
  readonly listP95Ms: number;
  readonly lists: number;
  readonly listFailures: number;
  readonly pageSize: number;
  readonly firstError: string | null;
}

export async function apiWorkloads(
  groveUrl: string,
  headers: Readonly<Record<string, string>>,
  options: { creates: number; orgRepos: number; concurrency: number; lists: number; pageSize: number; timeLimitMs: number },
): Promise<ApiResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const api = `${groveUrl}/api/v1`;
  const h = { ...headers, Accept: 'application/json' };
  let firstError: string | null = null;
  const note = (what: string, status: number, body: string): void => {
    firstError ??= `${what}: HTTP ${status} ${body.slice(0, 300)}`;
  };
  try {
    for (const org of ['bench-create', 'bench-list']) {
      const r = await httpRequest(agent, `${api}/orgs`, { method: 'POST', headers: h, body: JSON.stringify({ name: org }) });
      if (r.status !== 201) throw new Error(`create org ${org}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
    }

    // 1. Create repo: one at a time (latency of one create, nothing else running).
    const createMs: number[] = [];
    let createFailures = 0;
    const deadline1 = performance.now() + options.timeLimitMs;
    for (let i = 0; i < options.creates && performance.now() < deadline1; i++) {
      const r = await httpRequest(agent, `${api}/orgs/bench-create/repos`, { method: 'POST', headers: h, body: JSON.stringify({ name: `repo-${i}` }) });
      if (r.status === 201) createMs.push(r.ms);
      else {
        createFailures++;
        note('create repo', r.status, r.body);
      }
    }

    // 2. Populate an org with `orgRepos` repos, `concurrency` creates at once.
    const populateMs: number[] = [];
    let populateFailures = 0;
    let next = 0;
    const populateStart = performance.now();
    const deadline2 = populateStart + options.timeLimitMs;
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (next < options.orgRepos && performance.now() < deadline2) {
          const i = next++;
          const name = `svc-${String(i).padStart(5, '0')}`;
          const r = await httpRequest(agent, `${api}/orgs/bench-list/repos`, { method: 'POST', headers: h, body: JSON.stringify({ name }) });
          if (r.status === 201) populateMs.push(r.ms);
          else {
            populateFailures++;
            note('populate', r.status, r.body);
          }
        }
      }),
    );
    const populateWallMs = performance.now() - populateStart;

    // 3. List pages of that org, one request at a time, walking the cursor (wrapping at the end).
    const listMs: number[] = [];
    let listFailures = 0;
    let cursor: string | null = null;
    const deadline3 = performance.now() + options.timeLimitMs;
    for (let i = 0; i < options.lists && performance.now() < deadline3; i++) {
      const query: string = `limit=${options.pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const r = await httpRequest(agent, `${api}/orgs/bench-list/repos?${query}`, { headers: h });
      if (r.status !== 200) {
        listFailures++;
        note('list', r.status, r.body);
        cursor = null;
        continue;
      }
      const page = JSON.parse(r.body) as { items?: unknown[]; nextCursor?: string | null };
      if (!Array.isArray(page.items) || (page.items.length === 0 && populateMs.length > 0)) {
        listFailures++;
        note('list (empty page)', r.status, r.body);
      } else listMs.push(r.ms);
      cursor = page.nextCursor ?? null;
    }
    log(`api: ${createMs.length} creates, ${populateMs.length} repos populated in ${(populateWallMs / 1000).toFixed(1)} s, ${listMs.length} pages listed`);
    return {
      createP50Ms: percentile(createMs, 50),
      createP95Ms: percentile(createMs, 95),
      creates: createMs.length,
      createFailures,
      populated: populateMs.length,
      populateConcurrency: options.concurrency,
      populateP50Ms: percentile(populateMs, 50),
      populateWallMs,
      populateFailures,
      listP50Ms: percentile(listMs, 50),
      listP95Ms: percentile(listMs, 95),
      lists: listMs.length,
      listFailures,
      pageSize: options.pageSize,
      firstError,
    };
  } finally {
    agent.destroy();
  }
}
