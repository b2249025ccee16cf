/**
 * How a git child comes to exist. Node's child_process forks the calling process, and a
 * fork copies the page tables of the whole process while the event loop waits: measured
 * here at ~3 ms per spawn for a 50 MB process and ~18 ms for a 265 MB one, which at a dozen
 * spawns per push stalls every request of a busy server. So Grove normally asks a small
 * resident helper process to fork for it (git-launcher.ts); spawning in-process remains
 * for GROVE_GIT_LAUNCHER=off.
 */
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/** The part of a child process Grove uses; Node's ChildProcess has this shape, and so does a launched child. */
export interface GitChild {
  readonly pid?: number | undefined;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Null until the child has exited normally. */
  readonly exitCode: number | null;
  /** Sends a signal to the child itself (not its process group: see killTree). */
  kill(signal?: NodeJS.Signals): boolean;
  /** After exit, once stdout and stderr have closed. */
  once(event: 'close', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  /** The child could not be started. */
  once(event: 'error', listener: (error: Error) => void): this;
}

/** What every child shares: the binary, the arguments that come first, the environment. */
export interface SpawnBase {
  readonly file: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** One child: its arguments after the base ones, and variables added to the base environment. */
export interface SpawnRequest {
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** Makes a spawner for children that all share `base` (given once, not with every spawn). */
export type SpawnerFactory = (base: SpawnBase) => Spawner;

export interface Spawner {
  /** Starts a child in its own process group with piped stdio; resolves once it runs (or emits 'error' on the child). */
  spawn(request: SpawnRequest): Promise<GitChild>;
  close(): Promise<void>;
}

/** Forks Grove itself (child_process.spawn): simple, but blocks the event loop for the fork. */
export class ForkingSpawner implements Spawner {
  readonly #base: SpawnBase;

  constructor(base: SpawnBase) {
    this.#base = base;
  }

  async spawn(request: SpawnRequest): Promise<GitChild> {
    return spawn(this.#base.file, [...this.#base.args, ...request.args], { env: { ...this.#base.env, ...request.env }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  }

  async close(): Promise<void> {}
}
