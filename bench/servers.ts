/**
 * The two servers under test, both on 127.0.0.1 only:
 * - Grove, as a child process (`grove serve`: the built package's command, or the clone's
 *   `node bin/grove.js serve`), so its memory is its own;
 * - the reference peer, `git http-backend` behind nginx + fcgiwrap, run as the current
 *   user with a generated config whose pid, logs and temp paths all live in the temp dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort, log, run, sleep, stopChild, track } from './util.ts';

// ---------------------------------------------------------------------------
// A small keep-alive JSON client (the API workloads use it too)

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  readonly ms: number;
}

export function httpRequest(
  agent: http.Agent | undefined,
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const u = new URL(url);
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(options.body));
    }
    const req = http.request({ agent, host: u.hostname, port: u.port, path: u.pathname + u.search, method: options.method ?? 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.setTimeout(options.timeoutMs ?? 30_000, () => req.destroy(new Error(`${options.method ?? 'GET'} ${url}: timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

function tailBuffer(limit = 16_384): { push(chunk: Buffer): void; text(): string } {
  let text = '';
  return {
    push(chunk) {
      text = (text + chunk.toString('utf8')).slice(-limit);
    },
    text: () => text,
  };
}

// ---------------------------------------------------------------------------
// Grove

export interface GroveServer {
  readonly url: string;
  readonly token: string;
  readonly pid: number;
  readonly dataDir: string;
  readonly child: ChildProcess;
  readonly authHeaders: Readonly<Record<string, string>>;
  output(): string;
  /** The bare repository directory of a repo id (data/repos/<xx>/<id>.git). */
  repoDir(id: string): Promise<string>;
  stop(): Promise<void>;
}

export interface GroveStartOptions {
  readonly env?: Readonly<Record<string, string>>;
  /** The grove command: a script for this Node (default the clone's bin/grove.js), or an executable. */
  readonly bin?: string;
  /** Whether `bin` runs by its own shebang (the installed package's bin) rather than as `node bin`. */
  readonly executable?: boolean;
}

