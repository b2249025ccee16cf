/**
 * The audit log against a real server: clones, fetches and pushes by the git CLI with
 * key, address, user agent, bytes and duration; refused git connections and API calls
 * recorded as denied; API mutations with their route; the filters (key, repo, action,
 * since, until) and cursor pagination; who may read it; retention; `grove audit`.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { Grove, GroveApiError, type AuditEntry, type CreatedApiKey } from '@grove/sdk';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const GROVE_BIN = path.join(ROOT, 'bin/grove.js');
const COMPILE_CACHE = path.join(os.tmpdir(), 'grove-test-node-compile-cache');

function grove(args: readonly string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [GROVE_BIN, ...args], { cwd: ROOT, env: { PATH: process.env.PATH, NODE_COMPILE_CACHE: COMPILE_CACHE, ...env }, encoding: 'utf8', timeout: 20_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

async function expectApiError(promise: Promise<unknown>, status: number, what: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GroveApiError, `${what}: ${String(error)}`);
    assert.equal(error.status, status, `${what}: ${error.status} ${error.message}`);
    return;
  }
  assert.fail(`${what}: succeeded, expected ${status}`);
}

const show = (entries: readonly AuditEntry[]) => entries.map((e) => `#${e.id} ${e.action} repo=${e.repo} key=${e.keyId} ${e.outcome} ${e.status} in=${e.bytesIn} out=${e.bytesOut} ${e.durationMs}ms`).join('\n  ');

describe('the audit log', () => {
  let server: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let appUrl: string;
  let secretUrl: string;
  let writer: CreatedApiKey;
  let reader: CreatedApiKey;
  let admin: CreatedApiKey;
  let adminClient: Grove;

  /** Every entry of an org matching `query` (all pages). */
  async function entries(query: Parameters<Grove['events']['audit']>[1] = {}, client: Grove = adminClient): Promise<AuditEntry[]> {
    const all: AuditEntry[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.events.audit('au', { ...query, limit: 1000, ...(cursor ? { cursor } : {}) });
      all.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return all;
  }

  /** Polls until `predicate` holds for the entries matching `query` (entries are written when a response closes). */
  async function waitForEntries(what: string, query: Parameters<Grove['events']['audit']>[1], predicate: (entries: AuditEntry[]) => boolean, timeoutMs = 5000): Promise<AuditEntry[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await entries(query);
      if (predicate(found)) return found;
      if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms; entries:\n  ${show(found)}`);
      await delay(50);
    }
  }

  before(async () => {
    server = await startTestServer({ GROVE_SWEEP_INTERVAL_MS: String(3600_000) });
    work = await tempDir('grove-audit-');
    appUrl = await server.createRepo('au', 'app');
    secretUrl = await server.createRepo('au', 'secret');
    await server.createRepo('au-other', 'app');
    writer = await server.sdk.apiKeys.create({ scope: 'write', resources: [{ org: 'au', repo: 'app' }], name: 'writer' });
    reader = await server.sdk.apiKeys.create({ scope: 'read', resources: [{ org: 'au', repo: 'app' }], name: 'reader' });
    admin = await server.sdk.apiKeys.create({ scope: 'admin', resources: [{ org: 'au' }], name: 'auditor' });
    adminClient = new Grove({ baseUrl: server.url, token: admin.token });
  });
  after(async () => {
    await server.close();
    await work[Symbol.asyncDispose]();
  });

  it('records a push, a clone and a fetch by the git CLI with the key, address, git user agent, bytes, duration and outcome', async () => {
    const source = path.join(work.path, 'source');
    await initWorkRepo(source);
    await commitFile(source, 'README.md', randomBytes(4000).toString('hex'), 'first');
    await gitOk([...auth(writer.token), 'push', appUrl, 'main'], { cwd: source });
    const pushes = await waitForEntries('the push', { key: writer.id, action: 'git.push' }, (found) => found.length === 1);
    const push = pushes[0]!;
    assert.equal(push.org, 'au');
    assert.equal(push.repo, 'app');
    assert.equal(push.keyId, writer.id);
    assert.equal(push.outcome, 'ok');
    assert.equal(push.status, 200);
    assert.match(push.ip ?? '', /^(::ffff:)?127\.0\.0\.1$/);
    assert.match(push.userAgent ?? '', /^git\/\d/);
    // (bytesIn is checked in its own test below: it is always 0.)
    assert.ok(push.bytesOut > 0, `the report-status: bytesOut ${push.bytesOut}`);
    assert.ok(push.durationMs > 0, `durationMs ${push.durationMs}`);
    assert.ok(Math.abs(Date.parse(push.time) - Date.now()) < 60_000, push.time);

    const clone = path.join(work.path, 'clone');
    await gitOk([...auth(writer.token), 'clone', '-q', appUrl, clone]);
    const afterClone = await waitForEntries('the clone', { key: writer.id, action: 'git.fetch' }, (found) => found.length >= 1);
    await commitFile(source, 'second.txt', randomBytes(4000).toString('hex'), 'second');
    await gitOk([...auth(server.token), 'push', appUrl, 'main'], { cwd: source });
    await gitOk([...auth(writer.token), 'fetch', '-q', 'origin'], { cwd: clone });
    const fetches = await waitForEntries('the fetch', { key: writer.id, action: 'git.fetch' }, (found) => found.length > afterClone.length);
    for (const fetch of fetches) {
      assert.equal(fetch.repo, 'app');
      assert.equal(fetch.outcome, 'ok');
      assert.equal(fetch.status, 200);
      assert.match(fetch.userAgent ?? '', /^git\/\d/);
      assert.match(fetch.ip ?? '', /^(::ffff:)?127\.0\.0\.1$/);
      assert.ok(fetch.bytesOut > 0, `bytesOut ${fetch.bytesOut}`);
      assert.ok(fetch.durationMs >= 0);
    }
    // The clone and the fetch each moved a pack: the largest answers carry the files.
    const packs = fetches.filter((f) => f.bytesOut > 1000);
    assert.ok(packs.length >= 2, `two pack transfers among:\n  ${show(fetches)}`);
    for (const pack of packs) assert.ok(pack.durationMs > 0, `durationMs ${pack.durationMs}`);
    // Successful info/refs requests are not recorded; the root's push is recorded under "root".
    assert.equal((await entries({ key: writer.id, action: 'git.connect' })).length, 0);
    const rootPushes = await waitForEntries("the root's push", { key: 'root', action: 'git.push' }, (found) => found.length >= 1);
    assert.equal(rootPushes[0]!.repo, 'app');
    // Newest first.
    const all = await entries();
    assert.deepEqual(all.map((e) => e.id), [...all.map((e) => e.id)].sort((a, b) => b - a));
  });

  it('records a push with a read key, a clone without credentials and a clone of a repository outside the key as denied', async () => {
    const tree = path.join(work.path, 'denied');
    await gitOk([...auth(server.token), 'clone', '-q', appUrl, tree]);
    await commitFile(tree, 'denied.txt', 'no\n', 'not allowed');
    const push = await git([...auth(reader.token), 'push', appUrl, 'main'], { cwd: tree });
    assert.notEqual(push.code, 0, 'a read key cannot push');
    const readerEntries = await waitForEntries("the read key's refused push", { key: reader.id }, (found) => found.some((e) => e.outcome === 'denied'));
    const refusedPush = readerEntries.find((e) => e.outcome === 'denied')!;
    assert.ok(['git.connect', 'git.push'].includes(refusedPush.action), refusedPush.action);
    assert.equal(refusedPush.status, 403);
    assert.equal(refusedPush.repo, 'app');
    assert.match(refusedPush.userAgent ?? '', /^git\//);
    assert.ok(readerEntries.every((e) => e.action !== 'git.push' || e.outcome !== 'ok'), 'no successful push by the read key');

    const anonymous = await git(['clone', '-q', appUrl, path.join(work.path, 'anonymous')]);
    assert.notEqual(anonymous.code, 0);
    const unauthenticated = await waitForEntries('the clone without credentials', { action: 'git.connect' }, (found) => found.some((e) => e.keyId === null));
    const noKey = unauthenticated.find((e) => e.keyId === null)!;
    assert.equal(noKey.outcome, 'denied');
    assert.equal(noKey.status, 401);
    assert.equal(noKey.repo, 'app');
    assert.match(noKey.userAgent ?? '', /^git\//);
    assert.match(noKey.ip ?? '', /127\.0\.0\.1/);

    const outside = await git([...auth(writer.token), 'clone', '-q', secretUrl, path.join(work.path, 'outside')]);
    assert.notEqual(outside.code, 0, 'the writer key is limited to au/app');
    const [refusedClone] = await waitForEntries('the clone outside the key', { key: writer.id, repo: 'secret' }, (found) => found.length >= 1);
    assert.equal(refusedClone!.action, 'git.connect');
    assert.equal(refusedClone!.outcome, 'denied');
    assert.equal(refusedClone!.status, 404);
    assert.equal(refusedClone!.org, 'au');
  });

  it('records API mutations with their route, key and outcome, denials included, and not reads', async () => {
    const before = (await entries())[0]?.id ?? 0;
    const hook = await adminClient.webhooks.create('au', { url: 'https://receiver.invalid/hook', events: ['push'] });
    const writerClient = new Grove({ baseUrl: server.url, token: writer.token });
    const commit = await writerClient.commits.create('au', 'app', { branch: 'api-branch', startFrom: 'main', message: 'by api', files: [{ path: 'api.txt', content: 'api\n' }] });
    assert.match(commit.sha, /^[0-9a-f]{40}$/);
    await expectApiError(writerClient.webhooks.create('au', { url: 'https://receiver.invalid/nope', events: ['push'] }), 403, 'a write key creating a webhook');
    await expectApiError(writerClient.repos.delete('au', 'secret'), 404, 'a key deleting a repository outside it');
    await adminClient.webhooks.delete('au', hook.id);
    // Reads are not audited.
    await adminClient.webhooks.list('au');
    await writerClient.contents.tree('au', 'app', 'main');

    const found = (await waitForEntries('five API entries', {}, (all) => all.filter((e) => e.id > before && !e.action.startsWith('git.')).length >= 5))
      .filter((e) => e.id > before)
      .reverse();
    assert.deepEqual(found.map((e) => [e.action, e.keyId, e.outcome, e.status, e.repo]), [
      ['POST /api/v1/orgs/:org/webhooks', admin.id, 'ok', 201, null],
      ['POST /api/v1/repos/:org/:repo/commits', writer.id, 'ok', 201, 'app'],
      ['POST /api/v1/orgs/:org/webhooks', writer.id, 'denied', 403, null],
      ['DELETE /api/v1/repos/:org/:repo', writer.id, 'denied', 404, 'secret'],
      ['DELETE /api/v1/orgs/:org/webhooks/:id', admin.id, 'ok', 204, null],
    ], show(found));
    for (const entry of found) {
      assert.equal(entry.org, 'au');
      assert.match(entry.ip ?? '', /127\.0\.0\.1/);
      assert.ok(entry.durationMs >= 0);
      assert.ok(entry.bytesOut > 0, 'an answer was sent');
    }
  });

  // BUG: bytesIn counts only what the server reads from the socket after the request's
  // onRequest hook: http/audit.ts snapshots request.raw.socket.bytesRead there, when the headers
  // and usually the start of the body have already been read. A small push or API write is
  // recorded with bytesIn 0; a push of a 150 KB incompressible file with 85243 to 150000 or so,
  // varying from run to run.
  it('records the bytes a push and an API write send and a clone receives', async () => {
    const tree = path.join(work.path, 'bytes');
    await initWorkRepo(tree);
    await commitFile(tree, 'random.bin', randomBytes(150_000), 'incompressible');
    await gitOk([...auth(writer.token), 'push', '--force', appUrl, 'main:refs/heads/bytes'], { cwd: tree });
    await gitOk([...auth(writer.token), 'clone', '-q', '--branch', 'bytes', appUrl, path.join(work.path, 'bytes-clone')]);
    const fetches = await waitForEntries('the clone', { key: writer.id, action: 'git.fetch' }, (found) => found.some((e) => e.bytesOut > 150_000));
    assert.ok(fetches.some((e) => e.bytesOut > 150_000), 'the clone sent the 150 KB file');

    await commitFile(tree, 'small.txt', 'a small change\n', 'small');
    await gitOk([...auth(writer.token), 'push', appUrl, 'HEAD:refs/heads/bytes'], { cwd: tree });
    const body = JSON.stringify({ branch: 'bytes', message: 'api bytes', files: [{ path: 'api-bytes.txt', content: 'x'.repeat(2000) }] });
    const response = await fetch(`${server.url}/api/v1/repos/au/app/commits`, { method: 'POST', headers: { authorization: `Bearer ${writer.token}`, 'content-type': 'application/json' }, body });
    assert.equal(response.status, 201, await response.text());
    const [apiWrite] = await waitForEntries('the API write', { key: writer.id, action: 'POST /api/v1/repos/:org/:repo/commits' }, (found) => found.length >= 1);
    const [smallPush] = await waitForEntries('the small push', { key: writer.id, action: 'git.push' }, (found) => found.length >= 1);
    assert.deepEqual(
      { smallPush: smallPush!.bytesIn >= 200, apiWrite: apiWrite!.bytesIn >= body.length },
      { smallPush: true, apiWrite: true },
      `bytesIn: small push ${smallPush!.bytesIn} (its pack and commands are more than 200 bytes), API write ${apiWrite!.bytesIn} (its body is ${body.length} bytes)`,
    );
  });

  // BUG: POST /api/v1/keys and DELETE /api/v1/keys/:id have no :org in their route, so
  // http/audit.ts records them with org null, and GET /orgs/{org}/audit (the only way to read
  // the log) can never show who minted or revoked a key of the org.
  it("records the creation and revocation of an org's keys in that org's audit log", async () => {
    const minted = await adminClient.apiKeys.create({ scope: 'read', resources: [{ org: 'au', repo: 'app' }], name: 'minted-by-admin' });
    await adminClient.apiKeys.revoke(minted.id);
    const found = await waitForEntries('the key mutations', { key: admin.id }, (all) => all.some((e) => e.action === 'DELETE /api/v1/keys/:id'), 2000);
    assert.ok(found.some((e) => e.action === 'POST /api/v1/keys' && e.outcome === 'ok'));
  });

  it('filters by key, repository, action, since and until, and pages with a cursor', async () => {
    const all = await entries();
    assert.ok(all.length >= 12, `enough entries to page: ${all.length}`);
    const byKey = await entries({ key: writer.id });
    assert.ok(byKey.length > 0 && byKey.every((e) => e.keyId === writer.id));
    assert.deepEqual(byKey.map((e) => e.id), all.filter((e) => e.keyId === writer.id).map((e) => e.id));
    const byRepo = await entries({ repo: 'secret' });
    assert.ok(byRepo.length >= 2 && byRepo.every((e) => e.repo === 'secret'));
    assert.deepEqual(byRepo.map((e) => e.id), all.filter((e) => e.repo === 'secret').map((e) => e.id));
    const byAction = await entries({ action: 'git.push' });
    assert.ok(byAction.length >= 2 && byAction.every((e) => e.action === 'git.push'));
    const combined = await entries({ key: writer.id, repo: 'app', action: 'git.fetch' });
    assert.deepEqual(combined.map((e) => e.id), all.filter((e) => e.keyId === writer.id && e.repo === 'app' && e.action === 'git.fetch').map((e) => e.id));
    assert.deepEqual(await entries({ key: 'key_does_not_exist' }), []);

    // since (inclusive) and until (exclusive) split the log at a moment between two entries.
    await delay(20);
    const split = new Date().toISOString();
    await delay(20);
    await adminClient.webhooks.create('au', { url: 'https://receiver.invalid/late', events: ['push'] });
    const later = await waitForEntries('the late entry', { since: split }, (found) => found.length >= 1);
    assert.deepEqual(later.map((e) => e.action), ['POST /api/v1/orgs/:org/webhooks']);
    assert.ok(later.every((e) => e.time >= split));
    const earlier = await entries({ until: split });
    assert.ok(earlier.every((e) => e.time < split));
    const everything = await entries();
    assert.deepEqual([...later, ...earlier].map((e) => e.id), everything.map((e) => e.id), 'since and until partition the log');
    const window = await entries({ since: everything[everything.length - 1]!.time, until: split });
    assert.deepEqual(window.map((e) => e.id), earlier.filter((e) => e.time >= everything[everything.length - 1]!.time).map((e) => e.id));

    // Pages of 3 walk the whole log, newest first, without a gap or a duplicate.
    const paged: AuditEntry[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await adminClient.events.audit('au', { limit: 3, ...(cursor ? { cursor } : {}) });
      assert.ok(page.items.length <= 3);
      paged.push(...page.items);
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor);
    assert.equal(pages, Math.ceil(everything.length / 3));
    assert.deepEqual(paged.map((e) => e.id), everything.map((e) => e.id));
    // Cursors combine with filters.
    const firstPush = await adminClient.events.audit('au', { action: 'git.push', limit: 1 });
    assert.equal(firstPush.items.length, 1);
    assert.ok(firstPush.nextCursor !== null);
    const secondPush = await adminClient.events.audit('au', { action: 'git.push', limit: 1, cursor: firstPush.nextCursor! });
    assert.equal(secondPush.items[0]!.action, 'git.push');
    assert.ok(secondPush.items[0]!.id < firstPush.items[0]!.id);

    await expectApiError(adminClient.events.audit('au', { cursor: 'not-a-cursor' }), 400, 'a foreign cursor');
    await expectApiError(adminClient.events.audit('au', { since: 'yesterday' }), 400, 'a malformed since');
    await expectApiError(adminClient.events.audit('au', { limit: 0 }), 400, 'limit 0');
  });

  it('lets only org admins read it: 403 for write and read keys and an admin of one repository, 404 for another org', async () => {
    const client = (token: string) => new Grove({ baseUrl: server.url, token });
    const repoAdmin = await server.sdk.apiKeys.create({ scope: 'admin', resources: [{ org: 'au', repo: 'app' }] });
    const otherAdmin = await server.sdk.apiKeys.create({ scope: 'admin', resources: [{ org: 'au-other' }] });
    await expectApiError(client(writer.token).events.audit('au'), 403, 'a write key');
    await expectApiError(client(reader.token).events.audit('au'), 403, 'a read key');
    await expectApiError(client(repoAdmin.token).events.audit('au'), 403, 'an admin of one repository');
    await expectApiError(client(otherAdmin.token).events.audit('au'), 404, 'an admin of another org');
    const anonymous = await fetch(`${server.url}/api/v1/orgs/au/audit`);
    assert.equal(anonymous.status, 401);
    await anonymous.arrayBuffer();
    assert.ok((await client(admin.token).events.audit('au')).items.length > 0, 'an org admin');
    assert.ok((await server.sdk.events.audit('au')).items.length > 0, 'the root token');
    // Each org sees only its own entries.
    const other = await client(otherAdmin.token).events.audit('au-other', { limit: 1000 });
    assert.ok(other.items.every((e) => e.org === 'au-other'), show(other.items));
  });

  it('deletes entries older than the retention period when the sweeper runs', async () => {
    const old = new Date(Date.now() - 91 * 86400_000).toISOString();
    const recent = new Date(Date.now() - 89 * 86400_000).toISOString();
    const row = { org: 'au', repo: 'app', action: 'git.fetch', key_id: 'root', ip: '127.0.0.1', user_agent: 'git/old', outcome: 'ok' as const, status: 200, bytes_in: 1, bytes_out: 1, duration_ms: 1 };
    await server.server.db.insertInto('audit_log').values([{ ...row, created_at: old }, { ...row, user_agent: 'git/recent', created_at: recent }]).execute();
    assert.deepEqual((await entries({ until: new Date(Date.now() - 80 * 86400_000).toISOString() })).map((e) => e.userAgent), ['git/recent', 'git/old']);
    await server.server.sweep();
    assert.deepEqual((await entries({ until: new Date(Date.now() - 80 * 86400_000).toISOString() })).map((e) => e.userAgent), ['git/recent'], 'the default retention is 90 days');
  });

  it('prints the audit log with `grove audit`', async () => {
    const env = { GROVE_URL: server.url, GROVE_TOKEN: admin.token };
    const run = await grove(['audit', 'au', '--action', 'git.push', '--limit', '1'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    const page = JSON.parse(run.stdout) as { items: AuditEntry[]; nextCursor: string | null };
    assert.equal(page.items.length, 1);
    assert.equal(page.items[0]!.action, 'git.push');
    assert.ok(page.nextCursor !== null);
    const next = JSON.parse((await grove(['audit', 'au', '--action', 'git.push', '--limit', '1', '--cursor', page.nextCursor!], env)).stdout) as { items: AuditEntry[] };
    assert.ok(next.items[0]!.id < page.items[0]!.id);
    const byKey = JSON.parse((await grove(['audit', 'au', '--key', reader.id, '--repo', 'app'], env)).stdout) as { items: AuditEntry[] };
    assert.ok(byKey.items.length > 0 && byKey.items.every((e) => e.keyId === reader.id && e.repo === 'app'));

    const refused = await grove(['audit', 'au'], { ...env, GROVE_TOKEN: writer.token });
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, /forbidden/);
  });
});
