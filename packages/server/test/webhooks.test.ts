/**
 * Webhooks against a real server and a real HTTP receiver on loopback: the CRUD API and
 * its validation and access rules, which events are delivered (push with per-ref
 * before/after and forced, branch, commit, merge, repo and key lifecycle), the signature
 * headers checked with the SDK's verifyWebhook, filters, order per repository, retries
 * with backoff and the delivery log, redelivery, at-least-once delivery across a receiver
 * outage and a server restart (the daemon as a child process), and push latency with
 * receivers that never answer.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Grove, GroveApiError, verifyWebhook, type GroveEvent, type Webhook, type WebhookDelivery } from '@grove/sdk';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { Receiver, type Received } from './helpers/webhook-receiver.ts';
import { auth, commitFile, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';
import { daemonEnv, freePort, killAllDaemons, startDaemon, stopDaemon, type Daemon } from './helpers/daemon.ts';

const SECRET = 'whsec_test_secret_0123456789abcdef';
/** The receivers listen on loopback, which outbound requests may reach only when allowed. */
const LOOPBACK_ALLOWED = { GROVE_ALLOWED_OUTBOUND: '127.0.0.1' };

// ---------------------------------------------------------------------------------------
// Helpers

async function expectApiError(promise: Promise<unknown>, status: number, what: string): Promise<GroveApiError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GroveApiError, `${what}: ${String(error)}`);
    assert.equal(error.status, status, `${what}: ${error.status} ${error.code} ${error.message}`);
    return error;
  }
  assert.fail(`${what}: succeeded, expected ${status}`);
}

