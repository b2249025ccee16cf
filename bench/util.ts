/**
 * Shared plumbing for the benchmark: child processes that are always cleaned up,
 * an isolated git environment, free loopback ports, and statistics.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';

// ---------------------------------------------------------------------------
// Processes and cleanup

/** Every child the harness started and that may still be running. */
const live = new Set<ChildProcess>();
/** Temp directories to remove at exit. */
const tempDirs = new Set<string>();

/** Registers a child so that cleanup() ends it; `group` means it leads its own process group. */
export function track(child: ChildProcess, group = false): ChildProcess {
  (child as ChildProcess & { benchGroup?: boolean }).benchGroup = group;
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

export function trackTempDir(dir: string): void {
  tempDirs.add(dir);
}

function signalChild(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const group = (child as ChildProcess & { benchGroup?: boolean }).benchGroup === true;
  try {
    // A group leader we spawned (detached): its group id is its pid.
    if (group) process.kill(-child.pid, signal);
    else process.kill(child.pid, signal);
  } catch {
    // already gone
  }
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Sends SIGTERM, waits up to `graceMs` for the exit, then SIGKILL. */
export async function stopChild(child: ChildProcess, graceMs = 5000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalChild(child, signal);
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
  if ((await Promise.race([exited, timer])) === 'timeout') {
    signalChild(child, 'SIGKILL');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
  }
}

/** Ends every tracked child (gracefully, bounded) and removes the temp directories. */
export async function cleanup(): Promise<void> {
  await Promise.all([...live].map((child) => stopChild(child, 4000)));
  cleanupSync();
}

/** Last resort from an 'exit' handler: SIGKILL whatever is left, remove temp dirs. */
export function cleanupSync(): void {
  for (const child of live) signalChild(child, 'SIGKILL');
  live.clear();
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort
    }
  }
  tempDirs.clear();
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  readonly timedOut: boolean;
}

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: string | Buffer | readonly Buffer[];
  /** Killed (SIGKILL) after this long; every command the harness runs is bounded. */
  readonly timeoutMs?: number;
}

