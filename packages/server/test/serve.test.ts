import { onPostgres } from './helpers/database.ts';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { daemonEnv, freePort, killAllDaemons, spawnServe, startDaemon, stopDaemon, type Daemon } from './helpers/daemon.ts';
import { auth, commitFile, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

const GENERATED_TOKEN = /grove_[A-Za-z0-9_-]{43}/g;

/** Starts the daemon and waits for its "listening" line too (the banner is written before it). */
function startServe(dataDir: string, env: NodeJS.ProcessEnv = daemonEnv()): Promise<Daemon> {
  return startDaemon({ dataDir, env, waitFor: 'grove is listening' });
}

async function getOrgs(url: string, token: string): Promise<number> {
  const response = await fetch(`${url}/api/v1/orgs`, { headers: { authorization: `Bearer ${token}` } });
  await response.arrayBuffer();
  return response.status;
}

async function post(url: string, token: string, body: unknown): Promise<any> {
  const response = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await response.json();
  assert.equal(response.status, 201, JSON.stringify(json));
  return json;
}

describe('grove serve as a process', () => {
  let root: string;
  let dataDir: string;
  let generatedToken: string;
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'grove-serve-'));
    // a data directory that does not exist yet: serve creates it
    dataDir = path.join(root, 'nested', 'data');
  });
  after(async () => {
    killAllDaemons();
    await rm(root, { recursive: true, force: true });
  });

  it('generates an admin token on first start, prints it once on stdout, saves it with mode 0600 and answers /healthz', async () => {
    const daemon = await startServe(dataDir);
    try {
      const printed = daemon.stdout().match(GENERATED_TOKEN) ?? [];
      assert.equal(printed.length, 1, `expected the token exactly once on stdout:\n${daemon.stdout()}`);
      generatedToken = printed[0]!;
      assert.match(daemon.stdout(), /shown only this once/);
      assert.ok(!daemon.stderr().includes(generatedToken), 'the token leaked to stderr');
      const file = path.join(dataDir, 'admin-token');
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.equal((await readFile(file, 'utf8')).trim(), generatedToken);
      assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
      assert.equal(await getOrgs(daemon.url, generatedToken), 200);
      assert.equal(await getOrgs(daemon.url, 'grove_not-the-token'), 401);
      const health = await fetch(`${daemon.url}/healthz`);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: 'ok' });
      const metrics = await fetch(`${daemon.url}/metrics`);
      assert.equal(metrics.status, 200);
      const exposition = await metrics.text();
      assert.match(exposition, /grove_git_processes_running/);
      assert.match(exposition, /^grove_process_cpu_seconds_total /m);
      assert.match(exposition, /^grove_nodejs_eventloop_lag_seconds /m);
      assert.doesNotMatch(exposition, /grove_process_process_|grove_process_nodejs_/, 'a metric name repeats its family');
    } finally {
      const exit = await stopDaemon(daemon);
      assert.deepEqual(exit, { code: 0, signal: null });
    }
    // nothing after the banner repeats the token (e.g. a shutdown log line)
    assert.equal((daemon.stdout().match(GENERATED_TOKEN) ?? []).length, 1);
  });

  it('does not print a token on a second start and keeps accepting the saved one', async () => {
    const daemon = await startServe(dataDir);
    try {
      assert.equal(await getOrgs(daemon.url, generatedToken), 200);
      assert.doesNotMatch(daemon.stdout(), GENERATED_TOKEN);
      assert.doesNotMatch(daemon.stdout(), /generated the root admin token/);
      assert.equal((await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim(), generatedToken);
    } finally {
      assert.deepEqual(await stopDaemon(daemon), { code: 0, signal: null });
    }
  });

  it('keeps its metadata in <data>/grove.db (or the PostgreSQL database it is given) and bare repositories under <data>/repos/, across restarts', async () => {
    let daemon = await startServe(dataDir);
    let repo: any;
    await using work = await tempDir();
    const source = path.join(work.path, 'src');
    await initWorkRepo(source);
    const head = await commitFile(source, 'README.md', 'persisted\n', 'first');
    try {
      await post(`${daemon.url}/api/v1/orgs`, generatedToken, { name: 'acme' });
      repo = await post(`${daemon.url}/api/v1/orgs/acme/repos`, generatedToken, { name: 'app' });
      assert.equal(repo.cloneUrl, `${daemon.url}/acme/app.git`);
      await gitOk([...auth(generatedToken), 'push', repo.cloneUrl, 'main'], { cwd: source });
    } finally {
      assert.deepEqual(await stopDaemon(daemon), { code: 0, signal: null });
    }
    if (onPostgres) await assert.rejects(stat(path.join(dataDir, 'grove.db')), { code: 'ENOENT' }, 'no SQLite file beside a PostgreSQL database');
    else assert.ok((await stat(path.join(dataDir, 'grove.db'))).isFile());
    const gitDir = path.join(dataDir, 'repos', repo.id.slice(-2), `${repo.id}.git`);
    assert.equal((await gitOk(['rev-parse', '--is-bare-repository'], { env: { GIT_DIR: gitDir } })).trim(), 'true');
    assert.equal((await gitOk(['rev-parse', 'refs/heads/main'], { env: { GIT_DIR: gitDir } })).trim(), head);

    // a repository directory without a row (a crash between the disk and the database) is removed at start
    const orphanId = 'feedfacefeedfacefeedfacefeedfa77';
    const orphan = path.join(dataDir, 'repos', '77', `${orphanId}.git`);
    await gitOk(['init', '-q', '--bare', orphan]);

    // a restart on another port sees the same org, repository and history
    daemon = await startServe(dataDir);
    await assert.rejects(stat(orphan), { code: 'ENOENT' });
    assert.ok((await stat(gitDir)).isDirectory(), 'the repository with a row stays');
    try {
      const response = await fetch(`${daemon.url}/api/v1/repos/acme/app`, { headers: { authorization: `Bearer ${generatedToken}` } });
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as { id: string }).id, repo.id);
      const clone = path.join(work.path, 'clone');
      await gitOk([...auth(generatedToken), 'clone', '-q', `${daemon.url}/acme/app.git`, clone]);
      assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: clone })).trim(), head);
    } finally {
      assert.deepEqual(await stopDaemon(daemon), { code: 0, signal: null });
    }
  });

  it('uses GROVE_ADMIN_TOKEN as given, printing and saving nothing', async () => {
    const dir = path.join(root, 'env-token');
    const token = 'grove_env_admin_token_for_tests_0123';
    const daemon = await startServe(dir, daemonEnv({ GROVE_ADMIN_TOKEN: token }));
    try {
      assert.equal(await getOrgs(daemon.url, token), 200);
      assert.equal(await getOrgs(daemon.url, `${token}x`), 401);
      assert.doesNotMatch(daemon.stdout(), /generated the root admin token/);
      assert.ok(!daemon.stdout().includes(token), 'the configured token was printed');
      assert.ok(!daemon.stderr().includes(token), 'the configured token was printed');
      await assert.rejects(stat(path.join(dir, 'admin-token')), { code: 'ENOENT' });
    } finally {
      assert.deepEqual(await stopDaemon(daemon), { code: 0, signal: null });
    }
  });

  it('prefers GROVE_ADMIN_TOKEN over a token saved in the data directory', async () => {
    const token = 'grove_env_overrides_saved_token_42';
    const daemon = await startServe(dataDir, daemonEnv({ GROVE_ADMIN_TOKEN: token }));
    try {
      assert.equal(await getOrgs(daemon.url, token), 200);
      assert.equal(await getOrgs(daemon.url, generatedToken), 401);
      assert.equal((await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim(), generatedToken);
    } finally {
      assert.deepEqual(await stopDaemon(daemon), { code: 0, signal: null });
    }
  });

  it('uses a token written into <data>/admin-token before the first start', async () => {
    const dir = path.join(root, 'preseeded');
    const token = 'grove_preseeded_token_for_the_tests';
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'admin-token'), `${token}\n`, { mode: 0o600 });
    const daemon = await startServe(dir);
    try {
      assert.equal(await getOrgs(daemon.url, token), 200);
      assert.doesNotMatch(daemon.stdout(), GENERATED_TOKEN);
    } finally {
      assert.deepEqual(await stopDaemon(daemon), { code: 0, signal: null });
    }
  });

  // Regression: Ajv used to warn on stderr about the union-typed body schemas (ttl, publicKey)
  // at every start. A clean start leaves stderr empty (the daemon logs JSON to stdout).
  it('logs JSON lines when stdout is not a terminal, and one plain-text line per event with GROVE_LOG_FORMAT=pretty', async () => {
    const json = await startServe(dataDir);
    await stopDaemon(json);
    const jsonLines = json.stdout().split('\n').filter((line) => line.startsWith('{'));
    assert.ok(jsonLines.some((line) => (JSON.parse(line) as { msg?: string }).msg === 'grove is listening'), json.stdout());
    const pretty = await startServe(dataDir, daemonEnv({ GROVE_LOG_FORMAT: 'pretty' }));
    await stopDaemon(pretty);
    const listening = pretty.stdout().split('\n').find((line) => line.includes('grove is listening'));
    assert.match(listening ?? '', /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: grove is listening \{"url":"http:\/\/127\.0\.0\.1:\d+"/, pretty.stdout());
    assert.ok(!pretty.stdout().includes('"level":30'), 'pretty output still had JSON lines');
  });

  it('refuses an unknown GROVE_LOG_FORMAT with exit 1', async () => {
    const daemon = spawnServe(['--data', path.join(root, 'unused'), '--listen', '127.0.0.1:0'], { env: daemonEnv({ GROVE_LOG_FORMAT: 'xml' }) });
    assert.deepEqual(await daemon.exited, { code: 1, signal: null });
    assert.match(daemon.stderr(), /GROVE_LOG_FORMAT must be one of json, pretty, auto/);
  });

  it('writes nothing to stderr during a clean start and stop', async () => {
    const daemon = await startServe(dataDir);
    assert.equal(await getOrgs(daemon.url, generatedToken), 200);
    assert.deepEqual(await stopDaemon(daemon), { code: 0, signal: null });
    assert.equal(daemon.stderr(), '');
  });

  it('keeps serving and exits 0 on SIGTERM after the reader of its stdout has gone away (grove serve | head)', async () => {
    const daemon = await startServe(dataDir);
    daemon.child.stdout!.destroy();
    // requests are logged to the broken pipe
    for (let i = 0; i < 3; i++) assert.equal(await getOrgs(daemon.url, generatedToken), 200);
    assert.deepEqual(await stopDaemon(daemon), { code: 0, signal: null });
  });

  it('exits 0 on SIGINT as well as SIGTERM', async () => {
    const daemon = await startServe(dataDir);
    assert.deepEqual(await stopDaemon(daemon, 'SIGINT'), { code: 0, signal: null });
  });

  it('exits 0 on SIGTERM promptly while a client holds an idle keep-alive connection', async () => {
    const daemon = await startServe(dataDir);
    const agent = new http.Agent({ keepAlive: true });
    try {
      await new Promise<void>((resolve, reject) => {
        http.request(`${daemon.url}/healthz`, { agent }, (response) => {
          response.resume();
          response.once('end', resolve);
        }).once('error', reject).end();
      });
      const started = Date.now();
      assert.deepEqual(await stopDaemon(daemon), { code: 0, signal: null });
      assert.ok(Date.now() - started < 5000, `shutdown took ${Date.now() - started} ms`);
    } finally {
      agent.destroy();
    }
  });

  it('on SIGTERM lets an in-flight git request finish, then exits 0', async () => {
    const daemon = await startServe(dataDir);
    // a protocol v2 ls-refs request whose body is still being sent when SIGTERM arrives
    const req = http.request(`${daemon.url}/acme/app.git/git-upload-pack`, {
      method: 'POST',
      // no keep-alive: this test is about the request, not about idle connections
      agent: false,
      headers: {
        authorization: `Bearer ${generatedToken}`,
        'content-type': 'application/x-git-upload-pack-request',
        'git-protocol': 'version=2',
        'transfer-encoding': 'chunked',
      },
    });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.once('response', (res) => {
        let body = '';
        res.setEncoding('latin1').on('data', (chunk: string) => (body += chunk)).once('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.once('error', reject);
    });
    req.write('0014command=ls-refs\n');
    req.flushHeaders();
    await new Promise((resolve) => setTimeout(resolve, 300));
    daemon.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(daemon.child.exitCode, null, 'grove exited with a request in flight');
    req.end('00010000');
    const answer = await response;
    assert.equal(answer.status, 200);
    assert.match(answer.body, /^[0-9a-f]{4}[0-9a-f]{40} refs\/heads\/main$/m);
    assert.ok(answer.body.endsWith('0000'), answer.body);
    const timer = setTimeout(() => daemon.child.kill('SIGKILL'), 15_000);
    const exit = await daemon.exited;
    clearTimeout(timer);
    assert.deepEqual(exit, { code: 0, signal: null });
  });

  // Regression: a keep-alive connection whose request was in flight at SIGTERM used to be
  // left open, holding shutdown until the client hung up or the grace period ran out.
  it('on SIGTERM answers an in-flight keep-alive request with Connection: close and exits without waiting for the client', async () => {
    const daemon = await startServe(dataDir, daemonEnv({ GROVE_SHUTDOWN_GRACE_MS: '20000' }));
    const agent = new http.Agent({ keepAlive: true });
    try {
      const req = http.request(`${daemon.url}/api/v1/orgs`, {
        agent,
        method: 'POST',
        headers: { authorization: `Bearer ${generatedToken}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      });
      const response = new Promise<http.IncomingMessage>((resolve, reject) => {
        req.once('response', (res) => res.resume().once('end', () => resolve(res)));
        req.once('error', reject);
      });
      req.write('{"name":');
      req.flushHeaders();
      await new Promise((resolve) => setTimeout(resolve, 300));
      daemon.child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 300));
      req.end('"late-org"}');
      const res = await response;
      assert.equal(res.statusCode, 201);
      const exit = await Promise.race([daemon.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 3000))]);
      assert.deepEqual(exit, { code: 0, signal: null }, 'grove was still running 3 s after its last request finished');
      assert.equal(res.headers.connection, 'close');
    } finally {
      agent.destroy();
      const timer = setTimeout(() => daemon.child.kill('SIGKILL'), 15_000);
      await daemon.exited;
      clearTimeout(timer);
    }
  });

  it('refuses a malformed --listen value with exit 1 and a message naming the expected HOST:PORT', async () => {
    const cases = [['nonsense', /must be HOST:PORT/], ['127.0.0.1:99999', /out of range/], ['127.0.0.1:', /must be HOST:PORT/]] as const;
    const daemons = cases.map(([listen]) => spawnServe(['--data', path.join(root, 'unused'), '--listen', listen], { env: daemonEnv() }, 0));
    for (const [i, [listen, message]] of cases.entries()) {
      const daemon = daemons[i]!;
      const exit = await daemon.exited;
      assert.equal(exit.code, 1, `${listen}: ${daemon.stdout()} ${daemon.stderr()}`);
      assert.match(daemon.stderr(), /^grove: /);
      assert.match(daemon.stderr(), message);
      assert.equal(daemon.stdout(), '');
    }
    await assert.rejects(stat(path.join(root, 'unused')), { code: 'ENOENT' });
  });

  it('refuses a GROVE_ADMIN_TOKEN shorter than 16 characters with exit 1', async () => {
    const daemon = spawnServe(['--data', path.join(root, 'short'), '--listen', '127.0.0.1:0'], { env: daemonEnv({ GROVE_ADMIN_TOKEN: 'short' }) }, 0);
    const exit = await daemon.exited;
    assert.equal(exit.code, 1);
    assert.equal(daemon.stderr(), 'grove: GROVE_ADMIN_TOKEN must be at least 16 characters\n');
  });

  it('exits non-zero with a clear message when the port is already taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const daemon = spawnServe(['--data', dataDir, '--listen', `127.0.0.1:${port}`], { env: daemonEnv() }, port);
      const timer = setTimeout(() => daemon.child.kill('SIGKILL'), 15_000);
      const exit = await daemon.exited;
      clearTimeout(timer);
      assert.equal(exit.signal, null, `grove serve hung after failing to listen:\n${daemon.stdout()}\n${daemon.stderr()}`);
      assert.notEqual(exit.code, 0);
      assert.match(daemon.stderr(), /EADDRINUSE|in use/);
    } finally {
      blocker.close();
    }
  });
});
