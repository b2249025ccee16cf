/**
 * A private PostgreSQL cluster for one test or benchmark run: initdb into a temp directory
 * (as the postgres user when run as root, since initdb refuses root), a free loopback port,
 * a socket directory of its own. Nothing of the machine's own clusters is touched. The
 * test runner (scripts/run-tests.js) starts one for a `--database postgres` run; tests of
 * outages start their own, so that they can stop and start it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, globSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.ts';
import pg from 'pg';

/** A PostgreSQL program (initdb, pg_dump, psql …) from PATH or Debian's versioned directory. */
export function postgresBinary(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) if (existsSync(path.join(dir, name))) return path.join(dir, name);
  const found = globSync(`/usr/lib/postgresql/*/bin/${name}`).sort().at(-1);
  if (found === undefined) throw new Error(`PostgreSQL's ${name} is not installed (Debian: apt-get install postgresql)`);
  return found;
}

/** Whether this machine can run a private cluster (the server binaries are installed). */
export function postgresAvailable(): boolean {
  try {
    postgresBinary('initdb');
    postgresBinary('postgres');
    return true;
  } catch {
    return false;
  }
}

function postgresUser(): { uid: number; gid: number } {
  const [, , uid, gid] = execFileSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' }).trim().split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export class PostgresCluster {
  /** The `postgres` database as the superuser `grove` (trust authentication, loopback only). */
  readonly url: string;
  /** The same server through its Unix socket (no TCP), database `postgres`. */
  readonly socketUrl: string;
  readonly port: number;
  readonly #root: string;
  readonly #asRoot: boolean;
  readonly #maxConnections: number;
  #server: ChildProcess | null = null;
  #stderr = '';

  private constructor(root: string, port: number, asRoot: boolean, maxConnections: number) {
    this.#root = root;
    this.port = port;
    this.#asRoot = asRoot;
    this.#maxConnections = maxConnections;
    this.url = `postgres://grove@127.0.0.1:${port}/postgres`;
    this.socketUrl = `postgres://grove@localhost/postgres?host=${encodeURIComponent(root)}&port=${port}`;
  }

  static async start(options: { maxConnections?: number } = {}): Promise<PostgresCluster> {
    const root = mkdtempSync(path.join(os.tmpdir(), 'grove-pg-'));
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      const { uid, gid } = postgresUser();
      chownSync(root, uid, gid);
    }
    const cluster = new PostgresCluster(root, await freePort(), asRoot, options.maxConnections ?? 400);
    try {
      execFileSync(...cluster.#command(postgresBinary('initdb'), ['-D', cluster.#data, '-A', 'trust', '-U', 'grove', '-E', 'UTF8', '--locale=C', '--no-sync']), { stdio: 'ignore' });
      await cluster.resume();
    } catch (error) {
      rmSync(root, { recursive: true, force: true });
      throw error;
    }
    return cluster;
  }

  get #data(): string {
    return path.join(this.#root, 'data');
  }

  #command(file: string, args: string[]): [string, string[]] {
    return this.#asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
  }

  /** Starts the server on the same data and port (after halt()); resolves once it answers queries. */
  async resume(): Promise<void> {
    const [file, args] = this.#command(postgresBinary('postgres'), [
      '-D', this.#data, '-p', String(this.port), '-k', this.#root,
      '-c', 'listen_addresses=127.0.0.1', '-c', `max_connections=${this.#maxConnections}`,
      '-c', 'fsync=on', '-c', 'synchronous_commit=on', '-c', 'log_min_messages=fatal',
    ]);
    const server = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#server = server;
    server.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.#stderr += chunk));
    const deadline = Date.now() + 30_000;
    while (!(await this.#answers())) {
      if (server.exitCode !== null || Date.now() > deadline) {
        server.kill('SIGKILL');
        throw new Error(`PostgreSQL did not start:\n${this.#stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Stops the server (a fast shutdown: clients are disconnected), keeping its data. */
  async halt(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (server === null || server.exitCode !== null) return;
    const exited = new Promise((resolve) => server.once('exit', resolve));
    // Signal the postmaster itself: runuser does not pass signals on. SIGINT = fast shutdown.
    try {
      process.kill(Number(readFileSync(path.join(this.#data, 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGINT');
    } catch {
      server.kill('SIGKILL');
    }
    await exited;
  }

  async stop(): Promise<void> {
    await this.halt();
    rmSync(this.#root, { recursive: true, force: true });
  }

  /** True once the server answers a query (accepting TCP is not enough: it may still be starting). */
  async #answers(): Promise<boolean> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 1000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
