/**
 * The SDK's remote-sync resources (`grove.credentials`, `grove.upstreams`, `grove.syncs`)
 * against a real server and a real git remote on loopback: every method once, typed answers,
 * the catalogue errors as GroveApiError, `syncs.wait` with progress, and a paged run list.
 * `syncs.wait`'s timing and the path encoding are checked against a scripted fetch too.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Grove, GroveApiError, SyncWaitTimeoutError, type Credential, type SyncRun, type SyncRunStatus, type Upstream } from '@grove/sdk';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { GitRemote } from './helpers/git-remote.ts';
import { commitFile, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

const ORG = 'acme';
const REPO = 'app';
const REMOTE_USER = 'sync';
const REMOTE_TOKEN = 'tok_sdk_remote_7e6d5c4b3a';

async function rejects(promise: Promise<unknown>, status: number, code: string, message?: RegExp): Promise<GroveApiError> {
  const error = await promise.then(() => assert.fail(`expected ${status} ${code}`), (e: unknown) => e);
  assert.ok(error instanceof GroveApiError, String(error));
  assert.equal(error.status, status, error.message);
  assert.equal(error.code, code, error.message);
  if (message) assert.match(error.message, message);
  return error;
}

describe('SDK: credentials, upstreams and syncs', () => {
  let server: TestServer;
  let remote: GitRemote;
  let grove: Grove;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let tree: string;
  let remoteUrl: string;
  let credential: Credential;
  let upstream: Upstream;

  async function commitAndPush(file: string, refspecs: readonly string[]): Promise<string> {
    const tip = await commitFile(tree, file, `${file}\n`, file);
    await gitOk(['push', '-q', remote.authedUrl(REPO), ...refspecs], { cwd: tree });
    return tip;
  }

  before(async () => {
    server = await startTestServer({ GROVE_ALLOWED_OUTBOUND: '127.0.0.1', GROVE_ALLOW_INSECURE_REMOTES: 'true', GROVE_SYNC_POLL_SECONDS: '3600' });
    remote = await GitRemote.start();
    remote.tokens.set(REMOTE_USER, REMOTE_TOKEN);
    grove = new Grove({ baseUrl: server.url, token: server.token });
    work = await tempDir('grove-sync-sdk-');
    remoteUrl = await remote.createRepo(REPO);
    tree = path.join(work.path, 'tree');
    await initWorkRepo(tree);
    await commitAndPush('README.md', ['HEAD:refs/heads/main']);
    await server.createRepo(ORG, REPO);
  });
  after(async () => {
    await server.close();
    await remote.close();
    await work[Symbol.asyncDispose]();
  });

  it('credentials.create, list and get: the secret is never answered', async () => {
    credential = await grove.credentials.create(ORG, { name: 'remote-bot', kind: 'basic', username: REMOTE_USER, secret: 'wrong-at-first', expiresAt: '2031-06-01T00:00:00.000Z' });
    assert.match(credential.id, /^cred_/);
    assert.equal(credential.kind, 'basic');
    assert.equal(credential.username, REMOTE_USER);
    assert.equal(credential.status, 'ok');
    assert.match(credential.fingerprint, /^[0-9a-f]{8}$/);
    assert.equal(credential.expiresAt, '2031-06-01T00:00:00.000Z');
    assert.equal(credential.lastUsedAt, null);
    const [listed, got] = await Promise.all([grove.credentials.list(ORG), grove.credentials.get(ORG, credential.id)]);
    assert.deepEqual(listed, [credential]);
    assert.deepEqual(got, credential);
    assert.ok(!JSON.stringify([credential, listed, got]).includes('wrong-at-first'));
    await rejects(grove.credentials.create(ORG, { name: 'remote-bot', kind: 'token', secret: 'x' }), 409, 'already_exists');
    await rejects(grove.credentials.create(ORG, { name: 'b', kind: 'basic', secret: 'x' }), 400, 'invalid_request', /needs a username/);
    await rejects(grove.credentials.get(ORG, 'cred_nope'), 404, 'not_found');
  });

  it('upstreams.set refuses a credential the remote rejects (424), then credentials.rotate fixes it and set attaches', async () => {
    await rejects(grove.upstreams.set(ORG, REPO, 'origin', { url: remoteUrl, credentialId: credential.id }), 424, 'credential_rejected', /the remote refused the credential/);
    assert.deepEqual(await grove.upstreams.list(ORG, REPO), [], 'nothing stored');

    const rotated = await grove.credentials.rotate(ORG, credential.id, { secret: REMOTE_TOKEN, expiresAt: null });
    assert.equal(rotated.id, credential.id);
    assert.notEqual(rotated.fingerprint, credential.fingerprint);
    assert.equal(rotated.expiresAt, null);
    credential = rotated;

    upstream = await grove.upstreams.set(ORG, REPO, 'origin', { url: remoteUrl, credentialId: credential.id, rules: [{ refs: 'refs/heads/**', direction: 'pull' }, { refs: 'refs/tags/*', direction: 'pull', deletions: 'propagate' }], pollIntervalSeconds: 600 });
    assert.match(upstream.id, /^up_/);
    assert.equal(upstream.name, 'origin');
    assert.equal(upstream.org, ORG);
    assert.equal(upstream.repo, REPO);
    assert.equal(upstream.credentialId, credential.id);
    assert.deepEqual(upstream.rules, [
      { refs: 'refs/heads/**', direction: 'pull', onDivergence: 'skip', deletions: 'ignore' },
      { refs: 'refs/tags/*', direction: 'pull', onDivergence: 'skip', deletions: 'propagate' },
    ]);
    assert.equal(upstream.pollIntervalSeconds, 600);
    assert.equal(upstream.readOnly, false);
    assert.equal(upstream.pushForward, true);
    assert.match(upstream.webhook.secret!, /^whsec_/, 'the webhook secret, in the create answer only');
    assert.equal(upstream.webhook.url, `/api/v1/hooks/upstreams/${upstream.id}`);
    assert.match(upstream.syncRun!, /^sync_/);
    assert.equal(upstream.status.state, 'active');

    // The run set queued: followed to its end.
    const first = await grove.syncs.wait(ORG, REPO, 'origin', upstream.syncRun!, { intervalMs: 20 });
    assert.equal(first.status, 'succeeded');
    assert.deepEqual(first.counts, { created: 1 });
    assert.deepEqual(first.refs.map((r) => [r.ref, r.side, r.outcome, r.before]), [['refs/heads/main', 'pull', 'created', null]]);
  });

  it('upstreams.get and list; set again replaces the configuration and answers no webhook secret', async () => {
    const [got, listed] = await Promise.all([grove.upstreams.get(ORG, REPO, 'origin'), grove.upstreams.list(ORG, REPO)]);
    assert.equal(got.id, upstream.id);
    assert.equal(got.webhook.secret, undefined);
    assert.equal(got.syncRun, undefined);
    assert.deepEqual(listed.map((u) => u.id), [upstream.id]);
    const replaced = await grove.upstreams.set(ORG, REPO, 'origin', { url: remoteUrl, credentialId: credential.id, pushForward: false });
    assert.equal(replaced.id, upstream.id);
    assert.equal(replaced.webhook.secret, undefined);
    assert.equal(replaced.pushForward, false);
    assert.deepEqual(replaced.rules.map((r) => r.refs), ['refs/heads/**', 'refs/tags/**'], 'the server defaults without rules');
    assert.equal(replaced.pollIntervalSeconds, 600, 'the interval is kept when not given');
    await grove.syncs.wait(ORG, REPO, 'origin', replaced.syncRun!, { intervalMs: 20 });
    await rejects(grove.upstreams.get(ORG, REPO, 'nope'), 404, 'not_found', /upstream nope of acme\/app not found/);
    await rejects(grove.upstreams.set(ORG, REPO, 'bad', { url: remoteUrl, rules: [{ refs: 'refs/tags/*', direction: 'pull', onDivergence: 'keep' }] }), 400, 'invalid_request', /keep" applies to branches only/);
  });

  it('syncs.create and wait report progress and the created refs; a dry run changes nothing', async () => {
    const tip = await commitAndPush('two.txt', ['HEAD:refs/heads/main', 'HEAD:refs/heads/feature']);
    const dry = await grove.syncs.create(ORG, REPO, 'origin', { direction: 'pull', dryRun: true, refs: ['refs/heads/feature'] });
    assert.equal(dry.dryRun, true);
    assert.deepEqual(dry.requestedRefs, ['refs/heads/feature']);
    const dryDone = await grove.syncs.wait(ORG, REPO, 'origin', dry.id, { intervalMs: 20 });
    assert.deepEqual(dryDone.refs.map((r) => [r.ref, r.outcome, r.after]), [['refs/heads/feature', 'created', tip]]);
    await rejects(grove.branches.get(ORG, REPO, 'feature'), 404, 'not_found');

    const queued = await grove.syncs.create(ORG, REPO, 'origin');
    assert.ok(queued.status === 'queued' || queued.status === 'running', queued.status);
    assert.equal(queued.upstream, 'origin');
    assert.equal(queued.direction, 'both');
    assert.equal(queued.trigger, 'manual');
    const seen: SyncRunStatus[] = [];
    const done = await grove.syncs.wait(ORG, REPO, 'origin', queued.id, { intervalMs: 10, onProgress: (run) => seen.push(run.status) });
    assert.equal(done.status, 'succeeded');
    assert.equal(seen.at(-1), 'succeeded', 'the final run is reported too');
    assert.ok(seen.slice(0, -1).every((s) => s === 'queued' || s === 'running'), seen.join(' '));
    assert.deepEqual(done.counts, { created: 1, updated: 1 });
    assert.deepEqual(done.refs.map((r) => [r.ref, r.outcome, r.after, r.upstream]), [['refs/heads/feature', 'created', tip, tip], ['refs/heads/main', 'updated', tip, tip]]);
    assert.equal(done.error, null);
    assert.equal(done.refsTruncated, false);
    assert.ok(done.startedAt !== null && done.finishedAt !== null);
    assert.deepEqual(await grove.syncs.get(ORG, REPO, 'origin', done.id), done);
    await rejects(grove.syncs.create(ORG, REPO, 'origin', { refs: ['main'] }), 400, 'invalid_request', /must start with refs\/heads\/ or refs\/tags\//);
    await rejects(grove.syncs.get(ORG, REPO, 'origin', 'sync_nope'), 404, 'not_found');
  });

  it('syncs.list pages newest first', async () => {
    const all: SyncRun[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await grove.syncs.list(ORG, REPO, 'origin', { limit: 2, ...(cursor !== undefined ? { cursor } : {}) });
      assert.ok(page.items.length <= 2);
      all.push(...page.items);
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor !== undefined);
    assert.equal(all.length, 4, 'set, set again, the dry run and the run');
    assert.equal(pages, 2);
    assert.equal(new Set(all.map((r) => r.id)).size, 4);
    const created = all.map((r) => r.createdAt);
    assert.deepEqual(created, [...created].sort().reverse(), 'newest first');
    assert.deepEqual((await grove.syncs.list(ORG, REPO, 'origin')).items.map((r) => r.id), all.map((r) => r.id));
  });

  it('a run the remote refuses pauses the upstream (409 upstream_paused) until upstreams.resume', async () => {
    remote.tokens.set(REMOTE_USER, 'the-remote-revoked-it');
    try {
      const run = await grove.syncs.create(ORG, REPO, 'origin', { direction: 'pull' });
      const failed = await grove.syncs.wait(ORG, REPO, 'origin', run.id, { intervalMs: 20 });
      assert.equal(failed.status, 'failed', 'a failed run is returned, not thrown');
      assert.equal(failed.error?.code, 'credential_rejected');
      assert.ok(!JSON.stringify(failed).includes(REMOTE_TOKEN));
      const paused = await grove.upstreams.get(ORG, REPO, 'origin');
      assert.equal(paused.status.state, 'paused');
      assert.equal(paused.status.pausedReason, 'credential_rejected');
      assert.equal((await grove.credentials.get(ORG, credential.id)).status, 'rejected');
      const refused = await rejects(grove.syncs.create(ORG, REPO, 'origin'), 409, 'upstream_paused');
      assert.equal(refused.details?.reason, 'credential_rejected');
    } finally {
      remote.tokens.set(REMOTE_USER, REMOTE_TOKEN);
    }
    const resumed = await grove.upstreams.resume(ORG, REPO, 'origin');
    assert.equal(resumed.status.state, 'active');
    assert.equal(resumed.status.pausedReason, null);
    const run = await grove.syncs.wait(ORG, REPO, 'origin', (await grove.syncs.create(ORG, REPO, 'origin')).id, { intervalMs: 20 });
    assert.equal(run.status, 'succeeded');
  });

  it('upstreams.delete detaches; credentials.delete is refused while in use (409 in_use), then works', async () => {
    const inUse = await rejects(grove.credentials.delete(ORG, credential.id), 409, 'in_use');
    assert.deepEqual(inUse.details?.upstreams, [`${ORG}/${REPO}:origin`]);
    assert.equal(await grove.upstreams.delete(ORG, REPO, 'origin'), undefined);
    assert.deepEqual(await grove.upstreams.list(ORG, REPO), []);
    await rejects(grove.syncs.list(ORG, REPO, 'origin'), 404, 'not_found');
    await rejects(grove.upstreams.delete(ORG, REPO, 'origin'), 404, 'not_found');
    assert.equal(await grove.credentials.delete(ORG, credential.id), undefined);
    assert.deepEqual(await grove.credentials.list(ORG), []);
  });

  it('reports an unknown repository and org as GroveApiError 404', async () => {
    await rejects(grove.upstreams.list(ORG, 'nope'), 404, 'not_found', /repository acme\/nope not found/);
    await rejects(grove.syncs.create(ORG, 'nope', 'origin'), 404, 'not_found');
    await rejects(grove.credentials.list('no-such-org'), 404, 'not_found', /org no-such-org not found/);
  });
});

describe('SDK: syncs.wait and path encoding (scripted fetch)', () => {
  function run(status: SyncRunStatus): SyncRun {
    return { id: 'sync_1', upstream: 'origin', direction: 'both', trigger: 'manual', status, dryRun: false, requestedRefs: null, counts: {}, refs: [], refsTruncated: false, error: null, remoteMessages: [], createdAt: '2026-01-01T00:00:00.000Z', startedAt: null, finishedAt: null };
  }

  function scripted(answers: SyncRunStatus[]): { grove: Grove; urls: string[]; methods: string[]; times: number[] } {
    const urls: string[] = [];
    const methods: string[] = [];
    const times: number[] = [];
    const fetch = (async (input: Parameters<typeof globalThis.fetch>[0], init?: RequestInit) => {
      urls.push(String(input));
      methods.push(init?.method ?? 'GET');
      times.push(Date.now());
      const status = answers.length > 1 ? answers.shift()! : answers[0]!;
      return new Response(JSON.stringify(run(status)), { status: 200, headers: { 'content-type': 'application/json' } });
    }) as typeof globalThis.fetch;
    return { grove: new Grove({ baseUrl: 'http://grove.test/', token: 't', fetch }), urls, methods, times };
  }

  it('polls every intervalMs until the run is final, reporting each read', async () => {
    const { grove, urls, times } = scripted(['queued', 'queued', 'running', 'partial']);
    const seen: SyncRunStatus[] = [];
    const done = await grove.syncs.wait('acme', 'app', 'origin', 'sync_1', { intervalMs: 30, onProgress: (r) => seen.push(r.status) });
    assert.equal(done.status, 'partial');
    assert.deepEqual(seen, ['queued', 'queued', 'running', 'partial']);
    assert.equal(urls.length, 4);
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 25, `read ${i} came ${times[i]! - times[i - 1]!} ms after the one before`);
  });

  it('throws SyncWaitTimeoutError with the last run after timeoutMs', async () => {
    const { grove, urls } = scripted(['running']);
    const started = Date.now();
    const error = await grove.syncs.wait('acme', 'app', 'origin', 'sync_1', { timeoutMs: 120, intervalMs: 25 }).then(() => assert.fail('no timeout'), (e: unknown) => e);
    assert.ok(error instanceof SyncWaitTimeoutError, String(error));
    assert.equal(error.run.status, 'running');
    assert.match(error.message, /^sync run sync_1 is still running after 120 ms$/);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 115 && elapsed < 2000, `${elapsed} ms`);
    assert.ok(urls.length >= 3, `${urls.length} reads`);
  });

  it('encodes every name that reaches a path', async () => {
    const { grove, urls, methods } = scripted(['succeeded']);
    await grove.credentials.get('ac me', 'cred/1');
    await grove.credentials.rotate('ac me', 'cred/1', { secret: 's' });
    await grove.upstreams.get('acme', 'my app', 'up/stream');
    await grove.upstreams.resume('acme', 'app', 'a?b');
    await grove.syncs.get('acme', 'app', 'origin', 'sync#1');
    await grove.syncs.list('acme', 'app', 'origin', { limit: 5, cursor: 'c/d' });
    await grove.syncs.create('acme', 'app', 'origin', { direction: 'push' });
    assert.deepEqual(urls, [
      'http://grove.test/api/v1/orgs/ac%20me/credentials/cred%2F1',
      'http://grove.test/api/v1/orgs/ac%20me/credentials/cred%2F1/secret',
      'http://grove.test/api/v1/repos/acme/my%20app/upstreams/up%2Fstream',
      'http://grove.test/api/v1/repos/acme/app/upstreams/a%3Fb/resume',
      'http://grove.test/api/v1/repos/acme/app/upstreams/origin/syncs/sync%231',
      'http://grove.test/api/v1/repos/acme/app/upstreams/origin/syncs?limit=5&cursor=c%2Fd',
      'http://grove.test/api/v1/repos/acme/app/upstreams/origin/syncs',
    ]);
    assert.deepEqual(methods, ['GET', 'PUT', 'GET', 'POST', 'GET', 'GET', 'POST']);
  });
});
