/**
 * A real Git server on loopback for remote-sync tests: `git http-backend` (CGI) behind a
 * small Node HTTP server, with HTTP Basic authentication against tokens the test sets (so
 * a test can revoke or rotate one), a log of the requests it served, and knobs a test needs
 * (refuse every request; a ref the server refuses to update, as a protected branch).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gitOk } from './git.ts';

export interface RemoteRequest {
  readonly method: string;
  readonly path: string;
  readonly service: string | null;
  readonly user: string | null;
  readonly status: number;
  readonly authorization: string | undefined;
}

export class GitRemote {
  readonly url: string;
  readonly root: string;
  readonly requests: RemoteRequest[] = [];
  /** user → password (token) accepted; empty map = no authentication required. */
  readonly tokens = new Map<string, string>();
  /** When set, every request is answered with this status. */
  failWith: number | null = null;
  /** Milliseconds every upload-pack POST waits before it is served (a slow remote). */
  uploadDelayMs = 0;
  readonly #server: http.Server;

  private constructor(server: http.Server, root: string) {
    this.#server = server;
    this.root = root;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(): Promise<GitRemote> {
    const root = await mkdtemp(path.join(os.tmpdir(), 'grove-remote-'));
    let remote: GitRemote | undefined;
    const server = http.createServer((request, response) => remote!.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    remote = new GitRemote(server, root);
    return remote;
  }

  /** A new bare repository `<name>.git`; returns its clone URL. */
  async createRepo(name: string): Promise<string> {
    await gitOk(['init', '--bare', '-q', '-b', 'main', this.gitDir(name)]);
    return this.repoUrl(name);
  }

  repoUrl(name: string): string {
    return `${this.url}/${name}.git`;
  }

  gitDir(name: string): string {
    return path.join(this.root, `${name}.git`);
  }

  /** A clone URL carrying the accepted credential (for the test's own git client). */
  authedUrl(name: string): string {
    const [user, token] = [...this.tokens][0] ?? [];
    if (user === undefined) return this.repoUrl(name);
    return `${this.url.replace('http://', `http://${encodeURIComponent(user)}:${encodeURIComponent(token!)}@`)}/${name}.git`;
  }

  /** Refuses updates of `ref` in repository `name` with `message` (a protected branch). */
  async protect(name: string, ref: string, message: string): Promise<void> {
    const hook = path.join(this.gitDir(name), 'hooks', 'update');
    await writeFile(hook, `#!/bin/sh\nif [ "$1" = "${ref}" ]; then echo "${message}" >&2; exit 1; fi\nexit 0\n`);
    await chmod(hook, 0o755);
  }

  /** Requests for a service (`git-upload-pack`, `git-receive-pack`) since `since`. */
  served(service: string, since = 0): number {
    return this.requests.slice(since).filter((r) => r.service === service && r.method === 'POST').length;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await rm(this.root, { recursive: true, force: true });
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    if (this.uploadDelayMs > 0 && request.method === 'POST' && request.url?.endsWith('/git-upload-pack')) {
      request.pause();
      setTimeout(() => this.serve(request, response), this.uploadDelayMs);
      return;
    }
    this.serve(request, response);
  }

  private serve(request: http.IncomingMessage, response: http.ServerResponse): void {
    const url = new URL(request.url ?? '/', this.url);
    const service = url.searchParams.get('service') ?? (/\/(git-upload-pack|git-receive-pack)$/.exec(url.pathname)?.[1] ?? null);
    const record = (status: number, user: string | null) => this.requests.push({ method: request.method ?? 'GET', path: url.pathname, service, user, status, authorization: request.headers.authorization });
    if (this.failWith !== null) {
      record(this.failWith, null);
      response.writeHead(this.failWith).end('refused by the test\n');
      return;
    }
    let user: string | null = null;
    if (this.tokens.size > 0) {
      const match = /^Basic (.+)$/.exec(request.headers.authorization ?? '');
      const [name, ...rest] = match ? Buffer.from(match[1]!, 'base64').toString('utf8').split(':') : [];
      if (name === undefined || this.tokens.get(name) !== rest.join(':')) {
        record(401, null);
        response.writeHead(401, { 'WWW-Authenticate': 'Basic realm="test remote"' }).end('authentication required\n');
        return;
      }
      user = name;
    }
    const child = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: this.root,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_CONFIG_COUNT: '1',
        GIT_CONFIG_KEY_0: 'http.receivepack',
        GIT_CONFIG_VALUE_0: 'true',
        GIT_PROJECT_ROOT: this.root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: request.method ?? 'GET',
        CONTENT_TYPE: request.headers['content-type'] ?? '',
        REMOTE_USER: user ?? 'anonymous',
        REMOTE_ADDR: '127.0.0.1',
        ...(request.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(request.headers['content-encoding']) } : {}),
        ...(request.headers['git-protocol'] ? { GIT_PROTOCOL: String(request.headers['git-protocol']) } : {}),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    request.pipe(child.stdin);
    child.stdin.on('error', () => {});
    child.stderr.resume();
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) return void response.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      record(status, user);
      response.writeHead(status, headers);
      response.write(head.subarray(end + 4));
    });
    child.on('close', () => {
      if (!headersDone) {
        record(500, user);
        response.writeHead(500).end();
      } else response.end();
    });
  }
}
