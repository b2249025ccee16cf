/**
 * Access control as a git user sees it: the real git CLI against a real server, with
 * API keys, branch globs, repo ref policies and offline-signed tokens. Assertions are
 * on git's exit code and on the text it prints.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { mintToken, type CreateApiKeyInput, type Grant } from '@grove/sdk';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir, type GitRun } from './helpers/git.ts';

type WorkDir = Awaited<ReturnType<typeof tempDir>>;

const GIT_REASON_401 = /could not read Username|Authentication failed/;

/** `git ls-remote` output as `refname -> oid`. */
function parseLsRemote(stdout: string): Record<string, string> {
  const refs: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const [oid, name] = line.split('\t') as [string, string];
    refs[name] = oid;
  }
  return refs;
}

/** The lines of a push's stderr that report one ref (` * [new branch] …`, ` ! [remote rejected] …`). */
function refLines(result: GitRun): string[] {
  return result.stderr.split('\n').filter((line) => /^ [ *+\-!=] /.test(line));
}

/** A push that failed because a ref was refused, not because the transport broke. */
function assertRejectedCleanly(result: GitRun, what: string): void {
  assert.equal(result.code, 1, `${what}: exit ${result.code}\n${result.stderr}`);
  assert.match(result.stderr, /! \[remote rejected\]/, `${what}\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /fatal:|hung up|RPC failed|remote failure|bad band/, `${what}\n${result.stderr}`);
}

/** `http://host/org/repo.git` with a token as the Basic password (and any username). */
function withBasic(url: string, token: string): string {
  const parsed = new URL(url);
  parsed.username = 'agent';
  parsed.password = token;
  return parsed.toString();
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** A compact JWS signed with node:crypto, for claims mintToken refuses to produce. */
function signJwt(header: Record<string, unknown>, payload: Record<string, unknown>, privateKey: KeyObject): string {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  return `${input}.${base64url(sign(null, Buffer.from(input), privateKey))}`;
}

/** Raw GET of info/refs, to see status, headers and body exactly as the server sends them. */
async function infoRefs(url: string, service: 'git-upload-pack' | 'git-receive-pack', token?: string): Promise<{ status: number; authenticate: string | null; body: string }> {
  const response = await fetch(`${url}/info/refs?service=${service}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, authenticate: response.headers.get('www-authenticate'), body: await response.text() };
}

/** Shared fixture code: each describe block has its own server and work directory. */
class Fixture {
  grove!: TestServer;
  work!: WorkDir;
  #counter = 0;

  async start(): Promise<void> {
    this.grove = await startTestServer();
    this.work = await tempDir('grove-access-git-');
  }

  async stop(): Promise<void> {
    await this.grove.close();
    await this.work[Symbol.asyncDispose]();
  }

  dir(name: string): string {
    return path.join(this.work.path, `${name}-${++this.#counter}`);
  }

  async key(input: CreateApiKeyInput): Promise<{ id: string; token: string }> {
    const created = await this.grove.sdk.apiKeys.create(input);
    return { id: created.id, token: created.token };
  }

  /** Refs of a server repository, read with the root token. */
  async refs(url: string): Promise<Record<string, string>> {
    return parseLsRemote(await gitOk([...auth(this.grove.token), 'ls-remote', url]));
  }

  /** A new repository with two commits on main, pushed by root; the work repository has origin set to it. */
  async seeded(org: string, name: string): Promise<{ url: string; repo: string }> {
    const url = await this.grove.createRepo(org, name);
    const repo = this.dir(name);
    await initWorkRepo(repo);
    await commitFile(repo, 'README.md', `# ${name}\n`, 'initial commit');
    await commitFile(repo, 'file.txt', 'one\n', 'second commit');
    await gitOk(['remote', 'add', 'origin', url], { cwd: repo });
    await gitOk([...auth(this.grove.token), 'push', '-q', 'origin', 'main'], { cwd: repo });
    return { url, repo };
  }

  push(token: string, cwd: string, args: readonly string[]): Promise<GitRun> {
    return git([...auth(token), 'push', ...args], { cwd });
  }
}

describe('git access with API keys: who may clone and push', () => {
  const f = new Fixture();
  let app: { url: string; repo: string };
  let otherUrl: string;
  before(async () => {
    await f.start();
    app = await f.seeded('acme', 'app');
    otherUrl = (await f.seeded('acme', 'other')).url;
  });
  after(() => f.stop());

  it('clones with a read key limited to acme/app', async () => {
    const { token } = await f.key({ scope: 'read', resources: [{ org: 'acme', repo: 'app' }] });
    const clone = f.dir('read-clone');
    const result = await git([...auth(token), 'clone', app.url, clone]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: clone })).trim(), (await f.refs(app.url))['refs/heads/main']);
    assert.equal(await gitOk(['show', 'HEAD:file.txt'], { cwd: clone }), 'one\n');
  });

  it('clones with a read key given as the Basic password in the URL', async () => {
    const { token } = await f.key({ scope: 'read', resources: [{ org: 'acme' }] });
    const clone = f.dir('basic-clone');
    const result = await git(['clone', withBasic(app.url, token), clone]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await gitOk(['show', 'HEAD:README.md'], { cwd: clone }), '# app\n');
  });

  it('refuses a push with a read key at info/refs with HTTP 403, and git prints the reason as remote:', async () => {
    const { token } = await f.key({ scope: 'read', resources: [{ org: 'acme', repo: 'app' }] });
    const before = await f.refs(app.url);
    const raw = await infoRefs(app.url, 'git-receive-pack', token);
    assert.equal(raw.status, 403);
    assert.equal(raw.body, 'this key has scope read; write access is needed\n');

    const work = f.dir('read-push');
    await gitOk(['clone', '-q', app.repo, work]);
    await commitFile(work, 'change.txt', 'change\n', 'a change a read key may not push');
    const result = await f.push(token, work, [app.url, 'HEAD:main']);
    assert.equal(result.code, 128, result.stderr);
    assert.match(result.stderr, /^remote: this key has scope read; write access is needed$/m);
    assert.match(result.stderr, /fatal: unable to access '.*\/acme\/app\.git\/': The requested URL returned error: 403/);
    assert.deepEqual(refLines(result), [], 'no ref was even attempted');
    assert.deepEqual(await f.refs(app.url), before);
  });

  it('answers a request without credentials with 401 and WWW-Authenticate: Basic realm="grove", and git cannot clone', async () => {
    for (const service of ['git-upload-pack', 'git-receive-pack'] as const) {
      const raw = await infoRefs(app.url, service);
      assert.equal(raw.status, 401, service);
      assert.equal(raw.authenticate, 'Basic realm="grove"', service);
    }
    const result = await git(['clone', app.url, f.dir('anonymous')]);
    assert.equal(result.code, 128, result.stderr);
    assert.match(result.stderr, /could not read Username for 'http:\/\/127\.0\.0\.1:\d+': terminal prompts disabled/);
  });

  it('answers a wrong, a revoked, an expired and a malformed token with the same 401, and git cannot clone with any of them', async () => {
    const wrong = `grove_${randomBytes(32).toString('base64url')}`;
    const revoked = await f.key({ scope: 'read', resources: [{ org: 'acme' }] });
    await f.grove.sdk.apiKeys.revoke(revoked.id);
    const expired = await f.key({ scope: 'read', resources: [{ org: 'acme' }], ttl: '1s' });
    const works = await infoRefs(app.url, 'git-upload-pack', expired.token);
    assert.equal(works.status, 200, 'the 1 s key works before it expires');
    await delay(1500);
    const malformed = ['not-a-token', 'eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJhY21lIn0.c2ln', `${f.grove.token}x`];

    const reference = await infoRefs(app.url, 'git-upload-pack', wrong);
    assert.equal(reference.status, 401);
    assert.equal(reference.authenticate, 'Basic realm="grove"');
    for (const [label, token] of [['revoked', revoked.token], ['expired', expired.token], ...malformed.map((t) => ['malformed', t])] as const) {
      for (const service of ['git-upload-pack', 'git-receive-pack'] as const) {
        assert.deepEqual(await infoRefs(app.url, service, token), reference, `${label} token on ${service}`);
      }
    }
    for (const [label, token] of [['wrong', wrong], ['revoked', revoked.token], ['expired', expired.token]] as const) {
      const bearer = await git([...auth(token), 'clone', app.url, f.dir(`${label}-bearer`)]);
      assert.equal(bearer.code, 128, `${label}: ${bearer.stderr}`);
      assert.match(bearer.stderr, GIT_REASON_401, label);
      const basic = await git(['clone', withBasic(app.url, token), f.dir(`${label}-basic`)]);
      assert.equal(basic.code, 128, `${label}: ${basic.stderr}`);
      assert.match(basic.stderr, /fatal: Authentication failed for 'http:\/\/127\.0\.0\.1:\d+\/acme\/app\.git\/'/, label);
    }
  });

  it('makes revocation effective on the very next git request', async () => {
    const { id, token } = await f.key({ scope: 'write', resources: [{ org: 'acme', repo: 'app' }] });
    const lsRemote = () => git([...auth(token), 'ls-remote', app.url]);
    const first = await lsRemote();
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /\trefs\/heads\/main$/m);

    const response = await fetch(`${f.grove.url}/api/v1/keys/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${f.grove.token}` } });
    assert.equal(response.status, 204);

    const second = await lsRemote();
    assert.equal(second.code, 128, second.stderr);
    assert.match(second.stderr, GIT_REASON_401);
    const work = f.dir('revoked-push');
    await gitOk(['clone', '-q', app.repo, work]);
    await commitFile(work, 'late.txt', 'late\n', 'pushed after revocation');
    const push = await f.push(token, work, [app.url, 'HEAD:refs/heads/late']);
    assert.equal(push.code, 128, push.stderr);
    assert.match(push.stderr, GIT_REASON_401);
    assert.equal((await f.refs(app.url))['refs/heads/late'], undefined);
  });

  it('reports a repository outside the key\'s resources as not found (404), not forbidden', async () => {
    const { token } = await f.key({ scope: 'admin', resources: [{ org: 'acme', repo: 'app' }] });
    const clone = await git([...auth(token), 'clone', otherUrl, f.dir('other-clone')]);
    assert.equal(clone.code, 128, clone.stderr);
    assert.match(clone.stderr, /^remote: Repository acme\/other not found$/m);
    assert.match(clone.stderr, /fatal: repository 'http:\/\/127\.0\.0\.1:\d+\/acme\/other\.git\/' not found/);
    assert.doesNotMatch(clone.stderr, /403/);

    // The same answer as for a repository that does not exist at all, for both services.
    for (const service of ['git-upload-pack', 'git-receive-pack'] as const) {
      const hidden = await infoRefs(otherUrl, service, token);
      const missing = await infoRefs(otherUrl.replace('/other.git', '/nonexistent.git'), service, token);
      assert.equal(hidden.status, 404, service);
      assert.equal(missing.status, 404, service);
      assert.equal(hidden.body.replace('other', 'X'), missing.body.replace('nonexistent', 'X'), service);
    }
    const push = await f.push(token, app.repo, [otherUrl, 'HEAD:refs/heads/sneaky']);
    assert.equal(push.code, 128, push.stderr);
    assert.match(push.stderr, /fatal: repository '.*\/acme\/other\.git\/' not found/);
  });

  it('applies the same checks when a client skips info/refs and POSTs to the service endpoints directly', async () => {
    const reader = await f.key({ scope: 'read', resources: [{ org: 'acme', repo: 'app' }] });
    const post = (url: string, service: string, token?: string) =>
      fetch(`${url}/${service}`, {
        method: 'POST',
        headers: { 'content-type': `application/x-${service}-request`, ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: '0000',
      });
    const anonymous = await post(app.url, 'git-upload-pack');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get('www-authenticate'), 'Basic realm="grove"');
    assert.equal((await post(app.url, 'git-upload-pack', reader.token)).status, 200);
    const receive = await post(app.url, 'git-receive-pack', reader.token);
    assert.equal(receive.status, 403);
    assert.equal(await receive.text(), 'this key has scope read; write access is needed\n');
    assert.equal((await post(otherUrl, 'git-upload-pack', reader.token)).status, 404);
    assert.equal((await post(otherUrl, 'git-receive-pack', reader.token)).status, 404);
  });

  it('reports every repository of another org as not found to a key of org acme', async () => {
    const theirs = await f.seeded('globex', 'secret');
    const { token } = await f.key({ scope: 'read', resources: [{ org: 'acme' }] });
    const clone = await git([...auth(token), 'clone', theirs.url, f.dir('globex-clone')]);
    assert.equal(clone.code, 128, clone.stderr);
    assert.match(clone.stderr, /^remote: Repository globex\/secret not found$/m);
    assert.match(clone.stderr, /fatal: repository '.*\/globex\/secret\.git\/' not found/);
  });
});

