/**
 * Spawning git through a resident launcher process (launcher-main.ts), so that no fork
 * of Grove's own, large process ever blocks its event loop (spawner.ts says why). The
 * launcher forks; the child's stdin, stdout and stderr are Unix socket connections to
 * Grove (launcher-protocol.ts), so its bytes never pass through the launcher.
 *
 * If the launcher dies, the children it started can no longer be reaped by anyone who
 * would tell Grove their exit status: they are killed (their whole process groups) and
 * reported as killed, and the next spawn starts a new launcher.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HEADER_BYTES, type BaseMessage, type LauncherMessage, type SpawnMessage } from './launcher-protocol.ts';
import type { GitChild, SpawnBase, SpawnRequest, Spawner } from './spawner.ts';

/** The launcher's entry, beside this file: launcher-main.ts in a clone, launcher-main.js once built. */
const LAUNCHER_MAIN = fileURLToPath(new URL(`./launcher-main${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/** How long a spawn may take from request to running child before it is reported as failed. */
const SPAWN_TIMEOUT_MS = 30_000;

class LaunchedChild extends EventEmitter implements GitChild {
  pid: number | undefined = undefined;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly stdin: net.Socket;
  readonly stdout: net.Socket;
  readonly stderr: net.Socket;
  #exited = false;
  #openOutputs = 2;

  constructor(stdin: net.Socket, stdout: net.Socket, stderr: net.Socket) {
    super();
    this.stdin = stdin;
    this.stdout = stdout;
    this.stderr = stderr;
    // git never writes to its stdin; reading that side lets its end and close come through.
    stdin.resume();
    for (const output of [stdout, stderr]) {
      // An output git closed at once (an empty stderr) may have ended while its header was read.
      if (output.closed) this.#openOutputs--;
      else {
        output.once('close', () => {
          this.#openOutputs--;
          this.#maybeClose();
        });
      }
    }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.pid === undefined || this.#exited) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  exited(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#exited) return;
    this.#exited = true;
    this.exitCode = code;
    this.signalCode = signal;
    this.emit('exit', code, signal);
    this.#maybeClose();
  }

  #maybeClose(): void {
    if (!this.#exited || this.#openOutputs > 0) return;
    this.stdin.destroy();
    this.emit('close', this.exitCode, this.signalCode);
  }
}

/** A spawn on its way: its three sockets arrive in any order, and so does the launcher's answer. */
interface Launch {
  readonly sockets: (net.Socket | null)[];
  pid: number | null;
  /** An exit reported before the last socket was accepted (a very short-lived git). */
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  readonly resolve: (child: GitChild) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export interface LauncherStats {
  /** Launcher processes started (1 plus restarts after a crash). */
  starts: number;
  spawned: number;
}

export class LauncherSpawner implements Spawner {
  readonly #dir: string;
  readonly #socketPath: string;
  readonly #server: net.Server;
  #listening: Promise<void> | null = null;
  #launcher: ChildProcess | null = null;
  readonly #launches = new Map<string, Launch>();
  /** Running children by id, until the launcher reports their exit. */
  readonly #running = new Map<string, LaunchedChild>();
  #closed = false;
  readonly stats: LauncherStats = { starts: 0, spawned: 0 };
  readonly #niceness: number;
  readonly #base: SpawnBase;

  /** `niceness`: what git children run at (0 = Grove's own priority). */
  constructor(base: SpawnBase, niceness = 0) {
    this.#base = base;
    this.#niceness = niceness;
    // A short private path: socket paths are limited to 107 bytes, and only this user may connect.
    const parent = os.tmpdir().length < 60 ? os.tmpdir() : '/tmp';
    removeStaleSocketDirs(parent);
    this.#dir = mkdtempSync(path.join(parent, `grove-launcher-${process.pid}-`));
    this.#socketPath = path.join(this.#dir, 's');
    this.#server = net.createServer((socket) => this.#accept(socket));
  }

  async spawn(request: SpawnRequest): Promise<GitChild> {
    if (this.#closed) throw new Error('the git launcher is closed');
    await (this.#listening ??= new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#socketPath, () => resolve());
      this.#server.unref();
    }));
    const launcher = this.#ensureLauncher();
    const id = randomBytes(16).toString('hex');
    return new Promise<GitChild>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(id, new Error(`git did not start within ${SPAWN_TIMEOUT_MS} ms`)), SPAWN_TIMEOUT_MS);
      this.#launches.set(id, { sockets: [null, null, null], pid: null, exit: null, resolve, reject, timer });
      const message: SpawnMessage = { t: 'spawn', id, args: request.args, env: request.env };
      this.#holdAlive();
      launcher.send(message, (error: Error | null) => {
        if (error) this.#fail(id, error);
      });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#launcher?.disconnect();
    this.#launcher = null;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #ensureLauncher(): ChildProcess {
    if (this.#launcher !== null && this.#launcher.connected) return this.#launcher;
    // Small heap limits keep its resident size, and so the cost of each of its forks, small.
    const launcher = fork(LAUNCHER_MAIN, [this.#socketPath, String(this.#niceness)], {
      execArgv: ['--max-old-space-size=32', '--max-semi-space-size=1'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'json',
    });
    this.stats.starts++;
    launcher.on('message', (message: LauncherMessage) => this.#onMessage(message));
    const base: BaseMessage = { t: 'base', ...this.#base };
    launcher.send(base); // IPC keeps order: it arrives before any spawn
    launcher.once('exit', () => this.#launcherGone(launcher));
    // The process never keeps Grove alive, its channel only while children are out (#holdAlive).
    launcher.unref();
    launcher.channel?.unref();
    this.#launcher = launcher;
    return launcher;
  }

  /** Keeps the event loop alive while a spawn or an exit report is outstanding, and only then. */
  #holdAlive(): void {
    const busy = this.#launches.size + this.#running.size > 0;
    if (busy) this.#launcher?.channel?.ref();
    else this.#launcher?.channel?.unref();
  }

  #onMessage(message: LauncherMessage): void {
    const launch = this.#launches.get(message.id);
    if (message.t === 'exit') {
      const child = this.#running.get(message.id);
      this.#running.delete(message.id);
      // Deferred: a fast git's `exit` can arrive in the same read as its `spawned`, before whoever
      // awaited the spawn has attached its listeners.
      if (child) setImmediate(() => child.exited(message.code, message.signal));
      else if (launch) launch.exit = { code: message.code, signal: message.signal };
      this.#holdAlive();
      return;
    }
    if (launch === undefined) return;
    if (message.t === 'failed') {
      this.#fail(message.id, Object.assign(new Error(message.message), { code: /ENOENT/.test(message.message) ? 'ENOENT' : undefined }));
      return;
    }
    launch.pid = message.pid;
    this.#maybeReady(message.id, launch);
  }

  /** Reads a connection's header and files the socket under its launch. */
  #accept(socket: net.Socket): void {
    // 'readable' and read(n) leave the stream paused with the rest buffered, so whoever reads
    // git's output next (a 'data' listener or for await) gets all of it.
    const onReadable = () => {
      const header = socket.read(HEADER_BYTES) as Buffer | null;
      if (header === null) return;
      socket.off('readable', onReadable);
      const id = header.toString('latin1', 0, HEADER_BYTES - 1);
      const index = header[HEADER_BYTES - 1]! - 0x30;
      const launch = this.#launches.get(id);
      if (launch === undefined || index < 0 || index > 2 || launch.sockets[index] !== null) {
        socket.destroy();
        return;
      }
      launch.sockets[index] = socket;
      this.#maybeReady(id, launch);
    };
    socket.on('readable', onReadable);
    socket.on('error', () => undefined); // reported through the child's streams or its exit
  }

  #maybeReady(id: string, launch: Launch): void {
    if (launch.pid === null || launch.sockets.some((s) => s === null)) return;
    clearTimeout(launch.timer);
    this.#launches.delete(id);
    const [stdin, stdout, stderr] = launch.sockets as net.Socket[];
    const child = new LaunchedChild(stdin!, stdout!, stderr!);
    child.pid = launch.pid;
    this.stats.spawned++;
    const early = launch.exit;
    if (early === null) this.#running.set(id, child);
    // After the caller's continuation has attached its listeners.
    else setImmediate(() => child.exited(early.code, early.signal));
    this.#holdAlive();
    launch.resolve(child);
  }

  #fail(id: string, error: Error): void {
    const launch = this.#launches.get(id);
    if (launch === undefined) return;
    clearTimeout(launch.timer);
    this.#launches.delete(id);
    for (const socket of launch.sockets) socket?.destroy();
    if (launch.pid !== null) killGroup(launch.pid);
    this.#holdAlive();
    launch.reject(error);
  }

  #launcherGone(launcher: ChildProcess): void {
    if (this.#launcher === launcher) this.#launcher = null;
    for (const id of [...this.#launches.keys()]) this.#fail(id, new Error('the git launcher exited'));
    // Nobody will report these children's exits any more: end them, and say they were killed.
    for (const [id, child] of this.#running) {
      if (child.pid !== undefined) killGroup(child.pid);
      child.exited(null, 'SIGKILL');
      this.#running.delete(id);
    }
  }
}

/** Removes the socket directories of Grove processes that are gone (killed before they could clean up). */
function removeStaleSocketDirs(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^grove-launcher-(\d+)-/.exec(name)?.[1]);
    if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
    rmSync(path.join(parent, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