/** Runs a command to completion; never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const spawnOptions: SpawnOptions = { cwd: options.cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] };
    const child = spawn(cmd, [...args], spawnOptions);
    track(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timeoutMs = options.timeoutMs ?? 300_000;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: performance.now() - started,
        timedOut,
      });
    });
    child.stdin?.on('error', () => {
      // the child may exit before reading all of its input; the exit code tells
    });
    const input = options.input;
    if (input === undefined) child.stdin?.end();
    else if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin?.end(input);
    else {
      // Write a list of chunks with backpressure.
      const stdin = child.stdin!;
      let i = 0;
      const pump = (): void => {
        while (i < input.length) {
          const ok = stdin.write(input[i++]);
          if (!ok) {
            stdin.once('drain', pump);
            return;
          }
        }
        stdin.end();
      };
      pump();
    }
  });
}

/** run() that throws with the command's stderr on failure. */
export async function runOk(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(cmd, args, options);
  if (result.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${result.timedOut ? 'timed out' : `exit ${result.code}`}):\n${result.stderr.trim().slice(-2000)}`);
  }
  return result;
}

// ---------------------------------------------------------------------------
// git

let gitHome = '/nonexistent';

export function setGitHome(dir: string): void {
  gitHome = dir;
}

/** An environment with no user or system git config and no prompts. */
export function gitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: gitHome,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Bench Agent',
    GIT_AUTHOR_EMAIL: 'agent@bench.invalid',
    GIT_COMMITTER_NAME: 'Bench Agent',
    GIT_COMMITTER_EMAIL: 'agent@bench.invalid',
    LANG: 'C',
    LC_ALL: 'C',
    ...extra,
  };
}

/**
 * The harness's git processes stand in for clients on other machines: they run at this
 * niceness, so that on this one machine the servers under test (both alike) get the CPU
 * before their clients do, as they would if the clients were elsewhere.
 */
export const CLIENT_NICENESS = Number(process.env.BENCH_CLIENT_NICENESS ?? 10);

export function git(args: readonly string[], options: Omit<RunOptions, 'env'> & { env?: Record<string, string> } = {}): Promise<RunResult> {
  return run('nice', ['-n', String(CLIENT_NICENESS), 'git', ...args], { ...options, env: gitEnv(options.env) });
}

export function gitOk(args: readonly string[], options: Omit<RunOptions, 'env'> & { env?: Record<string, string> } = {}): Promise<RunResult> {
  return runOk('nice', ['-n', String(CLIENT_NICENESS), 'git', ...args], { ...options, env: gitEnv(options.env) });
}

// ---------------------------------------------------------------------------
// Network

/** A free TCP port on 127.0.0.1 (bound and released; a tiny race is acceptable here). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Statistics

/** Percentile by linear interpolation between closest ranks; NaN for no samples. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (rank - lo);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

// ---------------------------------------------------------------------------
// Memory of a process tree (Linux /proc)

/** VmRSS of one process in bytes, or 0 when it is gone. */
export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Proportional set size of one process (shared pages divided among their sharers), or its RSS where the kernel has no smaps_rollup. */
export function pssBytes(pid: number): number {
  try {
    const match = /^Pss:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'));
    return match ? Number(match[1]) * 1024 : rssBytes(pid);
  } catch {
    return rssBytes(pid);
  }
}

/** The pids of `roots` and all their descendants right now. */
export function processTree(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [...roots];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue;
    }
    // pid (comm) state ppid ...; comm may contain spaces and parentheses.
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    const ppid = Number(fields[1]);
    const pid = Number(entry);
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const result: number[] = [];
  const queue = [...roots];
  const seen = new Set<number>();
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    result.push(pid);
    for (const child of children.get(pid) ?? []) queue.push(child);
  }
  return result;
}

/** CPU time (user + system, with reaped children's) of `roots` and their descendants, ms. */
export function treeCpuMs(roots: readonly number[]): number {
  let ticks = 0;
  for (const pid of processTree(roots)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // gone
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/**
 * The sampler runs in a worker thread so that a busy event loop in the harness (200
 * responses streaming in) does not stretch its 50 ms period. Plain JavaScript, evaluated.
 */
const SAMPLER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { roots, intervalMs } = workerData;
function tree() {
  const children = new Map();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\\d+$/.test(e)) continue;
    let stat;
    try { stat = fs.readFileSync('/proc/' + e + '/stat', 'latin1'); } catch { continue; }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid);
    if (list) list.push(Number(e)); else children.set(ppid, [Number(e)]);
  }
  const out = []; const queue = [...roots]; const seen = new Set();
  while (queue.length) { const p = queue.shift(); if (seen.has(p)) continue; seen.add(p); out.push(p); for (const c of children.get(p) || []) queue.push(c); }
  return out;
}
function rss(pid) {
  try { const m = /^VmRSS:\\s+(\\d+)\\s+kB/m.exec(fs.readFileSync('/proc/' + pid + '/status', 'latin1')); return m ? Number(m[1]) * 1024 : 0; } catch { return 0; }
}
function pss(pid) {
  try { const m = /^Pss:\\s+(\\d+)\\s+kB/m.exec(fs.readFileSync('/proc/' + pid + '/smaps_rollup', 'latin1')); return m ? Number(m[1]) * 1024 : rss(pid); } catch { return rss(pid); }
}
function isGit(pid) { try { return fs.readFileSync('/proc/' + pid + '/comm', 'latin1').startsWith('git'); } catch { return false; } }
const s = { samples: 0, baselineServer: -1, peakServer: 0, peakTree: 0, peakTreeProcesses: 0, peakGitProcesses: 0 };
function sample() {
  s.samples++;
  let server = 0, total = 0, gits = 0;
  const pids = tree();
  // The server's own processes by PSS (pages shared among them, such as the node binary Grove and
  // its launcher both map, or nginx's workers' code, counted once); git children by RSS (cheap).
  for (const pid of pids) { if (isGit(pid)) { gits++; total += rss(pid); } else { const r = pss(pid); server += r; total += r; } }
  if (s.baselineServer < 0) s.baselineServer = server;
  if (server > s.peakServer) s.peakServer = server;
  if (total > s.peakTree) { s.peakTree = total; s.peakTreeProcesses = pids.length; }
  if (gits > s.peakGitProcesses) s.peakGitProcesses = gits;
}
sample();
parentPort.postMessage('started');
const timer = setInterval(sample, intervalMs);
parentPort.on('message', () => { clearInterval(timer); sample(); parentPort.postMessage(s); });
`;

export interface RssStats {
  readonly samples: number;
  /** PSS of the server's own (non-git) processes at the first sample. */
  readonly baselineServer: number;
  /** Peak PSS of the server's own processes: Grove's node process and its git launcher; nginx + fcgiwrap. */
  readonly peakServer: number;
  /** Peak of the sum over the whole tree, git children included (their RSS). */
  readonly peakTree: number;
  readonly peakTreeProcesses: number;
  readonly peakGitProcesses: number;
}

/** Samples RSS of the process trees of `roots` every `intervalMs` in a worker thread. */
export class RssSampler {
  readonly #roots: readonly number[];
  readonly #intervalMs: number;
  #worker: Worker | null = null;

  constructor(roots: readonly number[], intervalMs = 50) {
    this.#roots = roots;
    this.#intervalMs = intervalMs;
  }

  async start(): Promise<void> {
    const worker = new Worker(SAMPLER_SOURCE, { eval: true, workerData: { roots: [...this.#roots], intervalMs: this.#intervalMs } });
    this.#worker = worker;
    await once(worker, 'message');
  }

  async stop(): Promise<RssStats> {
    const worker = this.#worker;
    if (!worker) throw new Error('sampler not started');
    this.#worker = null;
    const answer = once(worker, 'message');
    worker.postMessage('stop');
    const [stats] = (await answer) as [RssStats];
    await worker.terminate();
    return stats;
  }
}

// ---------------------------------------------------------------------------
// Formatting

export function fmtNumber(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 100) return value.toFixed(0);
  return value.toFixed(digits);
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(1)} ms`;
}

export function fmtBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'n/a';
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

export function log(message: string): void {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[bench ${t}] ${message}\n`);
}