describe('git access with write keys limited to branch globs', () => {
  const f = new Fixture();
  let agentToken: string;
  let app: { url: string; repo: string };
  before(async () => {
    await f.start();
    app = await f.seeded('acme', 'app');
    agentToken = (await f.key({ scope: 'write', resources: [{ org: 'acme', repo: 'app', branches: ['agent-7/*'] }] })).token;
  });
  after(() => f.stop());

  it('pushes agent-7/fix with a write key limited to agent-7/*', async () => {
    const { url, repo } = app;
    const tip = await commitFile(repo, 'fix.txt', 'fix\n', 'the fix');
    const result = await f.push(agentToken, repo, [url, 'HEAD:refs/heads/agent-7/fix']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(refLines(result), [' * [new branch]      HEAD -> agent-7/fix']);
    assert.equal((await f.refs(url))['refs/heads/agent-7/fix'], tip);

    await commitFile(repo, 'fix.txt', 'fix 2\n', 'the fix, again');
    const update = await f.push(agentToken, repo, [url, 'HEAD:refs/heads/agent-7/fix']);
    assert.equal(update.code, 0, update.stderr);
    const deleted = await f.push(agentToken, repo, [url, ':refs/heads/agent-7/fix']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual(refLines(deleted), [' - [deleted]         agent-7/fix']);
  });

  it('rejects a push to main from a key limited to agent-7/*, with the reason git prints', async () => {
    const { url, repo } = await f.seeded('acme', 'main-denied');
    const key = await f.key({ scope: 'write', resources: [{ org: 'acme', repo: 'main-denied', branches: ['agent-7/*'] }] });
    const before = await f.refs(url);
    await commitFile(repo, 'main.txt', 'main\n', 'not for main');
    const result = await f.push(key.token, repo, [url, 'HEAD:main']);
    assertRejectedCleanly(result, 'push to main');
    assert.deepEqual(refLines(result), [' ! [remote rejected] HEAD -> main (this key may only push to branches matching agent-7/*)']);
    assert.match(result.stderr, /error: failed to push some refs to '.*\/acme\/main-denied\.git'/);
    assert.deepEqual(await f.refs(url), before);

    const deleteMain = await f.push(key.token, repo, [url, ':refs/heads/main']);
    assertRejectedCleanly(deleteMain, 'delete main');
    assert.deepEqual(refLines(deleteMain), [' ! [remote rejected] main (this key may only push to branches matching agent-7/*)']);
    assert.deepEqual(await f.refs(url), before);
  });

  it('rejects a tag and any other non-branch ref from a key limited to agent-7/*', async () => {
    const { url, repo } = await f.seeded('acme', 'tags-denied');
    const key = await f.key({ scope: 'write', resources: [{ org: 'acme', repo: 'tags-denied', branches: ['agent-7/*'] }] });
    await gitOk(['tag', 'v1'], { cwd: repo });
    await gitOk(['tag', '-a', 'agent-7/annotated', '-m', 'a tag named like the glob'], { cwd: repo });
    const tags = await f.push(key.token, repo, [url, 'v1', 'agent-7/annotated']);
    assertRejectedCleanly(tags, 'push tags');
    assert.deepEqual(refLines(tags).sort(), [
      ' ! [remote rejected] agent-7/annotated -> agent-7/annotated (this key may only push to branches matching agent-7/*)',
      ' ! [remote rejected] v1 -> v1 (this key may only push to branches matching agent-7/*)',
    ]);
    const other = await f.push(key.token, repo, [url, 'HEAD:refs/agent-7/x']);
    assertRejectedCleanly(other, 'push refs/agent-7/x');
    assert.deepEqual(refLines(other), [' ! [remote rejected] HEAD -> refs/agent-7/x (this key may only push to branches matching agent-7/*)']);
    const refs = await f.refs(url);
    assert.deepEqual(Object.keys(refs).sort(), ['HEAD', 'refs/heads/main']);
  });

  it('applies agent-7/a and not main in one non-atomic push of both', async () => {
    const { url, repo } = await f.seeded('acme', 'mixed');
    const key = await f.key({ scope: 'write', resources: [{ org: 'acme', repo: 'mixed', branches: ['agent-7/*'] }] });
    const mainBefore = (await f.refs(url))['refs/heads/main'];
    const tip = await commitFile(repo, 'mixed.txt', 'mixed\n', 'one commit, two refs');
    const result = await f.push(key.token, repo, [url, 'HEAD:refs/heads/agent-7/a', 'HEAD:refs/heads/main']);
    assertRejectedCleanly(result, 'mixed push');
    assert.deepEqual(refLines(result).sort(), [
      ' * [new branch]      HEAD -> agent-7/a',
      ' ! [remote rejected] HEAD -> main (this key may only push to branches matching agent-7/*)',
    ].sort());
    const refs = await f.refs(url);
    assert.equal(refs['refs/heads/agent-7/a'], tip);
    assert.equal(refs['refs/heads/main'], mainBefore);
  });

  it('applies nothing of an --atomic push of agent-7/b and main', async () => {
    const { url, repo } = await f.seeded('acme', 'atomic');
    const key = await f.key({ scope: 'write', resources: [{ org: 'acme', repo: 'atomic', branches: ['agent-7/*'] }] });
    const before = await f.refs(url);
    await commitFile(repo, 'atomic.txt', 'atomic\n', 'all or nothing');
    const result = await f.push(key.token, repo, ['--atomic', url, 'HEAD:refs/heads/agent-7/b', 'HEAD:refs/heads/main']);
    assertRejectedCleanly(result, 'atomic push');
    assert.deepEqual(refLines(result).sort(), [
      ' ! [remote rejected] HEAD -> agent-7/b (atomic push failure)',
      ' ! [remote rejected] HEAD -> main (this key may only push to branches matching agent-7/*)',
    ]);
    assert.deepEqual(await f.refs(url), before);
  });

  it('lets a feature/** key push feature/a/b, while an agent-7/* key may not push agent-7/a/b', async () => {
    const { url, repo } = await f.seeded('acme', 'globs');
    const deep = await f.key({ scope: 'write', resources: [{ org: 'acme', repo: 'globs', branches: ['feature/**'] }] });
    const shallow = await f.key({ scope: 'write', resources: [{ org: 'acme', repo: 'globs', branches: ['agent-7/*'] }] });
    const tip = await commitFile(repo, 'glob.txt', 'glob\n', 'glob test');

    const deepPush = await f.push(deep.token, repo, [url, 'HEAD:refs/heads/feature/a/b', 'HEAD:refs/heads/feature/c']);
    assert.equal(deepPush.code, 0, deepPush.stderr);
    assert.deepEqual(refLines(deepPush).sort(), [' * [new branch]      HEAD -> feature/a/b', ' * [new branch]      HEAD -> feature/c']);

    const shallowPush = await f.push(shallow.token, repo, [url, 'HEAD:refs/heads/agent-7/a/b']);
    assertRejectedCleanly(shallowPush, 'agent-7/a/b');
    assert.deepEqual(refLines(shallowPush), [' ! [remote rejected] HEAD -> agent-7/a/b (this key may only push to branches matching agent-7/*)']);
    const almost = await f.push(shallow.token, repo, [url, 'HEAD:refs/heads/agent-7x']);
    assertRejectedCleanly(almost, 'agent-7x');

    const refs = await f.refs(url);
    assert.equal(refs['refs/heads/feature/a/b'], tip);
    assert.equal(refs['refs/heads/feature/c'], tip);
    assert.equal(refs['refs/heads/agent-7/a/b'], undefined);
    assert.equal(refs['refs/heads/agent-7x'], undefined);
  });

  it('still clones the whole repository with a branch-limited write key (branches limit writes only)', async () => {
    const { url } = await f.seeded('acme', 'readable');
    const key = await f.key({ scope: 'write', resources: [{ org: 'acme', repo: 'readable', branches: ['agent-7/*'] }] });
    const clone = f.dir('readable-clone');
    const result = await git([...auth(key.token), 'clone', url, clone]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: clone })).trim(), (await f.refs(url))['refs/heads/main']);
  });
});

