/**
 * A Grove server and a real git remote (git http-backend on loopback) for remote-sync tests,
 * with the calls those tests make: the REST API as raw JSON (so the error envelope is checked
 * too), work trees that push to either side, and the refs each side has.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { startTestServer, type TestServer } from './server.ts';
import { GitRemote } from './git-remote.ts';
import { commitFile, git, gitOk, initWorkRepo } from './git.ts';

export const REMOTE_USER = 'sync-bot';
export const REMOTE_TOKEN = 'tok_remote_secret_5b1f0c9a7d';

/** Loopback remotes over plain http: allowed for tests only. */
export const SYNC_TEST_ENV = { GROVE_ALLOWED_OUTBOUND: '127.0.0.1', GROVE_ALLOW_INSECURE_REMOTES: 'true', GROVE_SYNC_POLL_SECONDS: '3600' };

export interface ApiAnswer {
  readonly status: number;
  readonly json: any;
}

export class SyncRig {
  readonly grove: TestServer;
  readonly remote: GitRemote;
  readonly workRoot: string;
  #trees = 0;

  private constructor(grove: TestServer, remote: GitRemote, workRoot: string) {
    this.grove = grove;
    this.remote = remote;
    this.workRoot = workRoot;
  }

  static async start(workRoot: string, env: Record<string, string> = {}): Promise<SyncRig> {
    const grove = await startTestServer({ ...SYNC_TEST_ENV, ...env });
    const remote = await GitRemote.start();
    remote.tokens.set(REMOTE_USER, REMOTE_TOKEN);
    return new SyncRig(grove, remote, workRoot);
  }

  async close(): Promise<void> {
    await this.grove.close();
    await this.remote.close();
  }

  async api(method: string, route: string, body?: unknown, token = this.grove.token): Promise<ApiAnswer> {
    const response = await fetch(`${this.grove.url}/api/v1${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, json: text === '' ? null : JSON.parse(text) };
  }

  /** The API answer, asserting its status. */
  async ok(method: string, route: string, body?: unknown, status = 200): Promise<any> {
    const answer = await this.api(method, route, body);
    assert.equal(answer.status, status, `${method} ${route}: ${answer.status} ${JSON.stringify(answer.json)}`);
    return answer.json;
  }

  /** A credential for the remote in `org`; its id. */
  async credential(org: string, name = 'remote-bot', secret = REMOTE_TOKEN): Promise<string> {
    const created = await this.ok('POST', `/orgs/${org}/credentials`, { name, kind: 'basic', username: REMOTE_USER, secret }, 201);
    return created.id as string;
  }

  /** Attaches `url` as upstream `origin` of org/repo and waits for the first run; the upstream. */
  async attach(org: string, repo: string, url: string, settings: Record<string, unknown> = {}, name = 'origin'): Promise<any> {
    const upstream = await this.ok('PUT', `/repos/${org}/${repo}/upstreams/${name}`, { url, ...settings }, 201);
    await this.idle(upstream.id);
    return upstream;
  }

  idle(upstreamId: string): Promise<void> {
    return this.grove.server.sync.idle(upstreamId);
  }

  /** Queues a run and waits for it; the finished run. */
  async sync(org: string, repo: string, body: Record<string, unknown> = {}, name = 'origin'): Promise<any> {
    const run = await this.ok('POST', `/repos/${org}/${repo}/upstreams/${name}/syncs`, body, 202);
    const upstream = await this.ok('GET', `/repos/${org}/${repo}/upstreams/${name}`);
    await this.idle(upstream.id);
    return this.ok('GET', `/repos/${org}/${repo}/upstreams/${name}/syncs/${run.id}`);
  }

  /** A work tree on main; each commit() makes a new commit and returns its id. */
  async workTree(): Promise<{ dir: string; commit(file?: string, content?: string): Promise<string> }> {
    const dir = path.join(this.workRoot, `tree-${++this.#trees}`);
    await initWorkRepo(dir);
    let n = 0;
    return {
      dir,
      commit: (file = 'file.txt', content?: string) => commitFile(dir, file, content ?? `change ${++n} in ${dir}\n`, `change ${n}`),
    };
  }

  /** Grove's clone URL with the admin token. */
  groveUrl(org: string, repo: string): string {
    return `${this.grove.url.replace('http://', `http://x:${this.grove.token}@`)}/${org}/${repo}.git`;
  }

  /** What `git ls-remote` shows of a URL: ref → object id (HEAD and peeled tags left out). */
  async lsRemote(url: string): Promise<Map<string, string>> {
    const out = await gitOk(['ls-remote', url]);
    return new Map(out.trim().split('\n').filter((l) => l !== '' && !l.endsWith('^{}') && !l.endsWith('\tHEAD')).map((l) => {
      const [oid, ref] = l.split('\t') as [string, string];
      return [ref, oid];
    }));
  }

  /** The refs of the Grove repository on disk, hidden ones included. */
  async groveRefs(org: string, repo: string): Promise<Map<string, string>> {
    const row = await this.grove.sdk.repos.get(org, repo);
    const gitDir = this.grove.server.repos.gitDir(row.id);
    const out = await gitOk(['--git-dir', gitDir, 'for-each-ref', '--format=%(refname) %(objectname)']);
    return new Map(out.trim().split('\n').filter((l) => l !== '').map((l) => l.split(' ') as [string, string]));
  }

  async pushToRemote(dir: string, repo: string, refspecs: readonly string[], force = false): Promise<void> {
    await gitOk(['push', ...(force ? ['--force'] : []), this.remote.authedUrl(repo), ...refspecs], { cwd: dir });
  }

  async pushToGrove(dir: string, org: string, repo: string, refspecs: readonly string[]): Promise<{ code: number; stderr: string }> {
    return git(['push', this.groveUrl(org, repo), ...refspecs], { cwd: dir });
  }
}