/** Polls a webhook's delivery log until `predicate` holds. */
async function waitForLog(sdk: Grove, org: string, hookId: string, what: string, predicate: (items: WebhookDelivery[]) => boolean, timeoutMs = 15_000): Promise<WebhookDelivery[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { items } = await sdk.webhooks.deliveries(org, hookId);
    if (predicate(items)) return items;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms; delivery log:\n${JSON.stringify(items, null, 2)}`);
    await delay(50);
  }
}

/** A work tree with `main` checked out; commit() makes a new commit and returns its sha. */
async function workTree(root: string, name: string): Promise<{ dir: string; commit(message?: string): Promise<string> }> {
  const dir = path.join(root, name);
  await initWorkRepo(dir);
  let n = 0;
  return {
    dir,
    commit: (message) => {
      n++;
      return commitFile(dir, 'file.txt', `${name} ${n}\n`, message ?? `${name} commit ${n}`);
    },
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

// ---------------------------------------------------------------------------------------
// The daemon as a child process (for the restart test)

function startWebhookDaemon(dataDir: string, token: string): Promise<Daemon> {
  return startDaemon({ dataDir, env: daemonEnv({ GROVE_ADMIN_TOKEN: token, GROVE_LOG_LEVEL: 'warn', ...LOOPBACK_ALLOWED }) });
}

// ---------------------------------------------------------------------------------------

describe('webhooks', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const receivers: Receiver[] = [];

  async function receiver(): Promise<Receiver> {
    const r = await Receiver.start();
    receivers.push(r);
    return r;
  }

  before(async () => {
    grove = await startTestServer({ GROVE_SWEEP_INTERVAL_MS: String(3600_000), ...LOOPBACK_ALLOWED });
    work = await tempDir('grove-webhooks-');
  });
  after(async () => {
    for (const r of receivers) await r.close();
    await grove.close();
    await work[Symbol.asyncDispose]();
    killAllDaemons();
  });

  it('creates, lists, gets, updates and deletes a webhook, showing the secret only in the create answer', async () => {
    await grove.createRepo('wh-crud', 'app');
    const given = await grove.sdk.webhooks.create('wh-crud', { url: 'http://127.0.0.1:9/given', events: ['push', 'branch.created'], repos: ['app'], secret: SECRET });
    assert.match(given.id, /^wh_/);
    assert.equal(given.org, 'wh-crud');
    assert.equal(given.url, 'http://127.0.0.1:9/given');
    assert.deepEqual(given.events, ['push', 'branch.created']);
    assert.deepEqual(given.repos, ['app']);
    assert.equal(given.active, true);
    assert.equal(given.secret, SECRET);
    const generated = await grove.sdk.webhooks.create('wh-crud', { url: 'https://hooks.example.com/grove', events: ['*'] });
    assert.match(generated.secret ?? '', /^whsec_.{20,}/, 'a secret is generated when none is given');
    assert.equal(generated.repos, null);

    const listed = await grove.sdk.webhooks.list('wh-crud');
    assert.deepEqual(listed.map((h) => h.id).sort(), [given.id, generated.id].sort());
    for (const hook of listed) assert.equal('secret' in hook, false, 'list must not show secrets');
    const got = await grove.sdk.webhooks.get('wh-crud', given.id);
    assert.equal('secret' in got, false, 'get must not show the secret');
    const { secret: _secret, ...withoutSecret } = given;
    assert.deepEqual(got, withoutSecret);

    await delay(5); // so updatedAt can differ
    const updated = await grove.sdk.webhooks.update('wh-crud', given.id, { url: 'http://127.0.0.1:9/changed', events: ['merge.completed'], repos: null, active: false });
    assert.equal(updated.url, 'http://127.0.0.1:9/changed');
    assert.deepEqual(updated.events, ['merge.completed']);
    assert.equal(updated.repos, null);
    assert.equal(updated.active, false);
    assert.equal(updated.createdAt, given.createdAt);
    assert.ok(updated.updatedAt > given.updatedAt, `updatedAt ${updated.updatedAt} after ${given.updatedAt}`);
    assert.equal('secret' in updated, false);
    assert.deepEqual(await grove.sdk.webhooks.get('wh-crud', given.id), updated);

    await grove.sdk.webhooks.delete('wh-crud', given.id);
    await expectApiError(grove.sdk.webhooks.get('wh-crud', given.id), 404, 'get after delete');
    await expectApiError(grove.sdk.webhooks.delete('wh-crud', given.id), 404, 'delete twice');
    await expectApiError(grove.sdk.webhooks.update('wh-crud', given.id, { active: true }), 404, 'update after delete');
    assert.deepEqual((await grove.sdk.webhooks.list('wh-crud')).map((h) => h.id), [generated.id]);
    await expectApiError(grove.sdk.webhooks.list('no-such-org'), 404, 'list in an unknown org');
  });

  it('refuses a bad url, an unknown event type, no event types and a short secret with 400', async () => {
    await grove.createRepo('wh-valid', 'app');
    const ok = { url: 'http://127.0.0.1:9/hook', events: ['push'] };
    const cases: [string, object][] = [
      ['a url that is not a url', { ...ok, url: 'not a url' }],
      ['a relative url', { ...ok, url: '/hooks/grove' }],
      ['an ftp url', { ...ok, url: 'ftp://example.com/hook' }],
      ['an unknown event type', { ...ok, events: ['push', 'push.exploded'] }],
      ['no event types', { ...ok, events: [] }],
      ['a 15-character secret', { ...ok, secret: '0123456789abcde' }],
      ['a bad repo name in repos', { ...ok, repos: ['../etc'] }],
    ];
    for (const [what, body] of cases) {
      await expectApiError(grove.sdk.webhooks.create('wh-valid', body as never), 400, what);
    }
    const hook = await grove.sdk.webhooks.create('wh-valid', { ...ok, secret: '0123456789abcdef' });
    await expectApiError(grove.sdk.webhooks.update('wh-valid', hook.id, { events: ['nope'] }), 400, 'update to an unknown event type');
    await expectApiError(grove.sdk.webhooks.update('wh-valid', hook.id, { url: 'gopher://x' }), 400, 'update to a gopher url');
    await expectApiError(grove.sdk.webhooks.update('wh-valid', hook.id, { secret: 'short' }), 400, 'update to a short secret');
    assert.deepEqual((await grove.sdk.webhooks.list('wh-valid')).map((h) => h.id), [hook.id], 'nothing else was created');
    assert.deepEqual((await grove.sdk.webhooks.get('wh-valid', hook.id)).events, ['push'], 'the refused updates changed nothing');
  });

  it('lets only a key with an org-wide admin grant manage webhooks (403 for other keys of the org, 404 outside it)', async () => {
    await grove.createRepo('wh-perm', 'app');
    await grove.createRepo('wh-perm-other', 'app');
    const mint = async (scope: 'read' | 'write' | 'admin', resources: { org: string; repo?: string }[]) =>
      new Grove({ baseUrl: grove.url, token: (await grove.sdk.apiKeys.create({ scope, resources })).token });
    const writer = await mint('write', [{ org: 'wh-perm' }]);
    const reader = await mint('read', [{ org: 'wh-perm' }]);
    const repoAdmin = await mint('admin', [{ org: 'wh-perm', repo: 'app' }]);
    const otherAdmin = await mint('admin', [{ org: 'wh-perm-other' }]);
    const orgAdmin = await mint('admin', [{ org: 'wh-perm' }]);
    const input = { url: 'http://127.0.0.1:9/hook', events: ['push'] };

    const hook = await orgAdmin.webhooks.create('wh-perm', input);
    assert.equal((await orgAdmin.webhooks.list('wh-perm')).length, 1);
    for (const [who, client] of [['a write key', writer], ['a read key', reader], ['an admin key of one repo', repoAdmin]] as const) {
      await expectApiError(client.webhooks.create('wh-perm', input), 403, `${who}: create`);
      await expectApiError(client.webhooks.list('wh-perm'), 403, `${who}: list`);
      await expectApiError(client.webhooks.get('wh-perm', hook.id), 403, `${who}: get`);
      await expectApiError(client.webhooks.update('wh-perm', hook.id, { active: false }), 403, `${who}: update`);
      await expectApiError(client.webhooks.delete('wh-perm', hook.id), 403, `${who}: delete`);
      await expectApiError(client.webhooks.deliveries('wh-perm', hook.id), 403, `${who}: deliveries`);
    }
    await expectApiError(otherAdmin.webhooks.create('wh-perm', input), 404, 'an admin of another org: create');
    await expectApiError(otherAdmin.webhooks.list('wh-perm'), 404, 'an admin of another org: list');
    await expectApiError(otherAdmin.webhooks.get('wh-perm', hook.id), 404, 'an admin of another org: get');
    const anonymous = await fetch(`${grove.url}/api/v1/orgs/wh-perm/webhooks`);
    assert.equal(anonymous.status, 401);
    await anonymous.arrayBuffer();
    assert.equal((await orgAdmin.webhooks.get('wh-perm', hook.id)).active, true, 'the refused update changed nothing');
  });

  it('delivers a signed push event with per-ref before/after and a branch.created event that verifyWebhook accepts, and rejects a wrong secret, a tampered body and an old timestamp', async () => {
    const url = await grove.createRepo('wh-sign', 'app');
    const r = await receiver();
    const hook = await grove.sdk.webhooks.create('wh-sign', { url: `${r.url}/grove`, events: ['*'], secret: SECRET });
    const tree = await workTree(work.path, 'sign');
    const sha = await tree.commit();
    await gitOk([...auth(grove.token), 'push', url, 'main'], { cwd: tree.dir });
    await r.waitFor('push and branch.created', (got) => got.length >= 2);
    await delay(300);
    assert.equal(r.received.length, 2, 'exactly two deliveries');

    const push = r.received.find((d) => d.event.type === 'push')!;
    const created = r.received.find((d) => d.event.type === 'branch.created')!;
    assert.ok(push && created, r.received.map((d) => d.event.type).join());
    assert.ok(push.event.id < created.event.id, 'the push event comes first');
    assert.equal(push.path, '/grove');
    assert.equal(push.event.org, 'wh-sign');
    assert.equal(push.event.repo, 'app');
    assert.deepEqual(push.event.actor, { kind: 'root', id: null, name: 'root' });
    assert.deepEqual(push.event.payload, { refs: [{ ref: 'refs/heads/main', before: null, after: sha, forced: false }] });
    assert.ok(Math.abs(Date.parse(push.event.time) - Date.now()) < 60_000, push.event.time);
    assert.deepEqual(created.event.payload, { name: 'main', ref: 'refs/heads/main', sha });

    const log = await waitForLog(grove.sdk, 'wh-sign', hook.id, 'both delivered', (items) => items.length === 2 && items.every((d) => d.status === 'delivered'));
    for (const delivery of r.received) {
      const h = delivery.headers;
      assert.equal(h['content-type'], 'application/json');
      assert.equal(h['grove-event'], delivery.event.type);
      assert.match(String(h['grove-delivery']), /^dlv_/);
      assert.ok(log.some((d) => d.id === h['grove-delivery'] && d.eventId === delivery.event.id), `Grove-Delivery ${h['grove-delivery']} is in the delivery log`);
      assert.match(String(h['grove-timestamp']), /^\d+$/);
      assert.ok(Math.abs(Number(h['grove-timestamp']) - Date.now() / 1000) < 60, `Grove-Timestamp ${h['grove-timestamp']} is now`);
      assert.match(String(h['grove-signature']), /^v1=[0-9a-f]{64}$/);
      // What a receiver would compute by hand (the documented scheme)...
      assert.equal(h['grove-signature'], `v1=${createHmac('sha256', SECRET).update(`${h['grove-timestamp']}.${delivery.body}`).digest('hex')}`);
      // ...and what the SDK checks, with Node's headers, a Headers object and raw bytes.
      assert.equal(await verifyWebhook(SECRET, h, delivery.body), true, 'the SDK accepts the delivery');
      const fetchHeaders = new Headers(Object.entries(h).map(([k, v]) => [k, String(v)] as [string, string]));
      assert.equal(await verifyWebhook(SECRET, fetchHeaders, new TextEncoder().encode(delivery.body)), true, 'Headers and bytes');

      assert.equal(await verifyWebhook(`${SECRET}x`, h, delivery.body), false, 'a wrong secret');
      const tampered = delivery.body.replace(delivery.event.repo ?? 'app', 'evil');
      assert.notEqual(tampered, delivery.body);
      assert.equal(await verifyWebhook(SECRET, h, tampered), false, 'a tampered body');
      assert.equal(await verifyWebhook(SECRET, h, `${delivery.body} `), false, 'a body with one more byte');
      assert.equal(await verifyWebhook(SECRET, { ...h, 'grove-signature': undefined }, delivery.body), false, 'no signature');
      // The same delivery replayed ten minutes later is too old.
      assert.equal(await verifyWebhook(SECRET, h, delivery.body, { now: Date.now() + 600_000 }), false, 'a replay ten minutes later');
    }
    // A correctly signed delivery whose timestamp is an hour old: only the age is wrong.
    const oldTimestamp = Math.floor(Date.now() / 1000) - 3600;
    const oldHeaders = { 'grove-timestamp': String(oldTimestamp), 'grove-signature': `v1=${createHmac('sha256', SECRET).update(`${oldTimestamp}.${push.body}`).digest('hex')}` };
    assert.equal(await verifyWebhook(SECRET, oldHeaders, push.body), false, 'an hour-old timestamp');
    assert.equal(await verifyWebhook(SECRET, oldHeaders, push.body, { toleranceSeconds: 7200 }), true, 'accepted with a two-hour tolerance: only the age was wrong');
    // Another timestamp with the signature of the original one.
    assert.equal(await verifyWebhook(SECRET, { ...push.headers, 'grove-timestamp': String(Number(push.headers['grove-timestamp']) - 1) }, push.body), false, 'a changed timestamp');
  });

  it('marks a force push as forced with the old and new commits, a fast-forward as not forced, and names the pushing key', async () => {
    const url = await grove.createRepo('wh-force', 'app');
    const r = await receiver();
    await grove.sdk.webhooks.create('wh-force', { url: r.url, events: ['push'], secret: SECRET });
    const key = await grove.sdk.apiKeys.create({ scope: 'write', resources: [{ org: 'wh-force' }], name: 'agent-7' });
    const tree = await workTree(work.path, 'force');
    const first = await tree.commit();
    await gitOk([...auth(key.token), 'push', url, 'main'], { cwd: tree.dir });
    const second = await tree.commit();
    await gitOk([...auth(key.token), 'push', url, 'main'], { cwd: tree.dir });
    await gitOk(['reset', '-q', '--hard', first], { cwd: tree.dir });
    const rewritten = await tree.commit('rewritten history');
    await gitOk([...auth(key.token), 'push', '--force', url, 'main'], { cwd: tree.dir });
    await r.waitFor('three push events', (got) => got.length >= 3);

    const [create, fastForward, force] = r.received.map((d) => d.event);
    for (const event of [create!, fastForward!, force!]) {
      assert.equal(event.type, 'push');
      assert.deepEqual(event.actor, { kind: 'key', id: key.id, name: 'agent-7' });
    }
    assert.deepEqual(create!.payload.refs, [{ ref: 'refs/heads/main', before: null, after: first, forced: false }]);
    assert.deepEqual(fastForward!.payload.refs, [{ ref: 'refs/heads/main', before: first, after: second, forced: false }]);
    assert.deepEqual(force!.payload.refs, [{ ref: 'refs/heads/main', before: second, after: rewritten, forced: true }]);
  });

  it('reports every ref of a multi-ref push in one push event, with branch and tag lifecycle events', async () => {
    const url = await grove.createRepo('wh-multi', 'app');
    const r = await receiver();
    await grove.sdk.webhooks.create('wh-multi', { url: r.url, events: ['*'], secret: SECRET });
    const tree = await workTree(work.path, 'multi');
    const base = await tree.commit();
    await gitOk(['branch', 'topic'], { cwd: tree.dir });
    await gitOk(['tag', 'v1'], { cwd: tree.dir });
    await gitOk([...auth(grove.token), 'push', url, 'main', 'topic', 'v1'], { cwd: tree.dir });
    await r.waitFor('push + 2 branch.created + tag.created', (got) => got.length >= 4);
    const push = r.received.find((d) => d.event.type === 'push')!.event;
    const refs = (push.payload.refs as { ref: string }[]).map((c) => c).sort((a, b) => a.ref.localeCompare(b.ref));
    assert.deepEqual(refs, [
      { ref: 'refs/heads/main', before: null, after: base, forced: false },
      { ref: 'refs/heads/topic', before: null, after: base, forced: false },
      { ref: 'refs/tags/v1', before: null, after: base, forced: false },
    ]);
    assert.deepEqual(r.received.map((d) => d.event.type).sort(), ['branch.created', 'branch.created', 'push', 'tag.created']);

    // Deleting the branch and the tag by push.
    await gitOk([...auth(grove.token), 'push', url, ':topic', ':refs/tags/v1'], { cwd: tree.dir });
    await r.waitFor('push + branch.deleted + tag.deleted', (got) => got.length >= 7);
    const later = r.received.slice(4).map((d) => d.event);
    assert.deepEqual(later.map((e) => e.type).sort(), ['branch.deleted', 'push', 'tag.deleted']);
    assert.deepEqual(later.find((e) => e.type === 'branch.deleted')!.payload, { name: 'topic', ref: 'refs/heads/topic', sha: base });
    assert.deepEqual(later.find((e) => e.type === 'tag.deleted')!.payload, { name: 'v1', ref: 'refs/tags/v1', sha: base });
  });

  it('emits commit.created for an API commit and merge.completed for an API merge', async () => {
    await grove.createRepo('wh-api', 'app');
    const r = await receiver();
    await grove.sdk.webhooks.create('wh-api', { url: r.url, events: ['commit.created', 'merge.completed', 'branch.created'], secret: SECRET });
    const first = await grove.sdk.commits.create('wh-api', 'app', { branch: 'main', message: 'first\n\nbody', files: [{ path: 'a.txt', content: 'a\n' }] });
    const feature = await grove.sdk.commits.create('wh-api', 'app', { branch: 'feature', startFrom: 'main', message: 'feature work', files: [{ path: 'b.txt', content: 'b\n' }] });
    const onMain = await grove.sdk.commits.create('wh-api', 'app', { branch: 'main', message: 'main work', files: [{ path: 'c.txt', content: 'c\n' }] });
    const merged = await grove.sdk.merges.merge('wh-api', 'app', { base: 'main', head: 'feature', strategy: 'merge', message: 'merge feature' });
    // commit, branch.created (main), commit, branch.created (feature), commit, merge
    await r.waitFor('six events', (got) => got.length >= 6);
    const events = r.received.map((d) => d.event).sort((a, b) => a.id - b.id);
    assert.deepEqual(events.map((e) => e.type), ['commit.created', 'branch.created', 'commit.created', 'branch.created', 'commit.created', 'merge.completed']);
    const [c1, b1, c2, b2, c3, merge] = events;
    assert.equal(c1!.payload.sha, first.sha);
    assert.equal(c1!.payload.branch, 'main');
    assert.equal(c1!.payload.message, 'first', 'the summary line');
    assert.deepEqual(c1!.payload.parents, []);
    assert.deepEqual(b1!.payload, { name: 'main', ref: 'refs/heads/main', sha: first.sha });
    assert.equal(c2!.payload.sha, feature.sha);
    assert.equal(c2!.payload.branch, 'feature');
    assert.deepEqual(c2!.payload.parents, [first.sha]);
    assert.deepEqual(b2!.payload, { name: 'feature', ref: 'refs/heads/feature', sha: feature.sha });
    assert.equal(c3!.payload.sha, onMain.sha);
    assert.deepEqual(c3!.payload.refs, [{ ref: 'refs/heads/main', before: first.sha, after: onMain.sha }]);
    assert.equal(merge!.repo, 'app');
    assert.deepEqual(merge!.actor, { kind: 'root', id: null, name: 'root' });
    assert.equal(merge!.payload.base, 'main');
    assert.equal(merge!.payload.head, 'feature');
    assert.equal(merge!.payload.strategy, 'merge');
    assert.equal(merge!.payload.sha, merged.sha);
    assert.deepEqual(merge!.payload.refs, [{ ref: 'refs/heads/main', before: onMain.sha, after: merged.sha }]);
  });

  it('emits repo.created and repo.deleted, and key.created and key.revoked', async () => {
    await grove.createRepo('wh-life', 'keep');
    const r = await receiver();
    await grove.sdk.webhooks.create('wh-life', { url: r.url, events: ['repo.created', 'repo.deleted', 'key.created', 'key.revoked'], secret: SECRET });
    const repo = await grove.sdk.repos.create('wh-life', { name: 'tmp' });
    await grove.sdk.repos.delete('wh-life', 'tmp');
    const key = await grove.sdk.apiKeys.create({ scope: 'read', resources: [{ org: 'wh-life' }], name: 'reader' });
    await grove.sdk.apiKeys.revoke(key.id);
    await r.waitFor('four lifecycle events', (got) => got.length >= 4);
    await delay(300);
    assert.equal(r.received.length, 4, r.received.map((d) => d.event.type).join());
    const byType = new Map(r.received.map((d) => [d.event.type, d.event]));
    assert.deepEqual([...byType.keys()].sort(), ['key.created', 'key.revoked', 'repo.created', 'repo.deleted']);
    assert.equal(byType.get('repo.created')!.repo, 'tmp');
    assert.equal(byType.get('repo.created')!.payload.id, repo.id);
    assert.equal(byType.get('repo.deleted')!.repo, 'tmp');
    assert.equal(byType.get('repo.deleted')!.payload.id, repo.id);
    for (const type of ['key.created', 'key.revoked']) {
      const event = byType.get(type)!;
      assert.equal(event.org, 'wh-life');
      assert.equal(event.repo, null);
      assert.deepEqual(event.payload, { keyId: key.id, name: 'reader', scope: 'read' });
      assert.deepEqual(event.actor, { kind: 'root', id: null, name: 'root' });
    }
    assert.ok(byType.get('repo.created')!.id < byType.get('repo.deleted')!.id);
    assert.ok(byType.get('key.created')!.id < byType.get('key.revoked')!.id);
  });

  it('delivers only the event types and repositories a webhook asks for, nothing to an inactive one, and follows an update of its filters', async () => {
    const url1 = await grove.createRepo('wh-filter', 'r1');
    const url2 = await grove.createRepo('wh-filter', 'r2');
    const r = await receiver();
    const a = await grove.sdk.webhooks.create('wh-filter', { url: `${r.url}/a`, events: ['branch.created'], repos: ['r1'], secret: SECRET });
    const b = await grove.sdk.webhooks.create('wh-filter', { url: `${r.url}/b`, events: ['*'], repos: ['r2'], secret: SECRET });
    const c = await grove.sdk.webhooks.create('wh-filter', { url: `${r.url}/c`, events: ['*'], active: false, secret: SECRET });
    const tree = await workTree(work.path, 'filter');
    await tree.commit();
    await gitOk([...auth(grove.token), 'push', url1, 'main'], { cwd: tree.dir });
    await gitOk([...auth(grove.token), 'push', url2, 'main'], { cwd: tree.dir });
    await r.waitFor('a: 1, b: 2', (got) => got.filter((d) => d.path === '/a').length >= 1 && got.filter((d) => d.path === '/b').length >= 2);
    // The delivery log is written with the event (the outbox): it says what was queued.
    assert.deepEqual((await grove.sdk.webhooks.deliveries('wh-filter', a.id)).items.map((d) => [d.event, d.repo]), [['branch.created', 'r1']]);
    assert.deepEqual((await grove.sdk.webhooks.deliveries('wh-filter', b.id)).items.map((d) => [d.event, d.repo]).sort(), [['branch.created', 'r2'], ['push', 'r2']]);
    assert.deepEqual((await grove.sdk.webhooks.deliveries('wh-filter', c.id)).items, [], 'an inactive webhook gets nothing');
    await delay(200);
    assert.deepEqual(r.received.filter((d) => d.path === '/a').map((d) => [d.event.type, d.event.repo]), [['branch.created', 'r1']]);
    assert.deepEqual(r.received.filter((d) => d.path === '/b').map((d) => [d.event.type, d.event.repo]).sort(), [['branch.created', 'r2'], ['push', 'r2']]);
    assert.equal(r.received.filter((d) => d.path === '/c').length, 0);

    // a now wants pushes of every repository; c is switched on.
    await grove.sdk.webhooks.update('wh-filter', a.id, { events: ['push'], repos: null });
    await grove.sdk.webhooks.update('wh-filter', c.id, { active: true });
    await tree.commit();
    await gitOk([...auth(grove.token), 'push', url2, 'main'], { cwd: tree.dir });
    await r.waitFor('a: push of r2; c: the push', (got) => got.filter((d) => d.path === '/a').length >= 2 && got.filter((d) => d.path === '/c').length >= 1);
    const aLater = r.received.filter((d) => d.path === '/a').slice(1);
    assert.deepEqual(aLater.map((d) => [d.event.type, d.event.repo]), [['push', 'r2']]);
    assert.deepEqual(r.received.filter((d) => d.path === '/c').map((d) => [d.event.type, d.event.repo]), [['push', 'r2']]);
  });

  it('delivers 20 quick pushes to one repository in event id order, holding later events back while the first is retried', async () => {
    const url = await grove.createRepo('wh-order', 'app');
    const r = await receiver();
    // The first delivery fails: the other 19 must wait for it (order per repository).
    r.answer = ({ index }) => (index === 0 ? 500 : 200);
    await grove.sdk.webhooks.create('wh-order', { url: r.url, events: ['push'], secret: SECRET });
    const tree = await workTree(work.path, 'order');
    const pushed: string[] = [];
    for (let i = 0; i < 20; i++) {
      pushed.push(await tree.commit());
      await gitOk([...auth(grove.token), 'push', url, 'main'], { cwd: tree.dir });
    }
    await r.waitFor('20 accepted push deliveries', () => r.accepted().length >= 20, 20_000);
    const accepted = r.accepted().map((d) => d.event);
    const ids = accepted.map((e) => e.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), `accepted out of order: ${ids.join(', ')}`);
    assert.equal(new Set(ids).size, 20, 'no duplicate among the accepted');
    assert.deepEqual(accepted.map((e) => (e.payload.refs as { after: string }[])[0]!.after), pushed, 'in the order of the pushes');
    assert.equal(r.received[0]!.status, 500);
    assert.equal(r.received[0]!.event.id, ids[0], 'the failed first delivery was retried before any later one was sent');
    for (const d of r.received) assert.equal(await verifyWebhook(SECRET, d.headers, d.body), true);
  });

  it('retries a receiver that answers 500 with exponential backoff, shows attempts, response code and error in the delivery log, then delivers once it recovers', async () => {
    const url = await grove.createRepo('wh-retry', 'app');
    const r = await receiver();
    // Down for the first two attempts, then recovered.
    r.answer = ({ index }) => (index < 2 ? 500 : 200);
    const hook = await grove.sdk.webhooks.create('wh-retry', { url: r.url, events: ['push'], secret: SECRET });
    const tree = await workTree(work.path, 'retry');
    await tree.commit();
    await gitOk([...auth(grove.token), 'push', url, 'main'], { cwd: tree.dir });

    await r.waitFor('a first attempt', (got) => got.length >= 1);
    let log = await waitForLog(grove.sdk, 'wh-retry', hook.id, 'the failed attempt is logged', (items) => items[0]?.attempts === 1);
    assert.equal(log.length, 1);
    let delivery = log[0]!;
    assert.equal(delivery.status, 'pending', 'still to be retried');
    assert.equal(delivery.responseCode, 500);
    assert.equal(delivery.error, 'receiver answered 500');
    assert.equal(delivery.event, 'push');
    assert.equal(typeof delivery.durationMs, 'number');
    assert.equal(delivery.deliveredAt, null);
    assert.ok(delivery.nextAttemptAt !== null && Date.parse(delivery.nextAttemptAt) > Date.parse(delivery.createdAt), `next attempt ${delivery.nextAttemptAt}`);
    assert.equal((await grove.sdk.webhooks.deliveries('wh-retry', hook.id, { status: 'pending' })).items.length, 1);

    await r.waitFor('a third attempt, answered 200', (got) => got.length >= 3, 8000);
    // Backoff: about 1 s before the second attempt, about 2 s before the third (the worker polls every second).
    const [t1, t2, t3] = r.received.map((d) => d.at);
    assert.ok(t2! - t1! >= 900, `second attempt ${t2! - t1!} ms after the first`);
    assert.ok(t3! - t2! >= 1900, `third attempt ${t3! - t2!} ms after the second`);
    assert.deepEqual(r.received.map((d) => d.status), [500, 500, 200]);

    log = await waitForLog(grove.sdk, 'wh-retry', hook.id, 'delivered', (items) => items[0]?.status === 'delivered');
    delivery = log[0]!;
    assert.equal(delivery.attempts, 3);
    assert.equal(delivery.responseCode, 200);
    assert.equal(delivery.error, null);
    assert.equal(delivery.nextAttemptAt, null);
    assert.ok(delivery.deliveredAt !== null);
    // Every attempt was the same delivery of the same event, each freshly and validly signed.
    assert.equal(new Set(r.received.map((d) => d.headers['grove-delivery'])).size, 1);
    assert.equal(r.received[0]!.headers['grove-delivery'], delivery.id);
    assert.equal(new Set(r.received.map((d) => d.event.id)).size, 1);
    for (const d of r.received) assert.equal(await verifyWebhook(SECRET, d.headers, d.body), true);
    // The log filters by status.
    assert.equal((await grove.sdk.webhooks.deliveries('wh-retry', hook.id, { status: 'pending' })).items.length, 0);
    assert.equal((await grove.sdk.webhooks.deliveries('wh-retry', hook.id, { status: 'delivered' })).items.length, 1);
    await delay(300);
    assert.equal(r.received.length, 3, 'nothing is sent after the delivery succeeded');
  });

  it('redelivers a delivered event on request, under the same delivery id with a fresh valid signature', async () => {
    const url = await grove.createRepo('wh-redeliver', 'app');
    const r = await receiver();
    const hook = await grove.sdk.webhooks.create('wh-redeliver', { url: r.url, events: ['push'], secret: SECRET });
    const other = await grove.sdk.webhooks.create('wh-redeliver', { url: `${r.url}/other`, events: ['repo.created'], secret: SECRET });
    const tree = await workTree(work.path, 'redeliver');
    await tree.commit();
    await gitOk([...auth(grove.token), 'push', url, 'main'], { cwd: tree.dir });
    const [first] = await waitForLog(grove.sdk, 'wh-redeliver', hook.id, 'delivered', (items) => items[0]?.status === 'delivered');
    assert.equal(first!.attempts, 1);
    await r.waitFor('one delivery', (got) => got.length >= 1);

    await delay(1100); // a later Grove-Timestamp
    assert.deepEqual(await grove.sdk.webhooks.redeliver('wh-redeliver', hook.id, first!.id), { id: first!.id, status: 'pending' });
    await r.waitFor('the redelivery', (got) => got.length >= 2);
    const [original, again] = r.received;
    assert.equal(again!.headers['grove-delivery'], first!.id);
    assert.equal(again!.event.id, original!.event.id);
    assert.deepEqual(again!.event, original!.event);
    assert.ok(Number(again!.headers['grove-timestamp']) > Number(original!.headers['grove-timestamp']), 'signed anew');
    assert.equal(await verifyWebhook(SECRET, again!.headers, again!.body), true);
    const [after] = await waitForLog(grove.sdk, 'wh-redeliver', hook.id, 'delivered again', (items) => items[0]?.status === 'delivered' && items[0].attempts === 2);
    assert.equal(after!.responseCode, 200);

    await expectApiError(grove.sdk.webhooks.redeliver('wh-redeliver', hook.id, 'dlv_nope'), 404, 'an unknown delivery');
    await expectApiError(grove.sdk.webhooks.redeliver('wh-redeliver', other.id, first!.id), 404, "another webhook's delivery");
  });

  it('delivers what was pending across a receiver outage and a server restart (graceful stop, then a crash)', async () => {
    const token = 'grove_webhook_restart_token_0123456789';
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'grove-wh-restart-'));
    const receiverPort = await freePort(); // nothing listens here until the receiver "recovers"
    let daemon = await startWebhookDaemon(dataDir, token);
    let receiverUp: Receiver | undefined;
    try {
      let sdk = new Grove({ baseUrl: daemon.url, token });
      await sdk.orgs.create({ name: 'acme' });
      const repo = await sdk.repos.create('acme', { name: 'app' });
      const hook = await sdk.webhooks.create('acme', { url: `http://127.0.0.1:${receiverPort}/hook`, events: ['*'], secret: SECRET });
      const tree = await workTree(work.path, 'restart');
      const pushed: string[] = [];
      for (let i = 0; i < 3; i++) {
        pushed.push(await tree.commit());
        await gitOk([...auth(token), 'push', repo.cloneUrl, 'main'], { cwd: tree.dir });
      }
      // 3 pushes + branch.created, all pending; the first has failed at least once (connection refused).
      const pending = await waitForLog(sdk, 'acme', hook.id, 'a failed first attempt', (items) => items.length === 4 && items.some((d) => d.attempts >= 1));
      assert.ok(pending.every((d) => d.status === 'pending'), JSON.stringify(pending));
      const tried = pending.find((d) => d.attempts >= 1)!;
      assert.equal(tried.responseCode, null);
      assert.ok(tried.error !== null && tried.error.length > 0, 'the connection error is logged');

      assert.deepEqual(await stopDaemon(daemon, 'SIGTERM'), { code: 0, signal: null });
      receiverUp = await Receiver.start(receiverPort);
      daemon = await startWebhookDaemon(dataDir, token);
      sdk = new Grove({ baseUrl: daemon.url, token });
      await receiverUp.waitFor('all four events after the restart', (got) => got.length >= 4);
      const events = receiverUp.received.map((d) => d.event);
      assert.deepEqual(events.map((e) => e.id), [...events.map((e) => e.id)].sort((a, b) => a - b), 'in order');
      assert.deepEqual(events.filter((e) => e.type === 'push').map((e) => (e.payload.refs as { after: string }[])[0]!.after), pushed);
      assert.ok(events.some((e) => e.type === 'branch.created'));
      for (const d of receiverUp.received) assert.equal(await verifyWebhook(SECRET, d.headers, d.body), true);
      await waitForLog(sdk, 'acme', hook.id, 'all delivered', (items) => items.length === 4 && items.every((d) => d.status === 'delivered'));

      // A crash (SIGKILL) while the receiver is down again: the queued deliveries survive it.
      await receiverUp.close();
      receiverUp = undefined;
      const crashed = await tree.commit();
      await gitOk([...auth(token), 'push', `${daemon.url}/acme/app.git`, 'main'], { cwd: tree.dir });
      await waitForLog(sdk, 'acme', hook.id, 'the new delivery failed once', (items) => items.length === 5 && items[0]!.attempts >= 1);
      assert.equal((await stopDaemon(daemon, 'SIGKILL')).signal, 'SIGKILL');
      receiverUp = await Receiver.start(receiverPort);
      daemon = await startWebhookDaemon(dataDir, token);
      sdk = new Grove({ baseUrl: daemon.url, token });
      await receiverUp.waitFor('the push after the crash', (got) => got.some((d) => d.event.type === 'push'));
      const after = receiverUp.received.find((d) => d.event.type === 'push')!;
      assert.deepEqual(after.event.payload.refs, [{ ref: 'refs/heads/main', before: pushed[2], after: crashed, forced: false }]);
      assert.equal(await verifyWebhook(SECRET, after.headers, after.body), true);
      await waitForLog(sdk, 'acme', hook.id, 'all five delivered', (items) => items.length === 5 && items.every((d) => d.status === 'delivered'));
    } finally {
      if (daemon.child.exitCode === null && daemon.child.signalCode === null) await stopDaemon(daemon, 'SIGTERM');
      await receiverUp?.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  // A guard, not a benchmark: it catches deliveries on the push's critical path (a push that
  // waits for receivers), not small regressions. The slack is generous for noisy CI machines.
  it('does not slow a push down with 10 webhooks pointing at a receiver that never answers', async () => {
    const url = await grove.createRepo('wh-latency', 'app');
    const r = await receiver();
    r.answer = () => 'hang';
    const tree = await workTree(work.path, 'latency');
    await tree.commit();
    await gitOk([...auth(grove.token), 'push', url, 'main'], { cwd: tree.dir }); // warm-up
    const timePushes = async (n: number): Promise<number[]> => {
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        await tree.commit();
        const started = performance.now();
        await gitOk([...auth(grove.token), 'push', url, 'main'], { cwd: tree.dir });
        times.push(performance.now() - started);
      }
      return times;
    };
    const without = await timePushes(5);
    const hooks: Webhook[] = [];
    for (let i = 0; i < 10; i++) hooks.push(await grove.sdk.webhooks.create('wh-latency', { url: `${r.url}/hang-${i}`, events: ['*'], secret: SECRET }));
    const withHooks = await timePushes(5);
    const base = median(without);
    const slow = median(withHooks);
    assert.ok(r.connections >= 1, 'the receiver was reached (and is holding deliveries open)');
    assert.ok(slow < 2 * base + 200, `median push ${slow.toFixed(0)} ms with 10 hanging webhooks vs ${base.toFixed(0)} ms without (${withHooks.map((t) => t.toFixed(0)).join(', ')} vs ${without.map((t) => t.toFixed(0)).join(', ')})`);
    for (const hook of hooks) await grove.sdk.webhooks.delete('wh-latency', hook.id);
    await r.close(); // ends the hanging deliveries
  });

  // Regression: the delivery worker used to await every delivery of a pass before the next
  // pass, so one receiver that never answered held up every other webhook for 10 s.
  it('does not hold up deliveries to a healthy receiver while another webhook’s receiver never answers', async () => {
    const url = await grove.createRepo('wh-isolation', 'app');
    const hanging = await receiver();
    hanging.answer = () => 'hang';
    const healthy = await receiver();
    await grove.sdk.webhooks.create('wh-isolation', { url: hanging.url, events: ['push'], secret: SECRET });
    await grove.sdk.webhooks.create('wh-isolation', { url: healthy.url, events: ['push'], secret: SECRET });
    const tree = await workTree(work.path, 'isolation');
    try {
      await tree.commit();
      await gitOk([...auth(grove.token), 'push', url, 'main'], { cwd: tree.dir });
      await healthy.waitFor('the first push', (got) => got.length >= 1);
      await hanging.waitFor('the hanging receiver holds the first push', (got) => got.length >= 1);
      await tree.commit();
      const started = Date.now();
      await gitOk([...auth(grove.token), 'push', url, 'main'], { cwd: tree.dir });
      await healthy.waitFor('the second push at the healthy receiver within 4 s', (got) => got.length >= 2, 4000);
      assert.ok(Date.now() - started < 4000);
    } finally {
      await hanging.close();
    }
  });

  // BUG: the worker caps deliveries in flight at 8 (DEFAULT_WEBHOOK_OPTIONS.concurrency) across
  // all webhooks, and a receiver that never answers holds its slot for the whole 10 s timeout.
  // With 8 or more such receivers every other webhook of the server waits for those timeouts
  // (measured: the healthy receiver got the push 10020 ms after the dead ones were holding theirs).
  it('keeps delivering to a healthy receiver while 10 other webhooks point at receivers that never answer', async () => {
    const url = await grove.createRepo('wh-starve', 'app');
    const hanging = await receiver();
    hanging.answer = () => 'hang';
    const healthy = await receiver();
    const hooks: Webhook[] = [];
    for (let i = 0; i < 10; i++) hooks.push(await grove.sdk.webhooks.create('wh-starve', { url: `${hanging.url}/dead-${i}`, events: ['push'], secret: SECRET }));
    await grove.sdk.webhooks.create('wh-starve', { url: healthy.url, events: ['push'], secret: SECRET });
    const tree = await workTree(work.path, 'starve');
    try {
      await tree.commit();
      await gitOk([...auth(grove.token), 'push', url, 'main'], { cwd: tree.dir });
      await hanging.waitFor('the dead receivers are holding deliveries', (got) => got.length >= 8);
      await healthy.waitFor('the push at the healthy receiver within 3 s', (got) => got.length >= 1, 3000);
    } finally {
      for (const hook of hooks) await grove.sdk.webhooks.delete('wh-starve', hook.id);
      await hanging.close();
    }
  });
});