describe('git access under repo ref policies', () => {
  const f = new Fixture();
  before(() => f.start());
  after(() => f.stop());

  async function setPolicy(org: string, repo: string, rules: unknown): Promise<void> {
    const response = await fetch(`${f.grove.url}/api/v1/repos/${org}/${repo}/policies`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${f.grove.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rules }),
    });
    assert.equal(response.status, 200, await response.text());
  }

  it('rejects a write key\'s push to a protected main with a reason mentioning "protected"; an admin key\'s push works', async () => {
    const { url, repo } = await f.seeded('acme', 'protected');
    await setPolicy('acme', 'protected', [{ pattern: 'main', protected: true }]);
    const writer = await f.key({ scope: 'write', resources: [{ org: 'acme', repo: 'protected' }] });
    const admin = await f.key({ scope: 'admin', resources: [{ org: 'acme', repo: 'protected' }] });
    const before = await f.refs(url);
    const tip = await commitFile(repo, 'p.txt', 'p\n', 'change for main');

    const refused = await f.push(writer.token, repo, [url, 'HEAD:main', 'HEAD:refs/heads/topic']);
    assertRejectedCleanly(refused, 'write key to protected main');
    assert.deepEqual(refLines(refused).sort(), [
      ' * [new branch]      HEAD -> topic',
      ' ! [remote rejected] HEAD -> main (refs/heads/main is protected: only admin keys may move it)',
    ].sort());
    assert.equal((await f.refs(url))['refs/heads/main'], before['refs/heads/main']);

    const deleteProtected = await f.push(writer.token, repo, [url, ':refs/heads/main']);
    assertRejectedCleanly(deleteProtected, 'write key deleting protected main');
    assert.match(refLines(deleteProtected)[0] ?? '', /^ ! \[remote rejected\] main \(.*protected.*\)$/);

    const allowed = await f.push(admin.token, repo, [url, 'HEAD:main']);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stderr, new RegExp(`${before['refs/heads/main']!.slice(0, 7)}\\.\\.${tip.slice(0, 7)}\\s+HEAD -> main`));
    assert.equal((await f.refs(url))['refs/heads/main'], tip);
  });

  it('under noForcePush and noDelete on feature/*, allows a fast-forward, rejects a force push ("force") and a delete ("deleted")', async () => {
    const { url, repo } = await f.seeded('acme', 'guarded');
    await setPolicy('acme', 'guarded', [{ pattern: 'feature/*', noForcePush: true, noDelete: true }]);
    const writer = await f.key({ scope: 'write', resources: [{ org: 'acme', repo: 'guarded' }] });

    const base = await commitFile(repo, 'feature.txt', 'v1\n', 'feature v1');
    const created = await f.push(writer.token, repo, [url, 'HEAD:refs/heads/feature/x']);
    assert.equal(created.code, 0, created.stderr);
    const next = await commitFile(repo, 'feature.txt', 'v2\n', 'feature v2');
    const fastForward = await f.push(writer.token, repo, [url, 'HEAD:refs/heads/feature/x']);
    assert.equal(fastForward.code, 0, fastForward.stderr);
    assert.match(fastForward.stderr, new RegExp(`${base.slice(0, 7)}\\.\\.${next.slice(0, 7)}\\s+HEAD -> feature/x`));
    assert.equal((await f.refs(url))['refs/heads/feature/x'], next);

    await gitOk(['reset', '-q', '--hard', 'HEAD~1'], { cwd: repo });
    const rewritten = await commitFile(repo, 'feature.txt', 'rewritten\n', 'feature rewritten');
    const forced = await f.push(writer.token, repo, ['--force', url, 'HEAD:refs/heads/feature/x']);
    assertRejectedCleanly(forced, 'force push');
    assert.deepEqual(refLines(forced), [' ! [remote rejected] HEAD -> feature/x (refs/heads/feature/x may not be force-pushed (repo policy feature/*))']);
    assert.match(refLines(forced)[0]!, /force/);
    assert.equal((await f.refs(url))['refs/heads/feature/x'], next);

    const deleted = await f.push(writer.token, repo, [url, ':refs/heads/feature/x']);
    assertRejectedCleanly(deleted, 'delete');
    assert.deepEqual(refLines(deleted), [' ! [remote rejected] feature/x (refs/heads/feature/x may not be deleted (repo policy feature/*))']);
    assert.equal((await f.refs(url))['refs/heads/feature/x'], next);

    // Outside the pattern, the same key force-pushes freely.
    await gitOk([...auth(writer.token), 'push', '-q', url, `${next}:refs/heads/other`], { cwd: repo });
    const free = await f.push(writer.token, repo, ['--force', url, `${rewritten}:refs/heads/other`]);
    assert.equal(free.code, 0, free.stderr);
    assert.match(free.stderr, /\(forced update\)/);
  });

  it('subjects the root token to noForcePush too', async () => {
    const { url, repo } = await f.seeded('acme', 'root-guarded');
    await setPolicy('acme', 'root-guarded', [{ pattern: 'main', noForcePush: true }]);
    const before = await f.refs(url);
    await gitOk(['reset', '-q', '--hard', 'HEAD~1'], { cwd: repo });
    await commitFile(repo, 'root.txt', 'root\n', 'root rewrites history');
    const forced = await f.push(f.grove.token, repo, ['--force', url, 'HEAD:main']);
    assertRejectedCleanly(forced, 'root force push');
    assert.deepEqual(refLines(forced), [' ! [remote rejected] HEAD -> main (refs/heads/main may not be force-pushed (repo policy main))']);
    assert.deepEqual(await f.refs(url), before);
  });

  it('detects a rewind of main to an older commit, which sends no new objects, as a force push', async () => {
    const { url, repo } = await f.seeded('acme', 'rewind');
    await setPolicy('acme', 'rewind', [{ pattern: 'main', noForcePush: true }]);
    const before = await f.refs(url);
    const parent = (await gitOk(['rev-parse', 'HEAD~1'], { cwd: repo })).trim();
    const rewind = await f.push(f.grove.token, repo, [url, `+${parent}:refs/heads/main`]);
    assertRejectedCleanly(rewind, 'rewind');
    assert.match(refLines(rewind)[0] ?? '', /may not be force-pushed/);
    assert.deepEqual(await f.refs(url), before);
  });
});

