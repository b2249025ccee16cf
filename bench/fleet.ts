/**
 * The fleet: `agents` agents, `concurrency` at once, each doing what an agent does with a
 * Git server — `git clone --depth 1` of main, a commit of its own file, `git push` of its own
 * branch — with per-step latencies. While a fleet runs on Grove, a prober measures what other
 * clients see meanwhile: an ls-refs, a branch read and a small file read through the API, one
 * after the other, every 20 ms.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Side } from './e2e.ts';
import { requestBody } from './load-client.ts';
import { fileURLToPath } from 'node:url';
import { git, percentile, track } from './util.ts';

export interface StepLatencies {
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly samples: number;
}

function latencies(values: readonly number[]): StepLatencies {
  return { p50Ms: percentile(values, 50), p95Ms: percentile(values, 95), p99Ms: percentile(values, 99), samples: values.length };
}

export interface FleetResult {
  readonly agents: number;
  readonly concurrency: number;
  readonly clone: StepLatencies;
  readonly commit: StepLatencies;
  readonly push: StepLatencies;
  /** Clone + commit + push of one agent. */
  readonly endToEnd: StepLatencies;
  readonly failures: number;
  readonly firstError: string | null;
  readonly wallMs: number;
}

export async function runFleet(side: Side, workDir: string, agents: number, concurrency: number, timeLimitMs: number, branchPrefix: string): Promise<FleetResult> {
  const steps = { clone: [] as number[], commit: [] as number[], push: [] as number[], total: [] as number[] };
  let failures = 0;
  let firstError: string | null = null;
  let next = 0;
  const started = performance.now();
  const deadline = started + timeLimitMs;
  const fail = (what: string, stderr: string) => {
    failures++;
    firstError ??= `${what}: ${stderr.trim().slice(-400)}`;
  };
  const agent = async (i: number): Promise<void> => {
    const dir = path.join(workDir, `${side.name}-agent-${i}`);
    try {
      const t0 = performance.now();
      const cloned = await git([...side.gitAuth, 'clone', '-q', '--depth', '1', '--single-branch', '--branch', 'main', '--no-tags', side.repoUrl, dir], { timeoutMs: 300_000 });
      if (cloned.code !== 0) return fail('clone', cloned.stderr);
      const t1 = performance.now();
      await mkdir(path.join(dir, 'agents'), { recursive: true });
      await writeFile(path.join(dir, 'agents', `fleet-${i}.txt`), `agent ${i} was here\n`);
      const added = await git(['add', '-A'], { cwd: dir, timeoutMs: 60_000 });
      const committed = added.code === 0 ? await git(['commit', '-q', '-m', `agent ${i}: a change`], { cwd: dir, timeoutMs: 60_000 }) : added;
      if (committed.code !== 0) return fail('commit', committed.stderr);
      const t2 = performance.now();
      const pushed = await git([...side.gitAuth, 'push', '-q', 'origin', `HEAD:refs/heads/${branchPrefix}${i}`], { cwd: dir, timeoutMs: 300_000 });
      if (pushed.code !== 0) return fail('push', pushed.stderr);
      const t3 = performance.now();
      steps.clone.push(t1 - t0);
      steps.commit.push(t2 - t1);
      steps.push.push(t3 - t2);
      steps.total.push(t3 - t0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  const worker = async (): Promise<void> => {
    while (next < agents && performance.now() < deadline) await agent(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  const skipped = agents - steps.total.length - failures;
  return {
    agents,
    concurrency,
    clone: latencies(steps.clone),
    commit: latencies(steps.commit),
    push: latencies(steps.push),
    endToEnd: latencies(steps.total),
    failures: failures + skipped,
    firstError: firstError ?? (skipped > 0 ? `${skipped} agents not started within the time limit` : null),
    wallMs: performance.now() - started,
  };
}

// ---------------------------------------------------------------------------
// Latency of other requests while a fleet runs

export type ProbeName = 'ls-refs' | 'branch' | 'contents';

export interface ProbeResult {
  readonly name: ProbeName;
  readonly latency: StepLatencies;
  readonly errors: number;
  readonly firstError: string | null;
}

export interface Probe {
  readonly name: ProbeName;
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body?: Buffer;
}

/** What the prober asks Grove (the API probes need Grove's API; the peer gets ls-refs only). */
export function probesFor(side: Side, apiBase: string | null, branch: string, file: string): Probe[] {
  const probes: Probe[] = [{
    name: 'ls-refs',
    method: 'POST',
    url: `${side.repoUrl}/git-upload-pack`,
    headers: { ...side.headers, 'Content-Type': 'application/x-git-upload-pack-request', 'Git-Protocol': 'version=2' },
    body: requestBody('ls-refs', '')!,
  }];
  if (apiBase !== null) {
    probes.push({ name: 'branch', method: 'GET', url: `${apiBase}/branches/${branch}`, headers: { ...side.headers, Accept: 'application/json' } });
    probes.push({ name: 'contents', method: 'GET', url: `${apiBase}/contents/${file}?ref=${branch}`, headers: { ...side.headers } });
  }
  return probes;
}

function once(agent: http.Agent, probe: Probe): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(probe.url, { agent, method: probe.method, headers: probe.body ? { ...probe.headers, 'Content-Length': String(probe.body.length) } : probe.headers }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${probe.name}: HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`${probe.name}: timed out`)));
    req.on('error', reject);
    req.end(probe.body);
  });
}