describe('webhook destinations', () => {
  it('refuses a webhook URL on loopback, link-local or private addresses with 422 when GROVE_ALLOWED_OUTBOUND does not name them, and stores nothing', async () => {
    const grove = await startTestServer();
    try {
      await grove.sdk.orgs.create({ name: 'ssrf' });
      for (const url of ['http://127.0.0.1:8080/admin', 'http://localhost/', 'http://169.254.169.254/latest/meta-data/', 'http://10.0.0.5/', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://0.0.0.0/']) {
        const refused = await expectApiError(grove.sdk.webhooks.create('ssrf', { url, events: ['push'] }), 422, url);
        assert.match(refused.message, /loopback, private or reserved address; an operator can allow it with GROVE_ALLOWED_OUTBOUND/, url);
      }
      await expectApiError(grove.sdk.webhooks.create('ssrf', { url: 'http://user:pass@receiver.invalid/', events: ['push'] }), 400, 'credentials in the URL');
      const kept = await grove.sdk.webhooks.create('ssrf', { url: 'https://receiver.invalid/hook', events: ['push'] });
      await expectApiError(grove.sdk.webhooks.update('ssrf', kept.id, { url: 'http://192.168.1.1/' }), 422, 'moving a webhook to a private address');
      assert.deepEqual((await grove.sdk.webhooks.list('ssrf')).map((h) => h.url), ['https://receiver.invalid/hook']);
    } finally {
      await grove.close();
    }
  });

  it('refuses at delivery a destination that is no longer allowed, says so in the delivery log, and sends nothing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'grove-ssrf-'));
    const receiver = await Receiver.start();
    try {
      let grove = await startTestServer(LOOPBACK_ALLOWED, dir);
      await grove.sdk.orgs.create({ name: 'ssrf' });
      const hook = await grove.sdk.webhooks.create('ssrf', { url: receiver.url, events: ['repo.created'], secret: SECRET });
      await grove.close();
      grove = await startTestServer({}, dir); // the operator withdrew the allowance
      try {
        await grove.sdk.repos.create('ssrf', { name: 'after' });
        let deliveries: WebhookDelivery[] = [];
        for (let i = 0; i < 200 && !deliveries.some((d) => d.error !== null); i++) {
          deliveries = (await grove.sdk.webhooks.deliveries('ssrf', hook.id)).items;
          await delay(20);
        }
        assert.match(deliveries[0]?.error ?? '', /^refused: 127\.0\.0\.1 is a loopback, private or reserved address/);
        assert.equal(receiver.connections, 0);
      } finally {
        await grove.close();
      }
    } finally {
      await receiver.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('does not follow a redirect: a 302 is a failed attempt, and the redirect target receives nothing', async () => {
    const receiver = await Receiver.start();
    const redirector = http.createServer((_request, response) => response.writeHead(302, { location: `${receiver.url}/stolen` }).end());
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', () => resolve()));
    const grove = await startTestServer(LOOPBACK_ALLOWED);
    try {
      await grove.sdk.orgs.create({ name: 'redirects' });
      const hook = await grove.sdk.webhooks.create('redirects', { url: `http://127.0.0.1:${(redirector.address() as net.AddressInfo).port}/hook`, events: ['repo.created'] });
      await grove.sdk.repos.create('redirects', { name: 'r' });
      let deliveries: WebhookDelivery[] = [];
      for (let i = 0; i < 200 && !deliveries.some((d) => d.responseCode !== null); i++) {
        deliveries = (await grove.sdk.webhooks.deliveries('redirects', hook.id)).items;
        await delay(20);
      }
      assert.equal(deliveries[0]?.responseCode, 302);
      assert.equal(deliveries[0]?.error, 'receiver answered 302');
      assert.equal(receiver.connections, 0);
    } finally {
      await grove.close();
      redirector.close();
      await receiver.close();
    }
  });
});