describe('git access with offline-signed tokens', () => {
  const f = new Fixture();
  let app: { url: string; repo: string };
  let otherUrl: string;
  const jwkPair = generateKeyPairSync('ed25519');
  const pemPair = generateKeyPairSync('ed25519');
  let jwkKeyId: string;
  const appWrite: Grant[] = [{ org: 'fleet', repo: 'app' }];

  before(async () => {
    await f.start();
    app = await f.seeded('fleet', 'app');
    otherUrl = (await f.seeded('fleet', 'other')).url;
    const registered = await f.grove.sdk.signingKeys.create('fleet', { publicKey: jwkPair.publicKey.export({ format: 'jwk' }), name: 'jwk key' });
    jwkKeyId = registered.id;
  });
  after(() => f.stop());

  const privateJwk = () => jwkPair.privateKey.export({ format: 'jwk' });

  it('clones and pushes within its resources with a token minted from a JWK-registered key, and sees nothing else', async () => {
    const token = await mintToken({ privateKey: privateJwk(), scope: 'write', resources: appWrite, ttl: '10m' });
    const clone = f.dir('signed-clone');
    const cloned = await git([...auth(token), 'clone', app.url, clone]);
    assert.equal(cloned.code, 0, cloned.stderr);
    const tip = await commitFile(clone, 'signed.txt', 'signed\n', 'pushed with a signed token');
    const pushed = await f.push(token, clone, ['origin', 'HEAD:refs/heads/signed']);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal((await f.refs(app.url))['refs/heads/signed'], tip);

    const other = await git([...auth(token), 'clone', otherUrl, f.dir('signed-other')]);
    assert.equal(other.code, 128, other.stderr);
    assert.match(other.stderr, /fatal: repository '.*\/fleet\/other\.git\/' not found/);
  });

  it('accepts a signed token as the Basic password and with the signing key id as kid', async () => {
    const token = await mintToken({ privateKey: privateJwk(), scope: 'read', resources: [{ org: 'fleet' }], keyId: jwkKeyId });
    const result = await git(['clone', withBasic(otherUrl, token), f.dir('signed-basic')]);
    assert.equal(result.code, 0, result.stderr);
  });

  it('refuses a push with a read-scoped signed token at info/refs with 403', async () => {
    const token = await mintToken({ privateKey: privateJwk(), scope: 'read', resources: appWrite });
    const result = await f.push(token, app.repo, [app.url, 'HEAD:refs/heads/read-only']);
    assert.equal(result.code, 128, result.stderr);
    assert.match(result.stderr, /^remote: this token has scope read; write access is needed$/m);
    assert.match(result.stderr, /The requested URL returned error: 403/);
  });

  it('limits a signed write token with branches to its globs', async () => {
    const token = await mintToken({ privateKey: privateJwk(), scope: 'write', resources: [{ org: 'fleet', repo: 'app', branches: ['agent-9/*'] }] });
    const result = await f.push(token, app.repo, [app.url, 'HEAD:refs/heads/agent-9/ok', 'HEAD:refs/heads/main-ish']);
    assertRejectedCleanly(result, 'signed token with branches');
    assert.deepEqual(refLines(result).sort(), [
      ' * [new branch]      HEAD -> agent-9/ok',
      ' ! [remote rejected] HEAD -> main-ish (this key may only push to branches matching agent-9/*)',
    ].sort());
  });

  it('accepts a token from a PEM-registered key, and refuses the same token with 401 once the signing key is deleted', async () => {
    const registered = await f.grove.sdk.signingKeys.create('fleet', { publicKey: pemPair.publicKey.export({ format: 'pem', type: 'spki' }) as string, name: 'pem key' });
    const privatePem = pemPair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const token = await mintToken({ privateKey: privatePem, scope: 'write', resources: appWrite });
    const clone = f.dir('pem-clone');
    const cloned = await git([...auth(token), 'clone', app.url, clone]);
    assert.equal(cloned.code, 0, cloned.stderr);
    const tip = await commitFile(clone, 'pem.txt', 'pem\n', 'pushed with a PEM-key token');
    const pushed = await f.push(token, clone, ['origin', 'HEAD:refs/heads/pem']);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal((await f.refs(app.url))['refs/heads/pem'], tip);

    await f.grove.sdk.signingKeys.delete('fleet', registered.id);
    const raw = await infoRefs(app.url, 'git-upload-pack', token);
    assert.equal(raw.status, 401);
    assert.equal(raw.authenticate, 'Basic realm="grove"');
    const after = await git([...auth(token), 'ls-remote', app.url]);
    assert.equal(after.code, 128, after.stderr);
    assert.match(after.stderr, GIT_REASON_401);
  });

  it('refuses a token whose exp is more than 24 h ahead, whether minted with a future clock or signed by hand', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: 'fleet', scope: 'read', resources: appWrite, iat: now, jti: 'long-lived' };
    const control = signJwt({ alg: 'EdDSA', typ: 'JWT' }, { ...claims, exp: now + 23 * 3600 }, jwkPair.privateKey);
    assert.equal((await infoRefs(app.url, 'git-upload-pack', control)).status, 200, 'a 23 h token is accepted');

    const handSigned = signJwt({ alg: 'EdDSA', typ: 'JWT' }, { ...claims, exp: now + 25 * 3600 }, jwkPair.privateKey);
    const minted = await mintToken({ privateKey: privateJwk(), scope: 'read', resources: appWrite, ttl: '24h', now: Date.now() + 2 * 3600_000 });
    for (const [label, token] of [['hand-signed', handSigned], ['minted with a future clock', minted]] as const) {
      const raw = await infoRefs(app.url, 'git-upload-pack', token);
      assert.equal(raw.status, 401, label);
      assert.equal(raw.authenticate, 'Basic realm="grove"', label);
      const clone = await git([...auth(token), 'clone', app.url, f.dir('long-lived')]);
      assert.equal(clone.code, 128, `${label}: ${clone.stderr}`);
      assert.match(clone.stderr, GIT_REASON_401, label);
    }
  });

  it('refuses an expired signed token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt({ alg: 'EdDSA', typ: 'JWT' }, { iss: 'fleet', scope: 'read', resources: appWrite, iat: now - 7200, exp: now - 3600, jti: 'expired' }, jwkPair.privateKey);
    assert.equal((await infoRefs(app.url, 'git-upload-pack', token)).status, 401);
  });

  it('refuses a token whose resources name another org than its iss, even for the part in its own org', async () => {
    const acme = await f.seeded('acme', 'target');
    const now = Math.floor(Date.now() / 1000);
    const payload = { iss: 'fleet', scope: 'write', resources: [{ org: 'fleet', repo: 'app' }, { org: 'acme' }], iat: now, exp: now + 600, jti: 'cross-org' };
    const token = signJwt({ alg: 'EdDSA', typ: 'JWT' }, payload, jwkPair.privateKey);
    for (const url of [acme.url, app.url]) {
      const raw = await infoRefs(url, 'git-upload-pack', token);
      assert.equal(raw.status, 401, url);
      const clone = await git([...auth(token), 'clone', url, f.dir('cross-org')]);
      assert.equal(clone.code, 128, clone.stderr);
      assert.match(clone.stderr, GIT_REASON_401);
    }
    // Claiming to be acme with fleet's key does not work either.
    const forged = signJwt({ alg: 'EdDSA', typ: 'JWT' }, { ...payload, iss: 'acme', resources: [{ org: 'acme' }] }, jwkPair.privateKey);
    assert.equal((await infoRefs(acme.url, 'git-upload-pack', forged)).status, 401);
  });

  it('refuses a token with one character of its signature changed, or with a payload edited after signing', async () => {
    const token = await mintToken({ privateKey: privateJwk(), scope: 'read', resources: appWrite });
    assert.equal((await infoRefs(app.url, 'git-upload-pack', token)).status, 200);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const at = 20;
    const tampered = `${header}.${payload}.${signature.slice(0, at)}${signature[at] === 'A' ? 'B' : 'A'}${signature.slice(at + 1)}`;
    assert.notEqual(tampered, token);
    const raw = await infoRefs(app.url, 'git-upload-pack', tampered);
    assert.equal(raw.status, 401);
    const clone = await git([...auth(tampered), 'clone', app.url, f.dir('tampered')]);
    assert.equal(clone.code, 128, clone.stderr);
    assert.match(clone.stderr, GIT_REASON_401);

    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    const escalated = `${header}.${base64url(JSON.stringify({ ...claims, scope: 'admin', resources: [{ org: 'fleet' }] }))}.${signature}`;
    assert.equal((await infoRefs(otherUrl, 'git-upload-pack', escalated)).status, 401);
  });

  it('refuses tokens with alg none or HS256 keyed with the public key', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: 'fleet', scope: 'admin', resources: [{ org: 'fleet' }], iat: now, exp: now + 600, jti: 'confused' };
    const unsigned = `${base64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}.`;
    const input = `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}`;
    const x = Buffer.from(jwkPair.publicKey.export({ format: 'jwk' }).x!, 'base64url');
    const hmac = `${input}.${createHmac('sha256', x).update(input).digest('base64url')}`;
    for (const token of [unsigned, hmac]) {
      assert.equal((await infoRefs(app.url, 'git-upload-pack', token)).status, 401, token.split('.')[0]);
    }
  });
});
