/**
 * Access control over REST: API keys (create, list, get, revoke, validation, minting
 * without escalation, lastUsedAt), scope enforcement on the org and repo routes,
 * signing keys, ref policies, and that no token is ever stored in clear text.
 */
import { databaseContents, onPostgres } from './helpers/database.ts';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { mintToken, type ApiKey, type CreateApiKeyInput, type CreatedApiKey } from '@grove/sdk';
import { startTestServer, type TestServer } from './helpers/server.ts';

interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: any;
}

interface ApiOptions {
  readonly body?: unknown;
  /** Bearer token; defaults to the root token; null sends no Authorization header. */
  readonly token?: string | null;
}

/** Raw fetch: no SDK in between, so tests see exactly what goes over the wire. */
async function api(grove: TestServer, method: string, urlPath: string, options: ApiOptions = {}): Promise<ApiResponse> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = options.token === undefined ? grove.token : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const response = await fetch(`${grove.url}${urlPath}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  let json: unknown = undefined;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Asserts the catalogue error shape {error: {code, message}} with the given status and code. */
function assertError(response: ApiResponse, status: number, code: string, message?: RegExp): void {
  assert.equal(response.status, status, `expected ${status} ${code}, got ${response.status}: ${response.text}`);
  assert.equal(response.json?.error?.code, code, response.text);
  assert.equal(typeof response.json.error.message, 'string');
  if (message) assert.match(response.json.error.message, message);
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** Creates a key with the root token (or another) through the raw API; asserts 201. */
async function createKey(grove: TestServer, body: CreateApiKeyInput, token?: string): Promise<CreatedApiKey> {
  const response = await api(grove, 'POST', '/api/v1/keys', { body, ...(token !== undefined ? { token } : {}) });
  assert.equal(response.status, 201, response.text);
  return response.json as CreatedApiKey;
}

/** Every key the root token lists, following cursors. */
async function allKeys(grove: TestServer, query = ''): Promise<ApiKey[]> {
  const items: ApiKey[] = [];
  let cursor: string | null = null;
  do {
    const response = await api(grove, 'GET', `/api/v1/keys?limit=1000${query}${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(response.status, 200, response.text);
    items.push(...response.json.items);
    cursor = response.json.nextCursor;
  } while (cursor);
  return items;
}

function near(iso: string | null, expectedMs: number, toleranceMs = 10_000): void {
  assert.ok(iso !== null, 'expected a date, got null');
  assert.match(iso, ISO_DATE);
  const delta = Math.abs(Date.parse(iso) - expectedMs);
  assert.ok(delta <= toleranceMs, `${iso} is ${delta} ms away from ${new Date(expectedMs).toISOString()}`);
}