/** The prober's pause between requests: it measures the server, and must not be a load of its own. */
const PROBE_INTERVAL_MS = 20;

/** Runs the probes round-robin, one request at a time every PROBE_INTERVAL_MS, until `stop` resolves (in this process). */
export async function probeUntil(probes: readonly Probe[], stop: Promise<unknown>): Promise<ProbeResult[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times = new Map<ProbeName, number[]>(probes.map((p) => [p.name, []]));
  const errors = new Map<ProbeName, { n: number; first: string | null }>(probes.map((p) => [p.name, { n: 0, first: null }]));
  let done = false;
  void stop.finally(() => (done = true));
  try {
    for (let i = 0; !done; i++) {
      const probe = probes[i % probes.length]!;
      const t = performance.now();
      try {
        await once(agent, probe);
        times.get(probe.name)!.push(performance.now() - t);
      } catch (error) {
        const e = errors.get(probe.name)!;
        e.n++;
        e.first ??= (error as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
    }
  } finally {
    agent.destroy();
  }
  return probes.map((p) => ({ name: p.name, latency: latencies(times.get(p.name)!), errors: errors.get(p.name)!.n, firstError: errors.get(p.name)!.first }));
}

/**
 * Runs the probes in a process of their own while `work` runs: the harness process itself forks
 * hundreds of git clients meanwhile, and each fork stalls its event loop, which a prober in it
 * would count as the server's latency.
 */
export async function probeWhile<T>(probes: readonly Probe[], work: Promise<T>): Promise<ProbeResult[]> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./probe-main.ts', import.meta.url))], { stdio: ['pipe', 'pipe', 'inherit'] });
  track(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin.write(`${JSON.stringify(probes.map((p) => ({ ...p, body: p.body?.toString('base64') })))}\n`);
  await work.catch(() => undefined);
  child.stdin.end(); // the prober stops at the end of its input
  await exited;
  return JSON.parse(out) as ProbeResult[];
}

/** The prober process's side: probes from the first line of stdin, results as JSON on stdout once stdin ends. */
export async function proberMain(): Promise<void> {
  let input = '';
  let firstLine: (value: string) => void;
  const line = new Promise<string>((resolve) => (firstLine = resolve));
  const ended = new Promise<void>((resolve) => process.stdin.once('end', () => resolve()));
  process.stdin.setEncoding('utf8').on('data', (chunk: string) => {
    input += chunk;
    if (input.includes('\n')) firstLine(input.slice(0, input.indexOf('\n')));
  });
  const probes = (JSON.parse(await line) as (Omit<Probe, 'body'> & { body?: string })[]).map((p) => ({ ...p, ...(p.body ? { body: Buffer.from(p.body, 'base64') } : {}) })) as Probe[];
  process.stdout.write(JSON.stringify(await probeUntil(probes, ended)));
}