export async function startGrove(projectRoot: string, dataDir: string, token: string, options: GroveStartOptions = {}): Promise<GroveServer> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('GROVE_')) env[key] = value;
  // This Node first on the PATH, so an executable bin's `#!/usr/bin/env node` finds it.
  env.PATH = `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`;
  Object.assign(env, { GROVE_ADMIN_TOKEN: token, GROVE_LOG_LEVEL: 'error', GROVE_SHUTDOWN_GRACE_MS: '3000' }, options.env);
  const bin = options.bin ?? path.join(projectRoot, 'bin/grove.js');
  const args = ['serve', '--data', dataDir, '--listen', `127.0.0.1:${port}`];
  const child = spawn(options.executable ? bin : process.execPath, options.executable ? args : [bin, ...args], {
    cwd: projectRoot,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child, true);
  const out = tailBuffer();
  child.stdout?.on('data', (c: Buffer) => out.push(c));
  child.stderr?.on('data', (c: Buffer) => out.push(c));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`grove exited during startup (${child.exitCode ?? child.signalCode}):\n${out.text()}`);
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`grove did not answer /healthz within 60 s:\n${out.text()}`);
    }
    try {
      const answer = await httpRequest(undefined, `${url}/healthz`, { timeoutMs: 2000 });
      if (answer.status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return {
    url,
    token,
    pid: child.pid!,
    dataDir,
    child,
    authHeaders: { Authorization: `Bearer ${token}` },
    output: () => out.text(),
    async repoDir(id: string) {
      const reposRoot = path.join(dataDir, 'repos');
      const guess = path.join(reposRoot, id.slice(-2), `${id}.git`);
      if (existsSync(guess)) return guess;
      for (const sub of await readdir(reposRoot)) {
        const candidate = path.join(reposRoot, sub, `${id}.git`);
        if (existsSync(candidate)) return candidate;
      }
      throw new Error(`repository ${id} not found under ${reposRoot}`);
    },
    stop: () => stopChild(child, 8000),
  };
}

// ---------------------------------------------------------------------------
// The peer: git http-backend behind nginx + fcgiwrap

export const NGINX = '/usr/sbin/nginx';
export const FCGIWRAP = '/usr/sbin/fcgiwrap';

export interface PeerAvailability {
  readonly ok: boolean;
  readonly message: string;
  readonly httpBackend: string;
}

async function httpBackendPath(): Promise<string> {
  const execPath = (await run('git', ['--exec-path'], { timeoutMs: 10_000 })).stdout.trim();
  return path.join(execPath, 'git-http-backend');
}

/** Finds nginx and fcgiwrap; installs them with apt-get when missing and running as root. */
export async function ensurePeer(): Promise<PeerAvailability> {
  const httpBackend = await httpBackendPath();
  if (!existsSync(httpBackend)) return { ok: false, message: `git-http-backend not found at ${httpBackend}`, httpBackend };
  const present = (): boolean => existsSync(NGINX) && existsSync(FCGIWRAP);
  if (present()) return { ok: true, message: 'nginx and fcgiwrap found', httpBackend };
  if (process.getuid?.() !== 0) {
    return { ok: false, message: `${NGINX} or ${FCGIWRAP} is missing and this is not root: install them with \`apt-get install -y nginx fcgiwrap\``, httpBackend };
  }
  log('nginx/fcgiwrap missing: apt-get install -y nginx fcgiwrap');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let result = await run('apt-get', ['install', '-y', 'nginx', 'fcgiwrap'], { env, timeoutMs: 600_000 });
  if (result.code !== 0) {
    log('apt-get install failed; running apt-get update and trying again');
    await run('apt-get', ['update'], { env, timeoutMs: 300_000 });
    result = await run('apt-get', ['install', '-y', 'nginx', 'fcgiwrap'], { env, timeoutMs: 600_000 });
  }
  if (present()) return { ok: true, message: 'nginx and fcgiwrap installed with apt-get', httpBackend };
  return { ok: false, message: `apt-get install -y nginx fcgiwrap failed (exit ${result.code}): ${result.stderr.trim().split('\n').slice(-3).join(' / ')}`, httpBackend };
}

export interface PeerServer {
  readonly url: string;
  readonly projectRoot: string;
  readonly nginxPid: number;
  readonly fcgiwrapPid: number;
  readonly fcgiChildren: number;
  readonly nginxVersion: string;
  output(): string;
  stop(): Promise<void>;
}

export async function startPeer(dir: string, projectRoot: string, httpBackend: string, fcgiChildren: number): Promise<PeerServer> {
  await mkdir(dir, { recursive: true });
  await mkdir(projectRoot, { recursive: true });
  const home = path.join(dir, 'home');
  await mkdir(home, { recursive: true });
  const sock = path.join(dir, 'fcgiwrap.sock');
  const out = tailBuffer();

  // fcgiwrap: N preforked workers, each runs one CGI request at a time.
  const fcgi = spawn(FCGIWRAP, ['-c', String(fcgiChildren), '-s', `unix:${sock}`], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(fcgi, true);
  fcgi.stdout?.on('data', (c: Buffer) => out.push(c));
  fcgi.stderr?.on('data', (c: Buffer) => out.push(c));
  for (let i = 0; i < 100 && !existsSync(sock); i++) {
    if (fcgi.exitCode !== null) break;
    await sleep(50);
  }
  if (!existsSync(sock)) {
    await stopChild(fcgi);
    throw new Error(`fcgiwrap did not create ${sock}:\n${out.text()}`);
  }

  const port = await freePort();
  const user = os.userInfo().username;
  const conf = `# generated by bench/servers.ts
${process.getuid?.() === 0 ? `user ${user};` : '# not root: workers run as the current user'}
worker_processes ${os.availableParallelism()};
daemon off;
master_process on;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'nginx-error.log')} error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${path.join(dir, 'client_body')};
  fastcgi_temp_path ${path.join(dir, 'fastcgi_temp')};
  proxy_temp_path ${path.join(dir, 'proxy_temp')};
  uwsgi_temp_path ${path.join(dir, 'uwsgi_temp')};
  scgi_temp_path ${path.join(dir, 'scgi_temp')};
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:${port};
    location / {
      fastcgi_pass unix:${sock};
      fastcgi_buffering off;
      fastcgi_read_timeout 600s;
      fastcgi_send_timeout 600s;
      fastcgi_param SCRIPT_FILENAME ${httpBackend};
      fastcgi_param GIT_PROJECT_ROOT ${projectRoot};
      fastcgi_param GIT_HTTP_EXPORT_ALL 1;
      fastcgi_param GIT_PROTOCOL $http_git_protocol;
      fastcgi_param GIT_CONFIG_NOSYSTEM 1;
      fastcgi_param HOME ${home};
      fastcgi_param PATH ${process.env.PATH ?? '/usr/bin:/bin'};
      fastcgi_param PATH_INFO $uri;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param REQUEST_URI $request_uri;
      fastcgi_param SCRIPT_NAME /;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_param SERVER_SOFTWARE nginx;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param SERVER_ADDR $server_addr;
      fastcgi_param SERVER_PORT $server_port;
      fastcgi_param SERVER_NAME $server_name;
    }
  }
}
`;
  const confPath = path.join(dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const nginx = spawn(NGINX, ['-p', `${dir}/`, '-e', path.join(dir, 'nginx-error.log'), '-c', confPath], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(nginx, true);
  nginx.stdout?.on('data', (c: Buffer) => out.push(c));
  nginx.stderr?.on('data', (c: Buffer) => out.push(c));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (nginx.exitCode !== null || nginx.signalCode !== null) {
      await stopChild(fcgi);
      throw new Error(`nginx exited during startup:\n${out.text()}`);
    }
    if (Date.now() > deadline) {
      await stopChild(nginx);
      await stopChild(fcgi);
      throw new Error(`nginx did not listen on ${url} within 20 s:\n${out.text()}`);
    }
    try {
      const answer = await httpRequest(undefined, `${url}/`, { timeoutMs: 2000 });
      if (answer.status > 0) break;
    } catch {
      // not yet
    }
    await sleep(100);
  }
  const version = await run(NGINX, ['-v'], { timeoutMs: 10_000 });
  const nginxVersion = (version.stderr + version.stdout).trim().replace(/^nginx version:\s*/, '');
  return {
    url,
    projectRoot,
    nginxPid: nginx.pid!,
    fcgiwrapPid: fcgi.pid!,
    fcgiChildren,
    nginxVersion,
    output: () => out.text(),
    async stop() {
      // QUIT would wait for keep-alive clients; TERM is nginx's fast shutdown.
      await stopChild(nginx, 5000, 'SIGTERM');
      await stopChild(fcgi, 5000, 'SIGTERM');
    },
  };
}

// ---------------------------------------------------------------------------
// The replay server (client ceiling)

export interface ReplayServer {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startReplay(projectRoot: string, bodyFile: string, contentType: string): Promise<ReplayServer> {
  const child = spawn(process.execPath, [path.join(projectRoot, 'bench', 'replay-server.ts'), bodyFile, contentType], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  track(child, true);
  const out = tailBuffer();
  child.stderr?.on('data', (c: Buffer) => out.push(c));
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`replay server did not start: ${out.text()}`)), 15_000);
    child.stdout?.on('data', (c: Buffer) => {
      text += c.toString('utf8');
      const match = /^(\d+)\n/.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`replay server exited (${code}): ${out.text()}`));
    });
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: () => stopChild(child, 3000) };
}