describe('REST API keys: create, list, get, revoke', () => {
  let grove: TestServer;
  before(async () => {
    grove = await startTestServer();
    await grove.createRepo('acme', 'app');
  });
  after(() => grove.close());

  it('creates a key with POST /api/v1/keys and answers 201 with id, a grove_ token, scope, resources, expiresAt, name and labels', async () => {
    const resources = [{ org: 'acme', repo: 'app', branches: ['agent-7/*', 'feature/**'] }];
    const response = await api(grove, 'POST', '/api/v1/keys', { body: { scope: 'write', resources, ttl: '1h', name: 'agent 7', labels: { team: 'blue', run: '42' } } });
    assert.equal(response.status, 201, response.text);
    const key = response.json;
    assert.match(key.id, /^key_[0-9a-z]+$/);
    assert.match(key.token, /^grove_[A-Za-z0-9_-]{43}$/);
    assert.equal(key.scope, 'write');
    assert.deepEqual(key.resources, resources);
    assert.equal(key.name, 'agent 7');
    assert.deepEqual(key.labels, { team: 'blue', run: '42' });
    near(key.expiresAt, Date.now() + 3600_000);
    assert.equal(key.revokedAt, null);
    assert.equal(key.lastUsedAt, null);
    assert.equal(key.createdBy, 'root');
    near(key.createdAt, Date.now());
    assert.deepEqual(Object.keys(key).sort(), ['createdAt', 'createdBy', 'expiresAt', 'id', 'labels', 'lastUsedAt', 'name', 'resources', 'revokedAt', 'scope', 'token']);
  });

  it('accepts every ttl form ("90s", "30m", "7d", seconds) and creates a non-expiring key from the root token without ttl', async () => {
    for (const [ttl, seconds] of [['90s', 90], ['30m', 1800], ['7d', 7 * 86400], [600, 600]] as const) {
      const key = await createKey(grove, { scope: 'read', resources: [{ org: 'acme' }], ttl });
      near(key.expiresAt, Date.now() + seconds * 1000);
    }
    const forever = await createKey(grove, { scope: 'read', resources: [{ org: 'acme' }] });
    assert.equal(forever.expiresAt, null);
    assert.equal(forever.name, null);
    assert.deepEqual(forever.labels, {});
  });

  it('issues a different token and id every time', async () => {
    const keys = await Promise.all(Array.from({ length: 5 }, () => createKey(grove, { scope: 'read', resources: [{ org: 'acme' }] })));
    assert.equal(new Set(keys.map((k) => k.token)).size, 5);
    assert.equal(new Set(keys.map((k) => k.id)).size, 5);
  });

  it('never returns a token from GET /keys or GET /keys/{id}', async () => {
    const created = await createKey(grove, { scope: 'write', resources: [{ org: 'acme', repo: 'app' }], name: 'secret-check', labels: { purpose: 'no-token' } });
    const list = await api(grove, 'GET', '/api/v1/keys?limit=1000');
    assert.equal(list.status, 200, list.text);
    assert.ok(list.json.items.length > 1);
    for (const item of list.json.items) assert.equal('token' in item, false, `token field in ${JSON.stringify(item)}`);
    assert.ok(!list.text.includes(created.token), 'the token appears in the listing');
    assert.ok(!list.text.includes('grove_'), 'something token-like appears in the listing');

    const one = await api(grove, 'GET', `/api/v1/keys/${created.id}`);
    assert.equal(one.status, 200, one.text);
    const { token: _token, ...withoutToken } = created;
    assert.deepEqual(one.json, withoutToken);
    assert.ok(!one.text.includes(created.token));
    assert.deepEqual(list.json.items.find((k: ApiKey) => k.id === created.id), withoutToken);

    // A key may read itself, still without its token.
    const self = await api(grove, 'GET', `/api/v1/keys/${created.id}`, { token: created.token });
    assert.equal(self.status, 200, self.text);
    assert.equal('token' in self.json, false);
    assertError(await api(grove, 'GET', '/api/v1/keys/key_doesnotexist'), 404, 'not_found');
  });

  it('revokes with DELETE /keys/{id}: 204, revokedAt set, and the token answers 401 everywhere from the next request on', async () => {
    const key = await createKey(grove, { scope: 'admin', resources: [{ org: 'acme' }] });
    assert.equal((await api(grove, 'GET', '/api/v1/orgs/acme', { token: key.token })).status, 200);

    const deleted = await api(grove, 'DELETE', `/api/v1/keys/${key.id}`);
    assert.equal(deleted.status, 204, deleted.text);
    assert.equal(deleted.text, '');
    const shown = await api(grove, 'GET', `/api/v1/keys/${key.id}`);
    assert.equal(shown.status, 200);
    near(shown.json.revokedAt, Date.now());

    for (const [method, urlPath, body] of [
      ['GET', '/api/v1/orgs', undefined],
      ['GET', '/api/v1/orgs/acme/repos', undefined],
      ['GET', '/api/v1/repos/acme/app', undefined],
      ['GET', '/api/v1/keys', undefined],
      ['POST', '/api/v1/keys', { scope: 'read', resources: [{ org: 'acme' }] }],
      ['POST', '/api/v1/orgs/acme/repos', { name: 'after-revoke' }],
      ['DELETE', `/api/v1/keys/${key.id}`, undefined],
    ] as const) {
      const response = await api(grove, method, urlPath, { token: key.token, ...(body ? { body } : {}) });
      assertError(response, 401, 'unauthorized');
      assert.equal(response.headers.get('www-authenticate'), 'Basic realm="grove"', `${method} ${urlPath}`);
    }
    for (const service of ['git-upload-pack', 'git-receive-pack']) {
      const git = await fetch(`${grove.url}/acme/app.git/info/refs?service=${service}`, { headers: { authorization: `Bearer ${key.token}` } });
      assert.equal(git.status, 401, service);
      assert.equal(git.headers.get('www-authenticate'), 'Basic realm="grove"');
    }
    assertError(await api(grove, 'GET', '/api/v1/repos/acme/after-revoke'), 404, 'not_found');
    // Revoking again changes nothing.
    assert.equal((await api(grove, 'DELETE', `/api/v1/keys/${key.id}`)).status, 204);
    assert.equal((await api(grove, 'GET', `/api/v1/keys/${key.id}`)).json.revokedAt, shown.json.revokedAt);
    assertError(await api(grove, 'DELETE', '/api/v1/keys/key_doesnotexist'), 404, 'not_found');
  });

  it('answers a wrong, revoked, expired and malformed token with the same 401 on REST', async () => {
    const revoked = await createKey(grove, { scope: 'read', resources: [{ org: 'acme' }] });
    await grove.sdk.apiKeys.revoke(revoked.id);
    const expired = await createKey(grove, { scope: 'read', resources: [{ org: 'acme' }], ttl: '1s' });
    assert.equal((await api(grove, 'GET', '/api/v1/orgs', { token: expired.token })).status, 200);
    await delay(1500);
    const reference = await api(grove, 'GET', '/api/v1/orgs', { token: 'grove_wrongwrongwrongwrongwrongwrongwrongwrong123' });
    assertError(reference, 401, 'unauthorized', /invalid credentials/);
    for (const token of [revoked.token, expired.token, 'garbage', 'eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJhY21lIn0.c2ln', `grove_${'x'.repeat(9000)}`]) {
      const response = await api(grove, 'GET', '/api/v1/orgs', { token });
      assert.equal(response.status, 401, token.slice(0, 40));
      assert.equal(response.text, reference.text, token.slice(0, 40));
      assert.equal(response.headers.get('www-authenticate'), 'Basic realm="grove"');
    }
    const none = await api(grove, 'GET', '/api/v1/orgs', { token: null });
    assertError(none, 401, 'unauthorized', /authentication required/);
    assert.equal(none.headers.get('www-authenticate'), 'Basic realm="grove"');
  });

  it('filters GET /keys by ?org= and by ?label=team:red, alone and together', async () => {
    for (const name of ['filter-a', 'filter-b']) await grove.sdk.orgs.create({ name });
    const make = (orgs: string[], labels: Record<string, string>) =>
      createKey(grove, { scope: 'read', resources: orgs.map((org) => ({ org })), labels });
    const redA = await make(['filter-a'], { team: 'red' });
    const redB = await make(['filter-b'], { team: 'red', tier: 'gold' });
    const blueA = await make(['filter-a'], { team: 'blue' });
    const both = await make(['filter-a', 'filter-b'], {});
    const ids = async (query: string) => (await allKeys(grove, query)).map((k) => k.id).sort();

    assert.deepEqual(await ids('&org=filter-a'), [redA.id, blueA.id, both.id].sort());
    assert.deepEqual(await ids('&org=filter-b'), [redB.id, both.id].sort());
    assert.deepEqual(await ids('&label=team:red'), [redA.id, redB.id].sort());
    assert.deepEqual(await ids('&label=tier:gold'), [redB.id]);
    assert.deepEqual(await ids('&org=filter-a&label=team:red'), [redA.id]);
    assert.deepEqual(await ids('&org=filter-nothing'), []);
    assert.deepEqual(await ids('&label=team:green'), []);
    assertError(await api(grove, 'GET', '/api/v1/keys?label=team'), 400, 'invalid_request', /name:value/);
  });

  it('pages GET /keys with limit=2 and cursors, visiting every key exactly once in id order', async () => {
    const created = [];
    for (let i = 0; i < 5; i++) created.push(await createKey(grove, { scope: 'read', resources: [{ org: 'acme' }], labels: { batch: 'paging' } }));
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const response = await api(grove, 'GET', `/api/v1/keys?label=batch:paging&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(response.status, 200, response.text);
      pages.push(response.json.items.map((k: ApiKey) => k.id));
      cursor = response.json.nextCursor;
      assert.ok(pages.length <= 5, 'too many pages');
    } while (cursor);
    assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
    const seen = pages.flat();
    assert.deepEqual([...seen].sort(), created.map((k) => k.id).sort());
    assert.deepEqual(seen, [...seen].sort(), 'pages are in id order');

    // Every key of the server, two at a time, matches one big page.
    const everything = (await allKeys(grove)).map((k) => k.id);
    const paged: string[] = [];
    cursor = null;
    do {
      const response = await api(grove, 'GET', `/api/v1/keys?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      paged.push(...response.json.items.map((k: ApiKey) => k.id));
      cursor = response.json.nextCursor;
    } while (cursor);
    assert.deepEqual(paged, everything);
    assertError(await api(grove, 'GET', '/api/v1/keys?cursor=bm90LWEta2V5'), 400, 'invalid_request', /cursor/);
    assertError(await api(grove, 'GET', '/api/v1/keys?limit=0'), 400, 'invalid_request');
  });

  const invalid: Array<[string, unknown, RegExp]> = [
    ['a bad scope', { scope: 'owner', resources: [{ org: 'acme' }] }, /scope/],
    ['a missing scope', { resources: [{ org: 'acme' }] }, /scope/],
    ['empty resources', { scope: 'read', resources: [] }, /resources must be a non-empty array/],
    ['missing resources', { scope: 'read' }, /resources/],
    ['a bad org name in a resource', { scope: 'read', resources: [{ org: 'Acme!' }] }, /resources\[0\]\.org: org name "Acme!" is invalid/],
    ['a bad repo name in a resource', { scope: 'read', resources: [{ org: 'acme', repo: 'a/b' }] }, /resources\[0\]\.repo/],
    ['an unknown field in a resource', { scope: 'read', resources: [{ org: 'acme', repos: ['app'] }] }, /unknown field "repos"/],
    ['a bad branch glob "a..b"', { scope: 'write', resources: [{ org: 'acme', branches: ['a..b'] }] }, /branch pattern "a\.\.b" is invalid/],
    ['an empty branches list', { scope: 'write', resources: [{ org: 'acme', branches: [] }] }, /branches must be a non-empty array/],
    ['a bad ttl "5 minutes"', { scope: 'read', resources: [{ org: 'acme' }], ttl: '5 minutes' }, /ttl must be like "90s", "30m", "1h", "7d"/],
    ['a zero ttl', { scope: 'read', resources: [{ org: 'acme' }], ttl: 0 }, /ttl/],
    ['a ttl over a year', { scope: 'read', resources: [{ org: 'acme' }], ttl: '400d' }, /ttl must be at most 366 days/],
    ['an unknown field', { scope: 'read', resources: [{ org: 'acme' }], admin: true }, /unknown field "admin"/],
    ['a bad label name', { scope: 'read', resources: [{ org: 'acme' }], labels: { 'team red': 'x' } }, /label name "team red"/],
    ['a non-string label value', { scope: 'read', resources: [{ org: 'acme' }], labels: { team: 5 } }, /labels/],
  ];
  for (const [problem, body, message] of invalid) {
    it(`refuses a key with ${problem} with 400 invalid_request and a clear message, creating nothing`, async () => {
      const before = (await allKeys(grove)).length;
      const response = await api(grove, 'POST', '/api/v1/keys', { body });
      assertError(response, 400, 'invalid_request', message);
      assert.ok(!response.text.includes('grove_'), 'no token in an error');
      assert.equal((await allKeys(grove)).length, before);
    });
  }

  it('sets lastUsedAt once the key is used, on REST and on git', async () => {
    const restKey = await createKey(grove, { scope: 'read', resources: [{ org: 'acme' }] });
    const gitKey = await createKey(grove, { scope: 'read', resources: [{ org: 'acme', repo: 'app' }] });
    assert.equal((await api(grove, 'GET', `/api/v1/keys/${restKey.id}`)).json.lastUsedAt, null);
    const before = Date.now();
    assert.equal((await api(grove, 'GET', '/api/v1/orgs', { token: restKey.token })).status, 200);
    const git = await fetch(`${grove.url}/acme/app.git/info/refs?service=git-upload-pack`, { headers: { authorization: `Bearer ${gitKey.token}` } });
    assert.equal(git.status, 200);
    for (const key of [restKey, gitKey]) {
      const lastUsedAt = (await api(grove, 'GET', `/api/v1/keys/${key.id}`)).json.lastUsedAt;
      assert.match(lastUsedAt, ISO_DATE);
      assert.ok(Date.parse(lastUsedAt) >= before - 5 && Date.parse(lastUsedAt) <= Date.now(), lastUsedAt);
    }
  });
});

