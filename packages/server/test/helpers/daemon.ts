/** Runs `grove serve` as a real child process on a free loopback port, as an operator would. */
import { spawn, type ChildProcess } from 'node:child_process';
import { COMPILE_CACHE, GROVE_BIN, ROOT } from './cli.ts';
import { databaseEnv } from './database.ts';
import { freePort } from './ports.ts';

export { freePort };

export interface Daemon {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  stdout(): string;
  stderr(): string;
  /** stdout and stderr interleaved as they arrived. */
  output(): string;
  /** Resolves with the exit code and signal once the process has exited (and its pipes flushed). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface DaemonOptions {
  /** The data directory (`--data`). */
  readonly dataDir: string;
  /** The whole environment of the child; default daemonEnv(). */
  readonly env?: NodeJS.ProcessEnv;
  /** The grove command to run: a JavaScript file run with this Node, or an executable. Default the clone's bin/grove.js. */
  readonly bin?: string;
  /** Whether `bin` is an executable of its own (an installed `grove`), not a script for this Node. */
  readonly executable?: boolean;
  /** Text that must appear on stdout before the daemon counts as started (the banner, a log line). */
  readonly waitFor?: string;
  readonly timeoutMs?: number;
}

const running = new Set<ChildProcess>();

/** The test process's environment without any GROVE_* variable, plus what a test sets. */
export function daemonEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('GROVE_')) env[key] = value;
  return { ...env, NODE_COMPILE_CACHE: COMPILE_CACHE, ...extra };
}

/** Spawns `grove serve ...args` (port: what the URL should name); does not wait for it to listen. */
export function spawnServe(args: readonly string[], options: Pick<DaemonOptions, 'env' | 'bin' | 'executable'> = {}, port = 0): Daemon {
  const bin = options.bin ?? GROVE_BIN;
  const env = options.env ?? daemonEnv();
  const child = options.executable
    ? spawn(bin, ['serve', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [bin, 'serve', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  let err = '';
  let both = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    both += chunk;
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    both += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      setImmediate(() => resolve({ code, signal })); // let the pipes flush before anyone reads them
    });
  });
  return { child, url: `http://127.0.0.1:${port}`, port, stdout: () => out, stderr: () => err, output: () => both, exited };
}

/** Waits until /healthz answers 200 (and `waitFor` is on stdout); fails with the daemon's output if it exits or times out. */
export async function waitUntilHealthy(daemon: Daemon, options: Pick<DaemonOptions, 'waitFor' | 'timeoutMs'> = {}): Promise<void> {
  let exitedEarly = false;
  void daemon.exited.then(() => (exitedEarly = true));
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    if (exitedEarly) throw new Error(`grove serve exited before listening:\n${daemon.output()}`);
    try {
      const response = await fetch(`${daemon.url}/healthz`);
      await response.arrayBuffer();
      if (response.status === 200 && (options.waitFor === undefined || daemon.stdout().includes(options.waitFor))) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`grove serve did not answer /healthz:\n${daemon.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Spawns `grove serve --data <dir> --listen 127.0.0.1:<free port>` and waits until it is healthy. */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const port = await freePort();
  const env = options.env ?? daemonEnv();
  const withDatabase = env.GROVE_DATABASE_URL === undefined ? { ...env, ...(await databaseEnv(options.dataDir)) } : env;
  const daemon = spawnServe(['--data', options.dataDir, '--listen', `127.0.0.1:${port}`], { ...options, env: withDatabase }, port);
  await waitUntilHealthy(daemon, options);
  return daemon;
}

/** Sends a signal and returns how the process exited (SIGKILL after 15 s). */
export async function stopDaemon(daemon: Daemon, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  daemon.child.kill(signal);
  const timer = setTimeout(() => daemon.child.kill('SIGKILL'), 15_000);
  try {
    return await daemon.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Kills every daemon this process started that is still running (an after() hook's safety net). */
export function killAllDaemons(): void {
  for (const child of running) child.kill('SIGKILL');
}
