/**
 * The one place Grove spawns git (architecture §3). Children get an allow-listed
 * environment (no inherited GIT_* variables, no system or global config, no prompts),
 * Grove's config as protected `-c` options, their own process group so the whole
 * tree can be killed, and a slot from the process limiter.
 */
import { performance } from 'node:perf_hooks';
import { Limiter } from './limiter.ts';
import { ForkingSpawner, type GitChild, type Spawner, type SpawnerFactory } from './spawner.ts';

export type { GitChild } from './spawner.ts';

/** Config every git child runs with; mirrors what Grove writes into each repo's config. */
const BASE_CONFIG: readonly string[] = [
  'safe.directory=*',
  'core.useReplaceRefs=false',
  'core.fsync=committed,reference',
  'core.fsyncMethod=fsync',
  'core.bigFileThreshold=50m',
  // Bounded memory with big blobs (docs/large-files.md): pack windows of 32 MiB, at most
  // 256 MiB of packs mapped per process, and delta search limited to 256 MiB of window.
  'core.packedGitWindowSize=32m',
  'core.packedGitLimit=256m',
  'core.deltaBaseCacheLimit=96m',
  'pack.windowMemory=256m',
  'core.packedRefsTimeout=10000',
  'core.filesRefLockTimeout=1000',
  'gc.auto=0',
  'maintenance.auto=0',
  'receive.autogc=false',
  'transfer.fsckObjects=true',
  'receive.fsck.badTimezone=ignore',
  'receive.fsck.missingSpaceBeforeDate=ignore',
  'receive.fsck.zeroPaddedFilemode=ignore',
  'fetch.fsck.badTimezone=ignore',
  'fetch.fsck.missingSpaceBeforeDate=ignore',
  'fetch.fsck.zeroPaddedFilemode=ignore',
  'uploadpack.allowFilter=true',
  'uploadpack.allowRefInWant=false',
  // Grove's own refs (remote sync's tracking and backup refs) are never advertised.
  'uploadpack.hideRefs=refs/grove/',
  'repack.updateServerInfo=false',
  'pack.writeReverseIndex=true',
];

const INHERITED_ENV = ['PATH', 'TZ', 'LD_LIBRARY_PATH', 'GIT_EXEC_PATH'] as const;

export interface GitSpawnOptions {
  /** The repository (`--git-dir`); omitted for commands that take no repository. */
  readonly gitDir?: string;
  /** Extra environment: quarantine directories, GIT_PROTOCOL. Values are set as given. */
  readonly env?: Readonly<Record<string, string>>;
  /** Kills the child (and its process group) when aborted. */
  readonly signal?: AbortSignal;
  /** Not counted against the process limits: for the few long-lived children that have a cap of their own. */
  readonly unlimited?: boolean;
}

export interface GitResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export class GitCommandError extends Error {
  override name = 'GitCommandError';
  readonly code: number;
  readonly stderr: string;
  constructor(args: readonly string[], result: GitResult) {
    super(`git ${args[0] ?? ''} exited with ${result.code}: ${result.stderr.trim().split('\n').pop() ?? ''}`);
    this.code = result.code;
    this.stderr = result.stderr;
  }
}

export interface GitRunnerOptions {
  readonly binary?: string;
  /** An empty directory used as HOME, so no user config or credentials leak in. */
  readonly homeDir: string;
  /** git children at once, over all repositories. */
  readonly maxProcesses: number;
  /** git children at once for one repository. */
  readonly maxProcessesPerRepo: number;
  /** How long a spawn may wait for a slot before failing with LimiterTimeoutError. */
  readonly queueTimeoutMs: number;
  /** Makes what starts the children (default: forking Grove itself). */
  readonly spawner?: SpawnerFactory;
}

/** Children started since start, by git command, and the time it took to start them. */
export type SpawnStats = Map<string, { count: number; startMs: number }>;

/** The git subcommand of an argument list (`index-pack` in `--shallow-file f index-pack --stdin`). */
export function commandName(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--shallow-file' || arg === '-c') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return 'git';
}

export class GitRunner {
  readonly limiter: Limiter;
  readonly #repoLimiters = new Map<string, Limiter>();
  readonly #maxPerRepo: number;
  readonly #queueTimeoutMs: number;
  readonly #children = new Set<GitChild>();
  readonly #spawner: Spawner;
  readonly spawnStats: SpawnStats = new Map();