describe('REST API keys: minting without escalation', () => {
  let grove: TestServer;
  before(async () => {
    grove = await startTestServer();
    await grove.createRepo('acme', 'app');
    await grove.createRepo('acme', 'x');
    await grove.createRepo('other', 'site');
  });
  after(() => grove.close());

  it('refuses key creation to read and write keys with 403 forbidden', async () => {
    for (const scope of ['read', 'write'] as const) {
      const key = await createKey(grove, { scope, resources: [{ org: 'acme' }] });
      const response = await api(grove, 'POST', '/api/v1/keys', { token: key.token, body: { scope: 'read', resources: [{ org: 'acme', repo: 'app' }], ttl: '1m' } });
      assertError(response, 403, 'forbidden', /only admin keys can create API keys/);
      assertError(await api(grove, 'GET', '/api/v1/keys', { token: key.token }), 403, 'forbidden');
    }
  });

  it('lets an admin key of org acme create narrower keys but not keys for another org or with a longer expiry', async () => {
    const admin = await createKey(grove, { scope: 'admin', resources: [{ org: 'acme' }], ttl: '1h' });
    const as = (body: unknown) => api(grove, 'POST', '/api/v1/keys', { token: admin.token, body });

    assertError(await as({ scope: 'read', resources: [{ org: 'other' }], ttl: '10m' }), 403, 'forbidden', /resource other is outside this key's resources/);
    assertError(await as({ scope: 'read', resources: [{ org: 'acme' }, { org: 'other', repo: 'site' }], ttl: '10m' }), 403, 'forbidden', /other\/site/);
    assertError(await as({ scope: 'read', resources: [{ org: 'acme' }], ttl: '2h' }), 403, 'forbidden', /expire no later than this key/);
    assertError(await as({ scope: 'read', resources: [{ org: 'acme' }], ttl: '7d' }), 403, 'forbidden', /expire no later/);

    const narrower = await as({ scope: 'write', resources: [{ org: 'acme', repo: 'app', branches: ['agent-7/*'] }], ttl: '30m' });
    assert.equal(narrower.status, 201, narrower.text);
    assert.equal(narrower.json.createdBy, admin.id);
    const sameScope = await as({ scope: 'admin', resources: [{ org: 'acme' }], ttl: '59m' });
    assert.equal(sameScope.status, 201, sameScope.text);
    // Without ttl the new key inherits the creating key's expiry, never "never".
    const inherited = await as({ scope: 'read', resources: [{ org: 'acme' }] });
    assert.equal(inherited.status, 201, inherited.text);
    assert.equal(inherited.json.expiresAt, admin.expiresAt);

    // The minted key works within its limits.
    assert.equal((await api(grove, 'GET', '/api/v1/repos/acme/app', { token: narrower.json.token })).status, 200);
    assertError(await api(grove, 'GET', '/api/v1/repos/acme/x', { token: narrower.json.token }), 404, 'not_found');

    // The admin key lists the keys it created, and not the others.
    const listed = await api(grove, 'GET', '/api/v1/keys?limit=1000', { token: admin.token });
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(listed.json.items.map((k: ApiKey) => k.id).sort(), [narrower.json.id, sameScope.json.id, inherited.json.id].sort());
  });

  it('lets a non-expiring admin key mint a non-expiring key, and refuses an expiring one a key that outlives it by one second', async () => {
    const admin = await createKey(grove, { scope: 'admin', resources: [{ org: 'acme' }], ttl: '1h' });
    const forever = await createKey(grove, { scope: 'admin', resources: [{ org: 'acme' }] });
    assert.equal(forever.expiresAt, null);
    const fromForever = await api(grove, 'POST', '/api/v1/keys', { token: forever.token, body: { scope: 'read', resources: [{ org: 'acme' }] } });
    assert.equal(fromForever.status, 201, fromForever.text);
    assert.equal(fromForever.json.expiresAt, null);
    assertError(await api(grove, 'POST', '/api/v1/keys', { token: admin.token, body: { scope: 'read', resources: [{ org: 'acme' }], ttl: 3601 } }), 403, 'forbidden', /expire/);
  });

  it('refuses an admin key limited to acme/app a key for acme/x or for the whole org (403), and allows a narrower one (201)', async () => {
    const admin = await createKey(grove, { scope: 'admin', resources: [{ org: 'acme', repo: 'app' }], ttl: '1h' });
    const as = (body: unknown) => api(grove, 'POST', '/api/v1/keys', { token: admin.token, body });
    assertError(await as({ scope: 'read', resources: [{ org: 'acme', repo: 'x' }], ttl: '10m' }), 403, 'forbidden', /acme\/x is outside this key's resources/);
    assertError(await as({ scope: 'read', resources: [{ org: 'acme' }], ttl: '10m' }), 403, 'forbidden', /acme is outside/);
    const narrower = await as({ scope: 'read', resources: [{ org: 'acme', repo: 'app' }], ttl: '10m' });
    assert.equal(narrower.status, 201, narrower.text);
    assert.equal(narrower.json.scope, 'read');
    assert.deepEqual(narrower.json.resources, [{ org: 'acme', repo: 'app' }]);
  });

  it('refuses a key limited to branches agent-7/* a key without branches or with a wider glob, and allows a narrower one', async () => {
    const admin = await createKey(grove, { scope: 'admin', resources: [{ org: 'acme', repo: 'app', branches: ['agent-7/*'] }], ttl: '1h' });
    const as = (body: unknown) => api(grove, 'POST', '/api/v1/keys', { token: admin.token, body });
    assertError(await as({ scope: 'write', resources: [{ org: 'acme', repo: 'app' }], ttl: '10m' }), 403, 'forbidden', /outside this key's resources/);
    assertError(await as({ scope: 'write', resources: [{ org: 'acme', repo: 'app', branches: ['agent-7/**'] }], ttl: '10m' }), 403, 'forbidden', /agent-7\/\*\*/);
    assertError(await as({ scope: 'write', resources: [{ org: 'acme', repo: 'app', branches: ['agent-8/*'] }], ttl: '10m' }), 403, 'forbidden');
    const narrower = await as({ scope: 'write', resources: [{ org: 'acme', repo: 'app', branches: ['agent-7/fix'] }], ttl: '10m' });
    assert.equal(narrower.status, 201, narrower.text);
    const same = await as({ scope: 'write', resources: [{ org: 'acme', repo: 'app', branches: ['agent-7/*'] }], ttl: '10m' });
    assert.equal(same.status, 201, same.text);
  });

  it('refuses key creation and key listing to signed tokens, even admin ones', async () => {
    const pair = generateKeyPairSync('ed25519');
    await grove.sdk.signingKeys.create('acme', { publicKey: pair.publicKey.export({ format: 'jwk' }), name: 'fleet' });
    const token = await mintToken({ privateKey: pair.privateKey.export({ format: 'jwk' }), scope: 'admin', resources: [{ org: 'acme' }], ttl: '10m' });
    assert.equal((await api(grove, 'GET', '/api/v1/orgs/acme', { token })).status, 200, 'the signed token is valid');
    const before = (await allKeys(grove)).length;
    assertError(await api(grove, 'POST', '/api/v1/keys', { token, body: { scope: 'read', resources: [{ org: 'acme' }], ttl: '1m' } }), 403, 'forbidden', /signed tokens cannot create API keys/);
    assertError(await api(grove, 'GET', '/api/v1/keys', { token }), 403, 'forbidden');
    assert.equal((await allKeys(grove)).length, before);
  });

  // Regression: registering a signing key is a way to mint credentials; an expiring admin key used
  // to register one and keep minting admin tokens after it expired.
  it('does not let an expiring admin key outlive its expiry by registering a signing key', async () => {
    const admin = await createKey(grove, { scope: 'admin', resources: [{ org: 'acme' }], ttl: '2s' });
    const pair = generateKeyPairSync('ed25519');
    const registered = await api(grove, 'POST', '/api/v1/orgs/acme/signing-keys', { token: admin.token, body: { publicKey: pair.publicKey.export({ format: 'jwk' }), name: 'registered by a 2 s key' } });
    if (registered.status === 201) {
      await delay(2500);
      assertError(await api(grove, 'GET', '/api/v1/orgs/acme', { token: admin.token }), 401, 'unauthorized');
      const token = await mintToken({ privateKey: pair.privateKey.export({ format: 'jwk' }), scope: 'admin', resources: [{ org: 'acme' }], ttl: '24h' });
      const afterExpiry = await api(grove, 'POST', '/api/v1/orgs/acme/repos', { token, body: { name: 'made-after-expiry' } });
      assert.equal(afterExpiry.status, 401, `a token signed with the key registered by the expired admin key still works: ${afterExpiry.status} ${afterExpiry.text}`);
    } else {
      assertError(registered, 403, 'forbidden');
    }
  });

  // Regression: an admin-scoped signed token used to be able to register a new signing key and so
  // mint tokens for ever after.
  it('does not let a signed token register a signing key (it would outlive the token and its issuer)', async () => {
    const issuer = generateKeyPairSync('ed25519');
    const issuerKey = await grove.sdk.signingKeys.create('acme', { publicKey: issuer.publicKey.export({ format: 'jwk' }), name: 'issuer' });
    const token = await mintToken({ privateKey: issuer.privateKey.export({ format: 'jwk' }), scope: 'admin', resources: [{ org: 'acme' }], ttl: '10m' });
    const own = generateKeyPairSync('ed25519');
    const registered = await api(grove, 'POST', '/api/v1/orgs/acme/signing-keys', { token, body: { publicKey: own.publicKey.export({ format: 'jwk' }), name: 'self-registered' } });
    await grove.sdk.signingKeys.delete('acme', issuerKey.id);
    assert.equal((await api(grove, 'GET', '/api/v1/orgs/acme', { token })).status, 401, 'the issuing key is gone');
    if (registered.status === 201) await grove.sdk.signingKeys.delete('acme', registered.json.id); // keep the server clean for later tests
    assertError(registered, 403, 'forbidden');
  });

  it('revokes every key naming an org when the org is deleted, so a new org of the same name is out of their reach', async () => {
    await grove.sdk.orgs.create({ name: 'short-lived' });
    const pair = generateKeyPairSync('ed25519');
    await grove.sdk.signingKeys.create('short-lived', { publicKey: pair.publicKey.export({ format: 'jwk' }), name: 'old' });
    const key = await createKey(grove, { scope: 'admin', resources: [{ org: 'short-lived' }] });
    const token = await mintToken({ privateKey: pair.privateKey.export({ format: 'jwk' }), scope: 'admin', resources: [{ org: 'short-lived' }] });
    assert.equal((await api(grove, 'GET', '/api/v1/orgs/short-lived', { token: key.token })).status, 200);
    assert.equal((await api(grove, 'DELETE', '/api/v1/orgs/short-lived')).status, 204);
    assert.equal((await api(grove, 'POST', '/api/v1/orgs', { body: { name: 'short-lived' } })).status, 201);
    assertError(await api(grove, 'GET', '/api/v1/orgs/short-lived', { token: key.token }), 401, 'unauthorized');
    assertError(await api(grove, 'GET', '/api/v1/orgs/short-lived', { token }), 401, 'unauthorized');
    assert.match((await api(grove, 'GET', `/api/v1/keys/${key.id}`)).json.revokedAt, ISO_DATE);
  });

  it('refuses to mint a key for an org or repository that does not exist (404): a grant is bound to what is there', async () => {
    assertError(await api(grove, 'POST', '/api/v1/keys', { body: { scope: 'read', resources: [{ org: 'acme', repo: 'not-yet' }] } }), 404, 'not_found', /acme\/not-yet/);
    assertError(await api(grove, 'POST', '/api/v1/keys', { body: { scope: 'read', resources: [{ org: 'no-such-org' }] } }), 404, 'not_found', /no-such-org/);
  });

  it('does not let a key for a deleted repository reach a new repository of the same name, on REST nor git, and shows its grant as deleted', async () => {
    await grove.createRepo('acme', 'reborn');
    const key = await createKey(grove, { scope: 'write', resources: [{ org: 'acme', repo: 'reborn' }] });
    const gitAdvert = (token: string) =>
      fetch(`${grove.url}/acme/reborn.git/info/refs?service=git-upload-pack`, { headers: { authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` } });
    assert.equal((await api(grove, 'GET', '/api/v1/repos/acme/reborn', { token: key.token })).status, 200);
    assert.equal((await gitAdvert(key.token)).status, 200);

    assert.equal((await api(grove, 'DELETE', '/api/v1/repos/acme/reborn')).status, 204);
    await grove.createRepo('acme', 'reborn');
    assertError(await api(grove, 'GET', '/api/v1/repos/acme/reborn', { token: key.token }), 404, 'not_found');
    assert.equal((await gitAdvert(key.token)).status, 404);
    assert.equal((await gitAdvert(grove.token)).status, 200, 'the new repository exists');
    const shown = (await api(grove, 'GET', `/api/v1/keys/${key.id}`)).json;
    assert.deepEqual(shown.resources, [{ org: 'acme', repo: 'reborn', deleted: true }]);
  });

  it('follows a renamed repository: the key reaches it under its new name, and not a new repository under the old one', async () => {
    await grove.createRepo('acme', 'old-name');
    const key = await createKey(grove, { scope: 'read', resources: [{ org: 'acme', repo: 'old-name' }] });
    assert.equal((await api(grove, 'PATCH', '/api/v1/repos/acme/old-name', { body: { name: 'new-name' } })).status, 200);
    await grove.createRepo('acme', 'old-name');
    assert.equal((await api(grove, 'GET', '/api/v1/repos/acme/new-name', { token: key.token })).status, 200);
    assertError(await api(grove, 'GET', '/api/v1/repos/acme/old-name', { token: key.token }), 404, 'not_found');
    assert.deepEqual((await api(grove, 'GET', `/api/v1/keys/${key.id}`)).json.resources, [{ org: 'acme', repo: 'new-name' }]);
  });

  it('does not let a signed token reach a repository created after it was issued (as a deleted one recreated under its name is), while a later token does', async () => {
    const pair = generateKeyPairSync('ed25519');
    const registered = await grove.sdk.signingKeys.create('acme', { publicKey: pair.publicKey.export({ format: 'jwk' }), name: 'recreate' });
    try {
      const privateKey = pair.privateKey.export({ format: 'jwk' });
      const resources = [{ org: 'acme', repo: 'phoenix' }];
      // issued five minutes ago (beyond the one-minute clock tolerance), valid for another hour
      const older = await mintToken({ privateKey, scope: 'read', resources, ttl: '65m', now: Date.now() - 5 * 60_000 });
      await grove.createRepo('acme', 'phoenix');
      assertError(await api(grove, 'GET', '/api/v1/repos/acme/phoenix', { token: older }), 404, 'not_found');
      const newer = await mintToken({ privateKey, scope: 'read', resources, ttl: '10m' });
      assert.equal((await api(grove, 'GET', '/api/v1/repos/acme/phoenix', { token: newer })).status, 200);
      // an org-wide grant is bound to the org (its signing keys die with it), so it reaches new repositories
      const orgWide = await mintToken({ privateKey, scope: 'read', resources: [{ org: 'acme' }], ttl: '65m', now: Date.now() - 5 * 60_000 });
      assert.equal((await api(grove, 'GET', '/api/v1/repos/acme/phoenix', { token: orgWide })).status, 200);
    } finally {
      await grove.sdk.signingKeys.delete('acme', registered.id);
    }
  });

  it('hides keys an admin key did not create: GET and DELETE answer 404', async () => {
    const admin = await createKey(grove, { scope: 'admin', resources: [{ org: 'acme' }], ttl: '1h' });
    const rootMade = await createKey(grove, { scope: 'read', resources: [{ org: 'acme' }] });
    assertError(await api(grove, 'GET', `/api/v1/keys/${rootMade.id}`, { token: admin.token }), 404, 'not_found');
    assertError(await api(grove, 'DELETE', `/api/v1/keys/${rootMade.id}`, { token: admin.token }), 404, 'not_found');
    assert.equal((await api(grove, 'GET', `/api/v1/keys/${rootMade.id}`)).json.revokedAt, null);
    assert.equal((await api(grove, 'GET', '/api/v1/orgs', { token: rootMade.token })).status, 200);
  });
});

describe('REST scope enforcement on orgs and repos', () => {
  let grove: TestServer;
  const key = async (body: CreateApiKeyInput) => (await createKey(grove, body)).token;
  before(async () => {
    grove = await startTestServer();
    await grove.createRepo('acme', 'app');
    await grove.createRepo('acme', 'other');
    await grove.createRepo('globex', 'site');
  });
  after(() => grove.close());

  it('refuses a read key creating, patching or deleting repos with 403 forbidden, and changes nothing', async () => {
    for (const scope of ['read', 'write'] as const) {
      const token = await key({ scope, resources: [{ org: 'acme' }] });
      const before = await api(grove, 'GET', '/api/v1/repos/acme/app');
      assertError(await api(grove, 'POST', '/api/v1/orgs/acme/repos', { token, body: { name: `by-${scope}` } }), 403, 'forbidden', new RegExp(`scope ${scope}; admin access is needed`));
      assertError(await api(grove, 'PATCH', '/api/v1/repos/acme/app', { token, body: { description: 'changed' } }), 403, 'forbidden', /admin access is needed/);
      assertError(await api(grove, 'DELETE', '/api/v1/repos/acme/app', { token }), 403, 'forbidden', /admin access is needed/);
      assertError(await api(grove, 'DELETE', '/api/v1/orgs/acme', { token }), 403, 'forbidden');
      assert.equal((await api(grove, 'GET', '/api/v1/repos/acme/app', { token })).status, 200, 'reading is allowed');
      assert.deepEqual((await api(grove, 'GET', '/api/v1/repos/acme/app')).json, before.json);
      assertError(await api(grove, 'GET', `/api/v1/repos/acme/by-${scope}`), 404, 'not_found');
    }
  });

  it('shows a key for acme/app only acme/app in GET /orgs/acme/repos and only acme in GET /orgs', async () => {
    const token = await key({ scope: 'read', resources: [{ org: 'acme', repo: 'app' }] });
    const repos = await api(grove, 'GET', '/api/v1/orgs/acme/repos', { token });
    assert.equal(repos.status, 200, repos.text);
    assert.deepEqual(repos.json.items.map((r: { name: string }) => r.name), ['app']);
    assert.equal(repos.json.nextCursor, null);
    const orgs = await api(grove, 'GET', '/api/v1/orgs', { token });
    assert.equal(orgs.status, 200, orgs.text);
    assert.deepEqual(orgs.json.items.map((o: { name: string }) => o.name), ['acme']);
    // Root sees everything, for contrast.
    assert.deepEqual((await api(grove, 'GET', '/api/v1/orgs/acme/repos')).json.items.map((r: { name: string }) => r.name), ['app', 'other']);
  });

  it('answers 404 for a repository or org outside the key, the same as for one that does not exist', async () => {
    const token = await key({ scope: 'admin', resources: [{ org: 'acme', repo: 'app' }] });
    const hidden = await api(grove, 'GET', '/api/v1/repos/acme/other', { token });
    assertError(hidden, 404, 'not_found', /repository acme\/other not found/);
    assertError(await api(grove, 'GET', '/api/v1/repos/acme/nonexistent', { token }), 404, 'not_found', /repository acme\/nonexistent not found/);
    assertError(await api(grove, 'PATCH', '/api/v1/repos/acme/other', { token, body: { description: 'x' } }), 404, 'not_found');
    assertError(await api(grove, 'DELETE', '/api/v1/repos/acme/other', { token }), 404, 'not_found');
    assertError(await api(grove, 'GET', '/api/v1/repos/acme/other/policies', { token }), 404, 'not_found');
    assertError(await api(grove, 'GET', '/api/v1/orgs/globex', { token }), 404, 'not_found', /org globex not found/);
    assertError(await api(grove, 'GET', '/api/v1/orgs/globex/repos', { token }), 404, 'not_found');
    assertError(await api(grove, 'GET', '/api/v1/repos/globex/site', { token }), 404, 'not_found');
    assertError(await api(grove, 'GET', '/api/v1/orgs/nonexistent', { token }), 404, 'not_found', /org nonexistent not found/);
    assert.equal((await api(grove, 'GET', '/api/v1/repos/acme/other')).status, 200, 'acme/other does exist');
  });

  it('lets only the root token create orgs: an admin key gets 403 forbidden', async () => {
    const token = await key({ scope: 'admin', resources: [{ org: 'acme' }] });
    assertError(await api(grove, 'POST', '/api/v1/orgs', { token, body: { name: 'new-org' } }), 403, 'forbidden', /only the root admin token/);
    assertError(await api(grove, 'GET', '/api/v1/orgs/new-org'), 404, 'not_found');
    assert.equal((await api(grove, 'POST', '/api/v1/orgs', { body: { name: 'new-org' } })).status, 201);
  });

  it('lets an org-wide admin key create, patch and delete repos in its org, and not in another org', async () => {
    const token = await key({ scope: 'admin', resources: [{ org: 'acme' }] });
    const created = await api(grove, 'POST', '/api/v1/orgs/acme/repos', { token, body: { name: 'by-admin' } });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.name, 'by-admin');
    const patched = await api(grove, 'PATCH', '/api/v1/repos/acme/by-admin', { token, body: { description: 'made by an admin key' } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.description, 'made by an admin key');
    assertError(await api(grove, 'POST', '/api/v1/orgs/globex/repos', { token, body: { name: 'intruder' } }), 404, 'not_found');
    assertError(await api(grove, 'GET', '/api/v1/repos/globex/intruder'), 404, 'not_found');
    assert.equal((await api(grove, 'DELETE', '/api/v1/repos/acme/by-admin', { token })).status, 204);
  });

  // Regression: an admin key limited to branches agent-7/* used to be able to rename and delete
  // the whole repository.
  it('refuses repo deletion and renaming to an admin key limited to branches agent-7/*', async () => {
    await grove.createRepo('acme', 'branchy');
    const token = await key({ scope: 'admin', resources: [{ org: 'acme', branches: ['agent-7/*'] }] });
    assertError(await api(grove, 'POST', '/api/v1/orgs/acme/repos', { token, body: { name: 'by-branch-admin' } }), 403, 'forbidden', /needs a grant on the whole org/);
    const renamed = await api(grove, 'PATCH', '/api/v1/repos/acme/branchy', { token, body: { name: 'branchy-renamed' } });
    const deleted = await api(grove, 'DELETE', `/api/v1/repos/acme/${renamed.status === 200 ? 'branchy-renamed' : 'branchy'}`, { token });
    assert.deepEqual([renamed.status, deleted.status], [403, 403], `PATCH rename answered ${renamed.status}, DELETE answered ${deleted.status}`);
    assertError(renamed, 403, 'forbidden');
  });

  it('refuses repo creation to an admin key limited to one repo (403), while it may still manage that repo', async () => {
    const token = await key({ scope: 'admin', resources: [{ org: 'acme', repo: 'app' }] });
    assertError(await api(grove, 'POST', '/api/v1/orgs/acme/repos', { token, body: { name: 'by-repo-admin' } }), 403, 'forbidden', /needs a grant on the whole org/);
    assertError(await api(grove, 'GET', '/api/v1/repos/acme/by-repo-admin'), 404, 'not_found');
    const patched = await api(grove, 'PATCH', '/api/v1/repos/acme/app', { token, body: { description: 'managed by its repo admin' } });
    assert.equal(patched.status, 200, patched.text);
  });
});

describe('REST signing keys and ref policies', () => {
  let grove: TestServer;
  const jwkPair = generateKeyPairSync('ed25519');
  const pemPair = generateKeyPairSync('ed25519');
  before(async () => {
    grove = await startTestServer();
    await grove.createRepo('acme', 'app');
    await grove.createRepo('other', 'site');
  });
  after(() => grove.close());

  const signingKeys = (org: string) => `/api/v1/orgs/${org}/signing-keys`;

  it('revokes one signed token by jti: it is refused from the next request on, while another token of the same key still works', async () => {
    const pair = generateKeyPairSync('ed25519');
    const registered = await grove.sdk.signingKeys.create('acme', { publicKey: pair.publicKey.export({ format: 'jwk' }), name: 'revocations' });
    const privateKey = pair.privateKey.export({ format: 'jwk' });
    const revoked = await mintToken({ privateKey, scope: 'read', resources: [{ org: 'acme' }], jti: 'agent-1-session', ttl: '1h' });
    const kept = await mintToken({ privateKey, scope: 'read', resources: [{ org: 'acme' }], jti: 'agent-2-session', ttl: '1h' });
    assert.equal((await api(grove, 'GET', '/api/v1/orgs/acme', { token: revoked })).status, 200);

    const exp = JSON.parse(Buffer.from(revoked.split('.')[1]!, 'base64url').toString('utf8')).exp as number;
    await grove.sdk.signingKeys.revokeToken('acme', registered.id, 'agent-1-session', { exp });
    assertError(await api(grove, 'GET', '/api/v1/orgs/acme', { token: revoked }), 401, 'unauthorized');
    const gitAnswer = await fetch(`${grove.url}/acme/app.git/info/refs?service=git-upload-pack`, { headers: { authorization: `Bearer ${revoked}` } });
    assert.equal(gitAnswer.status, 401);
    assert.equal((await api(grove, 'GET', '/api/v1/orgs/acme', { token: kept })).status, 200);
    const row = (await grove.server.db.selectFrom('revoked_tokens').selectAll().where('jti', '=', 'agent-1-session').executeTakeFirstOrThrow());
    assert.equal(row.expires_at, new Date((exp + 60) * 1000).toISOString(), 'kept until the token\'s exp and the clock tolerance');
    // revoking again answers 204 (without exp: kept for the longest lifetime a token can have)
    assert.equal((await api(grove, 'DELETE', `${signingKeys('acme')}/${registered.id}/tokens/agent-1-session`)).status, 204);
    assertError(await api(grove, 'GET', '/api/v1/orgs/acme', { token: revoked }), 401, 'unauthorized');
    await grove.sdk.signingKeys.delete('acme', registered.id);
    assert.equal((await grove.server.db.selectFrom('revoked_tokens').selectAll().where('signing_key_id', '=', registered.id).execute()).length, 0, 'entries go with their signing key');
  });

  it('keeps a revoked jti refused after a restart (the deny-list is loaded at start)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'grove-revoked-'));
    try {
      let server = await startTestServer({}, dir);
      await server.createRepo('acme', 'app');
      const pair = generateKeyPairSync('ed25519');
      const registered = await server.sdk.signingKeys.create('acme', { publicKey: pair.publicKey.export({ format: 'jwk' }), name: 'restart' });
      const token = await mintToken({ privateKey: pair.privateKey.export({ format: 'jwk' }), scope: 'read', resources: [{ org: 'acme' }], jti: 'before-restart' });
      await server.sdk.signingKeys.revokeToken('acme', registered.id, 'before-restart');
      await server.close();
      server = await startTestServer({}, dir);
      try {
        assertError(await api(server, 'GET', '/api/v1/orgs/acme', { token }), 401, 'unauthorized');
      } finally {
        await server.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to revoke a token of a signing key of another org or of no key (404), to a write key (403), and a jti over 200 characters (400)', async () => {
    const pair = generateKeyPairSync('ed25519');
    const registered = await grove.sdk.signingKeys.create('acme', { publicKey: pair.publicKey.export({ format: 'jwk' }), name: 'refusals' });
    const writer = await createKey(grove, { scope: 'write', resources: [{ org: 'acme' }] });
    assertError(await api(grove, 'DELETE', `${signingKeys('other')}/${registered.id}/tokens/x`), 404, 'not_found', /signing key/);
    assertError(await api(grove, 'DELETE', `${signingKeys('acme')}/sk_nothing/tokens/x`), 404, 'not_found', /signing key/);
    assertError(await api(grove, 'DELETE', `${signingKeys('acme')}/${registered.id}/tokens/x`, { token: writer.token }), 403, 'forbidden');
    assertError(await api(grove, 'DELETE', `${signingKeys('acme')}/${registered.id}/tokens/${'j'.repeat(201)}`), 400, 'invalid_request');
    assertError(await api(grove, 'DELETE', `${signingKeys('acme')}/${registered.id}/tokens/x?exp=soon`), 400, 'invalid_request');
    assert.equal((await grove.server.db.selectFrom('revoked_tokens').selectAll().where('signing_key_id', '=', registered.id).execute()).length, 0);
    await grove.sdk.signingKeys.delete('acme', registered.id);
  });

  it('registers an Ed25519 public key as a JWK and as a PEM (201), lists both, and deletes one (204, then 404)', async () => {
    const publicJwk = jwkPair.publicKey.export({ format: 'jwk' });
    const jwk = await api(grove, 'POST', signingKeys('acme'), { body: { publicKey: publicJwk, name: 'as jwk' } });
    assert.equal(jwk.status, 201, jwk.text);
    assert.match(jwk.json.id, /^sk_[0-9a-z]+$/);
    assert.equal(jwk.json.org, 'acme');
    assert.equal(jwk.json.name, 'as jwk');
    assert.deepEqual(jwk.json.publicKey, { kty: 'OKP', crv: 'Ed25519', x: publicJwk.x });
    assert.match(jwk.json.createdAt, ISO_DATE);

    const pem = await api(grove, 'POST', signingKeys('acme'), { body: { publicKey: pemPair.publicKey.export({ format: 'pem', type: 'spki' }), name: 'as pem' } });
    assert.equal(pem.status, 201, pem.text);
    assert.deepEqual(pem.json.publicKey, { kty: 'OKP', crv: 'Ed25519', x: pemPair.publicKey.export({ format: 'jwk' }).x });

    const listed = await api(grove, 'GET', signingKeys('acme'));
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(listed.json.items.map((k: { id: string }) => k.id).sort(), [jwk.json.id, pem.json.id].sort());
    assert.deepEqual(listed.json.items.find((k: { id: string }) => k.id === jwk.json.id), jwk.json);
    assert.deepEqual(await grove.sdk.signingKeys.list('acme'), listed.json.items);

    const deleted = await api(grove, 'DELETE', `${signingKeys('acme')}/${pem.json.id}`);
    assert.equal(deleted.status, 204, deleted.text);
    assertError(await api(grove, 'DELETE', `${signingKeys('acme')}/${pem.json.id}`), 404, 'not_found');
    assert.deepEqual((await api(grove, 'GET', signingKeys('acme'))).json.items.map((k: { id: string }) => k.id), [jwk.json.id]);
    // A key of acme cannot be deleted through another org's path.
    assertError(await api(grove, 'DELETE', `${signingKeys('other')}/${jwk.json.id}`), 404, 'not_found');
  });

  const badKeys: Array<[string, () => unknown, RegExp]> = [
    ['a private JWK (with "d")', () => generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), /private key/],
    ['an RSA public PEM', () => generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }), /Ed25519/],
    ['an Ed25519 private PEM', () => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), /private key/],
    ['an X25519 JWK', () => generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }), /Ed25519/],
    ['a string that is no PEM', () => 'ssh-ed25519 AAAA', /JWK object or a PEM string/],
    ['a broken PEM', () => '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', /not a valid PEM/],
  ];
  for (const [what, publicKey, message] of badKeys) {
    it(`refuses ${what} as a signing key with 400 invalid_request`, async () => {
      const before = (await api(grove, 'GET', signingKeys('acme'))).json.items.length;
      assertError(await api(grove, 'POST', signingKeys('acme'), { body: { publicKey: publicKey(), name: 'bad' } }), 400, 'invalid_request', message);
      assert.equal((await api(grove, 'GET', signingKeys('acme'))).json.items.length, before);
    });
  }

  it('answers 404 to an admin key of another org on every signing-key route, and 403 to write or repo-limited admin keys of the org', async () => {
    const registered = await grove.sdk.signingKeys.create('acme', { publicKey: generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }), name: 'visible to acme only' });
    const outsider = (await createKey(grove, { scope: 'admin', resources: [{ org: 'other' }] })).token;
    const body = { publicKey: generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }), name: 'intruder' };
    assertError(await api(grove, 'GET', signingKeys('acme'), { token: outsider }), 404, 'not_found');
    assertError(await api(grove, 'POST', signingKeys('acme'), { token: outsider, body }), 404, 'not_found');
    assertError(await api(grove, 'DELETE', `${signingKeys('acme')}/${registered.id}`, { token: outsider }), 404, 'not_found');

    const writer = (await createKey(grove, { scope: 'write', resources: [{ org: 'acme' }] })).token;
    const repoAdmin = (await createKey(grove, { scope: 'admin', resources: [{ org: 'acme', repo: 'app' }] })).token;
    for (const token of [writer, repoAdmin]) {
      assertError(await api(grove, 'POST', signingKeys('acme'), { token, body }), 403, 'forbidden');
      assertError(await api(grove, 'DELETE', `${signingKeys('acme')}/${registered.id}`, { token }), 403, 'forbidden');
    }
    const orgAdmin = (await createKey(grove, { scope: 'admin', resources: [{ org: 'acme' }] })).token;
    const created = await api(grove, 'POST', signingKeys('acme'), { token: orgAdmin, body: { ...body, name: 'by org admin' } });
    assert.equal(created.status, 201, created.text);
    assert.ok((await api(grove, 'GET', signingKeys('acme'))).json.items.some((k: { id: string }) => k.id === registered.id));
  });

  it('answers GET /repos/{org}/{repo}/policies with {rules: []} by default, and returns what PUT stored', async () => {
    const initial = await api(grove, 'GET', '/api/v1/repos/acme/app/policies');
    assert.equal(initial.status, 200, initial.text);
    assert.deepEqual(initial.json, { rules: [] });
    const rules = [{ pattern: 'main', protected: true }, { pattern: 'feature/*', noForcePush: true, noDelete: true }, { pattern: 'release/**', protected: true, noDelete: true }];
    const put = await api(grove, 'PUT', '/api/v1/repos/acme/app/policies', { body: { rules } });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.json, { rules });
    assert.deepEqual((await api(grove, 'GET', '/api/v1/repos/acme/app/policies')).json, { rules });
    assert.deepEqual(await grove.sdk.policies.get('acme', 'app'), { rules });
    // PUT replaces; false flags are dropped; an empty list clears.
    const replaced = await api(grove, 'PUT', '/api/v1/repos/acme/app/policies', { body: { rules: [{ pattern: 'main', protected: false, noDelete: true }] } });
    assert.deepEqual(replaced.json, { rules: [{ pattern: 'main', noDelete: true }] });
    assert.deepEqual((await api(grove, 'PUT', '/api/v1/repos/acme/app/policies', { body: { rules: [] } })).json, { rules: [] });
    assert.deepEqual((await api(grove, 'GET', '/api/v1/repos/acme/app/policies')).json, { rules: [] });
  });

  const badRules: Array<[string, unknown, RegExp]> = [
    ['a bad pattern "a..b"', { rules: [{ pattern: 'a..b', protected: true }] }, /rules\[0\]\.pattern: branch pattern "a\.\.b" is invalid/],
    ['a missing pattern', { rules: [{ protected: true }] }, /pattern/],
    ['an unknown flag', { rules: [{ pattern: 'main', protect: true }] }, /rules\[0\] has unknown field "protect"/],
    ['a non-boolean flag', { rules: [{ pattern: 'main', protected: 'yes' }] }, /rules\[0\]\.protected must be a boolean/],
    ['rules that are not an array', { rules: { pattern: 'main' } }, /rules/],
    ['an unknown top-level field', { rules: [], extra: 1 }, /unknown field "extra"/],
  ];
  for (const [problem, body, message] of badRules) {
    it(`refuses a policy with ${problem} with 400 invalid_request and keeps the old rules`, async () => {
      await grove.sdk.policies.set('acme', 'app', [{ pattern: 'keep/*', noDelete: true }]);
      assertError(await api(grove, 'PUT', '/api/v1/repos/acme/app/policies', { body }), 400, 'invalid_request', message);
      assert.deepEqual(await grove.sdk.policies.get('acme', 'app'), { rules: [{ pattern: 'keep/*', noDelete: true }] });
    });
  }

  it('refuses PUT policies to a write key (403) while it may read them; an admin key of the repo may PUT', async () => {
    await grove.sdk.policies.set('acme', 'app', [{ pattern: 'main', protected: true }]);
    const writer = (await createKey(grove, { scope: 'write', resources: [{ org: 'acme', repo: 'app' }] })).token;
    assertError(await api(grove, 'PUT', '/api/v1/repos/acme/app/policies', { token: writer, body: { rules: [] } }), 403, 'forbidden', /admin access is needed/);
    assert.deepEqual((await api(grove, 'GET', '/api/v1/repos/acme/app/policies', { token: writer })).json, { rules: [{ pattern: 'main', protected: true }] });
    const outsider = (await createKey(grove, { scope: 'admin', resources: [{ org: 'other' }] })).token;
    assertError(await api(grove, 'PUT', '/api/v1/repos/acme/app/policies', { token: outsider, body: { rules: [] } }), 404, 'not_found');
    const admin = (await createKey(grove, { scope: 'admin', resources: [{ org: 'acme', repo: 'app' }] })).token;
    const put = await api(grove, 'PUT', '/api/v1/repos/acme/app/policies', { token: admin, body: { rules: [] } });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(await grove.sdk.policies.get('acme', 'app'), { rules: [] });
  });
});

describe('secrets at rest', () => {
  let grove: TestServer;
  before(async () => {
    grove = await startTestServer();
    await grove.createRepo('acme', 'app');
  });
  after(() => grove.close());

  async function filesUnder(dir: string): Promise<string[]> {
    const entries = await readdir(dir, { withFileTypes: true, recursive: true });
    return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  }

  it('never writes an API key token to any file of the data directory or to the metadata database (grove.db and its WAL, or PostgreSQL)', async () => {
    const tokens: string[] = [];
    const admin = await createKey(grove, { scope: 'admin', resources: [{ org: 'acme' }], ttl: '1h', name: 'minter', labels: { team: 'red' } });
    tokens.push(admin.token);
    for (const scope of ['read', 'write', 'admin'] as const) {
      tokens.push((await createKey(grove, { scope, resources: [{ org: 'acme', repo: 'app' }], ttl: '30m' }, admin.token)).token);
      tokens.push((await createKey(grove, { scope, resources: [{ org: 'acme' }] })).token);
    }
    const revoked = await createKey(grove, { scope: 'write', resources: [{ org: 'acme' }] });
    tokens.push(revoked.token);
    // Use them (lastUsedAt writes), on REST and git, and revoke one.
    for (const token of tokens) {
      assert.equal((await api(grove, 'GET', '/api/v1/orgs', { token })).status, 200);
      const git = await fetch(`${grove.url}/acme/app.git/info/refs?service=git-upload-pack`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(git.status, 200);
      await git.arrayBuffer();
    }
    await grove.sdk.apiKeys.revoke(revoked.id);

    const files = await filesUnder(grove.dataDir);
    const names = files.map((file) => path.relative(grove.dataDir, file));
    if (!onPostgres) {
      assert.ok(names.includes('grove.db'), `no grove.db among ${names.join(', ')}`);
      assert.ok(names.includes('grove.db-wal'), `no grove.db-wal among ${names.join(', ')}`);
    }
    let scanned = 0;
    for (const file of [...files, ...(onPostgres ? ['the PostgreSQL database'] : [])]) {
      const bytes = onPostgres && !file.startsWith('/') ? await databaseContents(grove.dataDir) : await readFile(file);
      scanned += bytes.length;
      for (const token of tokens) {
        const secret = token.slice('grove_'.length);
        for (const needle of [token, secret, Buffer.from(secret, 'base64url').toString('hex')]) {
          assert.equal(bytes.includes(Buffer.from(needle)), false, `${path.relative(grove.dataDir, file)} contains a token`);
        }
        assert.equal(bytes.includes(Buffer.from(secret, 'base64url')), false, `${path.relative(grove.dataDir, file)} contains a token's raw bytes`);
      }
    }
    assert.ok(scanned > 0);
    // The keys are there, by hash: the listing still knows all of them.
    assert.ok((await allKeys(grove)).length >= tokens.length);
  });
});
