/**
 * nginx in front of test servers: the `http {}` body a test gives, wrapped with what a
 * private instance needs (its own prefix, pid, logs and temp paths), on a free port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.ts';

export const NGINX = '/usr/sbin/nginx';

export function nginxAvailable(): boolean {
  return existsSync(NGINX);
}

export class Nginx {
  readonly url: string;
  readonly #child: ChildProcess;
  readonly #dir: string;

  private constructor(url: string, child: ChildProcess, dir: string) {
    this.url = url;
    this.#child = child;
    this.#dir = dir;
  }

  /** `httpBody(port)` returns the contents of the `http {}` block, listening on 127.0.0.1:port. */
  static async start(httpBody: (port: number) => string): Promise<Nginx> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'grove-nginx-'));
    const port = await freePort();
    const temp = (name: string) => `${name}_temp_path ${path.join(dir, name)};`;
    await writeFile(path.join(dir, 'nginx.conf'), [
      'daemon off;', 'master_process off;', 'worker_processes 1;', `pid ${path.join(dir, 'nginx.pid')};`, `error_log ${path.join(dir, 'error.log')} error;`,
      'events { worker_connections 1024; }',
      'http {', `access_log off;`, ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp), httpBody(port), '}',
    ].join('\n'));
    const child = spawn(NGINX, ['-p', `${dir}/`, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const nginx = new Nginx(`http://127.0.0.1:${port}`, child, dir);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const up = await new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (up) return nginx;
      if (child.exitCode !== null || Date.now() > deadline) {
        const log = await readFile(path.join(dir, 'error.log'), 'utf8').catch(() => '');
        await nginx.stop();
        throw new Error(`nginx did not start:\n${stderr}\n${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null) {
      const exited = new Promise((resolve) => this.#child.once('exit', resolve));
      this.#child.kill('SIGKILL');
      await exited;
    }
    await rm(this.#dir, { recursive: true, force: true });
  }
}