  constructor(options: GitRunnerOptions) {
    const binary = options.binary ?? 'git';
    this.limiter = new Limiter(options.maxProcesses);
    this.#maxPerRepo = options.maxProcessesPerRepo;
    this.#queueTimeoutMs = options.queueTimeoutMs;
    const env: Record<string, string> = {
      HOME: options.homeDir,
      XDG_CONFIG_HOME: options.homeDir,
      LANG: 'C',
      LC_ALL: 'C',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_TERMINAL_PROMPT: '0',
      GIT_NO_REPLACE_OBJECTS: '1',
      GIT_ASKPASS: '/bin/false',
    };
    for (const name of INHERITED_ENV) {
      const value = process.env[name];
      if (value !== undefined) env[name] = value;
    }
    // Every child shares these: the spawner is told once (the launcher, once per launch).
    const base = { file: binary, args: BASE_CONFIG.flatMap((c) => ['-c', c]), env };
    this.#spawner = (options.spawner ?? ((b) => new ForkingSpawner(b)))(base);
  }

  /** Children currently alive (for shutdown). */
  get activeChildren(): number {
    return this.#children.size;
  }

  /**
   * Starts git once a process slot is free. The slot is held until the child exits.
   * The caller owns the child's stdio.
   */
  async spawn(args: readonly string[], options: GitSpawnOptions = {}): Promise<GitChild> {
    const release = options.unlimited ? () => undefined : await this.#acquire(options.gitDir);
    if (options.signal?.aborted) {
      release();
      throw options.signal.reason ?? new Error('aborted');
    }
    const argv: string[] = [];
    if (options.gitDir !== undefined) argv.push(`--git-dir=${options.gitDir}`);
    argv.push(...args);
    let child: GitChild;
    const started = performance.now();
    try {
      child = await this.#spawner.spawn({ args: argv, env: options.env ?? {} });
    } catch (error) {
      release();
      throw error;
    }
    const command = commandName(args);
    const stats = this.spawnStats.get(command) ?? { count: 0, startMs: 0 };
    stats.count++;
    stats.startMs += performance.now() - started;
    this.spawnStats.set(command, stats);
    if (options.signal?.aborted) killTree(child);
    this.#children.add(child);
    const kill = () => killTree(child);
    options.signal?.addEventListener('abort', kill, { once: true });
    child.once('close', (code, signal) => {
      closedWith.set(child, code ?? (signal ? 128 + 9 : 1));
      this.#children.delete(child);
      options.signal?.removeEventListener('abort', kill);
      release();
    });
    // A child that dies early must not crash the server with EPIPE on its stdin.
    child.stdin.on('error', () => {});
    child.once('error', () => {
      this.#children.delete(child);
      release();
    });
    return child;
  }

  /** A slot in the repository's queue, then one in the global queue; both within the queue timeout. */
  async #acquire(gitDir: string | undefined): Promise<() => void> {
    const started = Date.now();
    let repoLimiter: Limiter | undefined;
    let releaseRepo = () => {};
    if (gitDir !== undefined) {
      repoLimiter = this.#repoLimiters.get(gitDir);
      if (repoLimiter === undefined) {
        repoLimiter = new Limiter(this.#maxPerRepo);
        this.#repoLimiters.set(gitDir, repoLimiter);
      }
      releaseRepo = await repoLimiter.acquire(this.#queueTimeoutMs);
    }
    const forget = () => {
      if (gitDir !== undefined && repoLimiter!.running === 0 && repoLimiter!.queued === 0) this.#repoLimiters.delete(gitDir);
    };
    try {
      const releaseGlobal = await this.limiter.acquire(Math.max(1, this.#queueTimeoutMs - (Date.now() - started)));
      return () => {
        releaseGlobal();
        releaseRepo();
        forget();
      };
    } catch (error) {
      releaseRepo();
      forget();
      throw error;
    }
  }

  /** Runs git to completion, feeding `input` and collecting its output. */
  async run(args: readonly string[], options: GitSpawnOptions & { readonly input?: Buffer | string } = {}): Promise<GitResult> {
    const child = await this.spawn(args, options);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdin.end(options.input);
    const code = await exitCode(child);
    return { code, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') };
  }

  /** Like run(), but a non-zero exit is an error. */
  async check(args: readonly string[], options: GitSpawnOptions & { readonly input?: Buffer | string } = {}): Promise<Buffer> {
    const result = await this.run(args, options);
    if (result.code !== 0) throw new GitCommandError(args, result);
    return result.stdout;
  }

  /** Kills every running child; used when shutdown runs out of patience. */
  killAll(): void {
    for (const child of this.#children) killTree(child);
  }

  /** Stops the spawner (the launcher process); running children are not touched. */
  close(): Promise<void> {
    return this.#spawner.close();
  }
}

/** How each child that has closed (exited, and its output read to the end) ended. */
const closedWith = new WeakMap<GitChild, number>();

/**
 * Resolves once the child has exited and its stdout and stderr have closed ('close', not
 * 'exit': output still in flight would otherwise be cut off), with its exit code.
 */
export function exitCode(child: GitChild): Promise<number> {
  return new Promise((resolve) => {
    const closed = closedWith.get(child);
    if (closed !== undefined) return resolve(closed);
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 + 9 : 1)));
    child.once('error', () => resolve(127));
  });
}

export function killTree(child: GitChild): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}
