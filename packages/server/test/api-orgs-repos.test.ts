import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { GroveApiError, type Org, type Page, type Repo } from '@grove/sdk';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: any;
}

interface ApiOptions {
  /** A JSON value to send, or a raw string (sent as is). */
  readonly body?: unknown;
  readonly contentType?: string;
  /** Defaults to the admin token as Bearer; null sends no Authorization header. */
  readonly authorization?: string | null;
}

/** Raw fetch against the server: no SDK in between, so tests see exactly what goes over the wire. */
async function api(grove: TestServer, method: string, urlPath: string, options: ApiOptions = {}): Promise<ApiResponse> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const authorization = options.authorization === undefined ? `Bearer ${grove.token}` : options.authorization;
  if (authorization !== null) headers.authorization = authorization;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] = options.contentType ?? 'application/json';
  }
  const response = await fetch(`${grove.url}${urlPath}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  let json: unknown = undefined;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON; tests that care look at text
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Asserts the catalogue error shape {error: {code, message}} with the given status and code. */
function assertError(response: ApiResponse, status: number, code: string, message?: RegExp): void {
  assert.equal(response.status, status, `expected ${status} ${code}, got ${response.status}: ${response.text}`);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(typeof response.json, 'object');
  assert.equal(typeof response.json.error, 'object', `no error object in ${response.text}`);
  assert.equal(response.json.error.code, code, response.text);
  assert.equal(typeof response.json.error.message, 'string');
  assert.ok(response.json.error.message.length > 0, 'the error message is empty');
  if (message) assert.match(response.json.error.message, message);
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

async function allOrgNames(grove: TestServer): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await grove.sdk.orgs.list({ limit: 1000, ...(cursor ? { cursor } : {}) });
    names.push(...page.items.map((org) => org.name));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return names;
}

describe('REST API: creating organizations', () => {
  let grove: TestServer;
  before(async () => {
    grove = await startTestServer();
  });
  after(async () => {
    await grove.close();
  });

  it('creates an org and answers 201 with its id, name and creation time', async () => {
    const before = Date.now();
    const response = await api(grove, 'POST', '/api/v1/orgs', { body: { name: 'acme' } });
    assert.equal(response.status, 201, response.text);
    assert.deepEqual(Object.keys(response.json).sort(), ['createdAt', 'id', 'name']);
    assert.equal(response.json.name, 'acme');
    assert.match(response.json.id, /^[0-9a-f]{32}$/);
    assert.match(response.json.createdAt, ISO_DATE);
    const created = Date.parse(response.json.createdAt);
    assert.ok(created >= before - 1000 && created <= Date.now() + 1000, `createdAt ${response.json.createdAt} is not now`);
  });

  it('creates an org through the SDK and returns the same shape the API stores', async () => {
    const org = await grove.sdk.orgs.create({ name: 'sdk-org' });
    assert.equal(org.name, 'sdk-org');
    assert.deepEqual(await grove.sdk.orgs.get('sdk-org'), org);
  });

  it('accepts names with digits, dots, underscores and dashes up to 100 characters', async () => {
    for (const name of ['0rg', 'a.b_c-d', 'x'.repeat(100), 'git', 'apis']) {
      const response = await api(grove, 'POST', '/api/v1/orgs', { body: { name } });
      assert.equal(response.status, 201, `${name}: ${response.text}`);
      assert.equal(response.json.name, name);
    }
  });

  it('creates exactly one org when the same name is created eight times at once', async () => {
    const statuses = await Promise.all(Array.from({ length: 8 }, () => api(grove, 'POST', '/api/v1/orgs', { body: { name: 'contended' } })));
    assert.deepEqual(statuses.map((r) => r.status).sort(), [201, 409, 409, 409, 409, 409, 409, 409]);
    assert.equal((await allOrgNames(grove)).filter((name) => name === 'contended').length, 1);
  });

  it('refuses a duplicate org name with 409 already_exists and keeps the first org', async () => {
    const first = await grove.sdk.orgs.create({ name: 'twice' });
    const response = await api(grove, 'POST', '/api/v1/orgs', { body: { name: 'twice' } });
    assertError(response, 409, 'already_exists', /twice/);
    assert.deepEqual(await grove.sdk.orgs.get('twice'), first);
  });

  const invalidNames: Array<[string, string, RegExp]> = [
    ['uppercase letters', 'Acme', /lowercase/],
    ['a leading dash', '-acme', /start/],
    ['101 characters', 'a'.repeat(101), /at most 100 characters/],
    ['a .git suffix', 'acme.git', /\.git/],
    ['the reserved word api', 'api', /reserved/],
    ['the reserved word healthz', 'healthz', /reserved/],
    ['an empty string', '', /empty/],
    ['a slash', 'a/b', /invalid/],
    ['a space', 'a b', /invalid/],
    ['a non-ASCII letter', 'café', /invalid/],
  ];
  for (const [problem, name, message] of invalidNames) {
    it(`refuses an org name with ${problem} with 400 invalid_name and a message naming the problem`, async () => {
      const response = await api(grove, 'POST', '/api/v1/orgs', { body: { name } });
      assertError(response, 400, 'invalid_name', message);
      if (name !== '') assertError(await api(grove, 'GET', `/api/v1/orgs/${encodeURIComponent(name)}`), 404, 'not_found');
    });
  }

  it('refuses an org name that is an object with 400 and a message saying it must be a string', async () => {
    const response = await api(grove, 'POST', '/api/v1/orgs', { body: { name: { first: 'acme' } } });
    assert.equal(response.status, 400, response.text);
    assert.ok(['invalid_name', 'invalid_request'].includes(response.json.error.code), response.text);
    assert.match(response.json.error.message, /string/);
  });

  // Regression: JSON bodies were once validated with coerceTypes, so {"name": 123}
  // created org "123", true created "true", ["x"] created "x" and null became "".
  for (const [kind, value] of [['a number', 123], ['a boolean', true], ['an array', ['coerced']], ['null', null]] as const) {
    it(`refuses an org name that is ${kind} with 400 and a message saying it must be a string, creating nothing`, async () => {
      const before = await allOrgNames(grove);
      const response = await api(grove, 'POST', '/api/v1/orgs', { body: { name: value } });
      try {
        assert.equal(response.status, 400, `${JSON.stringify(value)} was accepted: ${response.text}`);
        assert.ok(['invalid_name', 'invalid_request'].includes(response.json.error.code), response.text);
        assert.match(response.json.error.message, /string/);
        assert.deepEqual(await allOrgNames(grove), before);
      } finally {
        // keep the other tests' view of the org list clean even when the bug creates an org
        if (response.status === 201) await grove.sdk.orgs.delete(response.json.name);
      }
    });
  }

  it('refuses a body without a name with 400 invalid_request naming the missing field', async () => {
    const response = await api(grove, 'POST', '/api/v1/orgs', { body: {} });
    assertError(response, 400, 'invalid_request', /name/);
  });

  it('refuses an unknown field with 400 invalid_request naming the field', async () => {
    const response = await api(grove, 'POST', '/api/v1/orgs', { body: { name: 'extra', color: 'green' } });
    assertError(response, 400, 'invalid_request', /color/);
    assert.equal((await api(grove, 'GET', '/api/v1/orgs/extra')).status, 404);
  });

  it('refuses a form-encoded body with 415 unsupported_media_type', async () => {
    const response = await api(grove, 'POST', '/api/v1/orgs', { body: 'name=form', contentType: 'application/x-www-form-urlencoded' });
    assertError(response, 415, 'unsupported_media_type', /application\/json/);
  });

  it('refuses a git protocol content type on the API with 415 unsupported_media_type', async () => {
    const response = await api(grove, 'POST', '/api/v1/orgs', { body: '{"name":"gitbody"}', contentType: 'application/x-git-receive-pack-request' });
    assertError(response, 415, 'unsupported_media_type');
  });

  // Regression: Fastify's built-in text/plain parser once let such a body through to
  // schema validation (400 "body must be object") instead of 415.
  it('refuses a text/plain body with 415 unsupported_media_type', async () => {
    const response = await api(grove, 'POST', '/api/v1/orgs', { body: '{"name":"plain"}', contentType: 'text/plain' });
    assertError(response, 415, 'unsupported_media_type');
  });

  it('accepts application/json with a charset parameter', async () => {
    const response = await api(grove, 'POST', '/api/v1/orgs', { body: '{"name":"charset"}', contentType: 'application/json; charset=utf-8' });
    assert.equal(response.status, 201, response.text);
  });

  it('refuses malformed JSON, an empty body, an array and a bare string with 400 invalid_request', async () => {
    assertError(await api(grove, 'POST', '/api/v1/orgs', { body: '{"name": "broken"' }), 400, 'invalid_request', /JSON/);
    assertError(await api(grove, 'POST', '/api/v1/orgs', { body: '' }), 400, 'invalid_request', /empty/);
    assertError(await api(grove, 'POST', '/api/v1/orgs', { body: '[]' }), 400, 'invalid_request', /object/);
    assertError(await api(grove, 'POST', '/api/v1/orgs', { body: '"acme"' }), 400, 'invalid_request', /object/);
  });

  it('leaves the org list unchanged after every kind of failed create', async () => {
    const before = await allOrgNames(grove);
    assert.ok(before.includes('acme'));
    const failures: Array<[ApiOptions, number]> = [
      [{ body: { name: 'acme' } }, 409],
      [{ body: { name: 'Upper' } }, 400],
      [{ body: { name: 'api' } }, 400],
      [{ body: { name: 'b'.repeat(101) } }, 400],
      [{ body: {} }, 400],
      [{ body: { name: 'unknown-field', extra: 1 } }, 400],
      [{ body: 'name=form-org', contentType: 'application/x-www-form-urlencoded' }, 415],
      [{ body: '{"name": "half' }, 400],
      [{ body: { name: 'no-auth' }, authorization: null }, 401],
      [{ body: { name: 'bad-auth' }, authorization: 'Bearer wrong-token' }, 401],
    ];
    for (const [options, status] of failures) {
      const response = await api(grove, 'POST', '/api/v1/orgs', options);
      assert.equal(response.status, status, `${JSON.stringify(options)}: ${response.text}`);
      assert.equal(typeof response.json?.error?.code, 'string', response.text);
    }
    assert.deepEqual(await allOrgNames(grove), before);
  });
});

describe('REST API: listing, reading and deleting organizations', () => {
  let grove: TestServer;
  const names = ['page-a', 'page-b', 'page-c', 'page-d', 'page-e'];
  before(async () => {
    grove = await startTestServer();
    // created out of order: listings are ordered by name, not by creation
    for (const name of ['page-c', 'page-a', 'page-e', 'page-b', 'page-d']) await grove.sdk.orgs.create({ name });
  });
  after(async () => {
    await grove.close();
  });

  it('pages through 5 orgs two at a time in three pages, the last with a null nextCursor', async () => {
    const pages: Page<Org>[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '?limit=2' : `?limit=2&cursor=${encodeURIComponent(cursor)}`;
      const response = await api(grove, 'GET', `/api/v1/orgs${query}`);
      assert.equal(response.status, 200, response.text);
      assert.deepEqual(Object.keys(response.json).sort(), ['items', 'nextCursor']);
      pages.push(response.json);
      cursor = response.json.nextCursor;
      assert.ok(pages.length <= 5, 'pagination does not end');
    } while (cursor !== null);
    assert.deepEqual(pages.map((p) => p.items.length), [2, 2, 1]);
    assert.equal(typeof pages[0]!.nextCursor, 'string');
    assert.equal(typeof pages[1]!.nextCursor, 'string');
    assert.equal(pages[2]!.nextCursor, null);
    assert.deepEqual(pages.flatMap((p) => p.items.map((org) => org.name)), names);
  });

  it('pages the same way through the SDK', async () => {
    const first = await grove.sdk.orgs.list({ limit: 2 });
    assert.deepEqual(first.items.map((o) => o.name), ['page-a', 'page-b']);
    assert.ok(first.nextCursor);
    const second = await grove.sdk.orgs.list({ limit: 2, cursor: first.nextCursor });
    assert.deepEqual(second.items.map((o) => o.name), ['page-c', 'page-d']);
    assert.ok(second.nextCursor);
    const third = await grove.sdk.orgs.list({ limit: 2, cursor: second.nextCursor });
    assert.deepEqual(third.items.map((o) => o.name), ['page-e']);
    assert.equal(third.nextCursor, null);
  });

  it('returns every org on one page with the default limit and a null nextCursor', async () => {
    const page = await grove.sdk.orgs.list();
    assert.deepEqual(page.items.map((o) => o.name), names);
    assert.equal(page.nextCursor, null);
  });

  it('gives a null nextCursor when the last page is exactly full', async () => {
    const first = await grove.sdk.orgs.list({ limit: 5 });
    assert.equal(first.items.length, 5);
    assert.equal(first.nextCursor, null);
  });

  it('keeps a cursor stable when an org is created before it in name order', async () => {
    const first = await grove.sdk.orgs.list({ limit: 2 });
    await grove.sdk.orgs.create({ name: 'page-0' });
    try {
      const second = await grove.sdk.orgs.list({ limit: 2, cursor: first.nextCursor! });
      assert.deepEqual(second.items.map((o) => o.name), ['page-c', 'page-d']);
    } finally {
      await grove.sdk.orgs.delete('page-0');
    }
  });

  it('refuses a cursor the server did not issue with 400 invalid_request', async () => {
    assertError(await api(grove, 'GET', '/api/v1/orgs?cursor=bogus'), 400, 'invalid_request', /cursor/);
    const notAnObject = Buffer.from(JSON.stringify({ before: 'x' })).toString('base64url');
    assertError(await api(grove, 'GET', `/api/v1/orgs?cursor=${notAnObject}`), 400, 'invalid_request', /cursor/);
  });

  it('refuses a limit of 0, above 1000 or not a number with 400 invalid_request', async () => {
    for (const limit of ['0', '1001', 'abc', '-1', '1.5']) {
      assertError(await api(grove, 'GET', `/api/v1/orgs?limit=${limit}`), 400, 'invalid_request', /limit/);
    }
  });

  it('gets an org by name with 200 and the fields it was created with', async () => {
    const listed = (await grove.sdk.orgs.list()).items.find((o) => o.name === 'page-b')!;
    const response = await api(grove, 'GET', '/api/v1/orgs/page-b');
    assert.equal(response.status, 200, response.text);
    assert.deepEqual(response.json, listed);
  });

  it('answers 404 not_found for an unknown org', async () => {
    assertError(await api(grove, 'GET', '/api/v1/orgs/nobody'), 404, 'not_found', /nobody/);
  });

  it('refuses to delete an org that has repositories with 409 org_not_empty and keeps it', async () => {
    await grove.createRepo('busy', 'app');
    assertError(await api(grove, 'DELETE', '/api/v1/orgs/busy'), 409, 'org_not_empty', /busy/);
    assert.equal((await api(grove, 'GET', '/api/v1/orgs/busy')).status, 200);
    assert.equal((await api(grove, 'GET', '/api/v1/repos/busy/app')).status, 200);
  });

  it('deletes an org once its last repository is deleted', async () => {
    await grove.sdk.repos.delete('busy', 'app');
    const response = await api(grove, 'DELETE', '/api/v1/orgs/busy');
    assert.equal(response.status, 204, response.text);
    assert.equal(response.text, '');
  });

  it('deletes an empty org with 204, after which it is gone from get and list', async () => {
    await grove.sdk.orgs.create({ name: 'short-lived' });
    const response = await api(grove, 'DELETE', '/api/v1/orgs/short-lived');
    assert.equal(response.status, 204, response.text);
    assertError(await api(grove, 'GET', '/api/v1/orgs/short-lived'), 404, 'not_found');
    assert.ok(!(await allOrgNames(grove)).includes('short-lived'));
    assertError(await api(grove, 'DELETE', '/api/v1/orgs/short-lived'), 404, 'not_found');
  });

  it('lets a deleted org name be created again as a new org', async () => {
    const first = await grove.sdk.orgs.create({ name: 'phoenix' });
    await grove.sdk.orgs.delete('phoenix');
    const second = await grove.sdk.orgs.create({ name: 'phoenix' });
    assert.notEqual(second.id, first.id);
  });
});

describe('REST API: repositories', () => {
  let grove: TestServer;
  before(async () => {
    grove = await startTestServer();
    await grove.sdk.orgs.create({ name: 'acme' });
  });
  after(async () => {
    await grove.close();
  });

  it('creates a repository with 201 and every field, defaulting to main and an empty description', async () => {
    const before = Date.now();
    const response = await api(grove, 'POST', '/api/v1/orgs/acme/repos', { body: { name: 'app' } });
    assert.equal(response.status, 201, response.text);
    const repo = response.json as Repo;
    assert.deepEqual(Object.keys(repo).sort(), ['cloneUrl', 'createdAt', 'defaultBranch', 'description', 'expiresAt', 'forkOf', 'id', 'name', 'org', 'updatedAt']);
    assert.match(repo.id, /^[0-9a-f]{32}$/);
    assert.equal(repo.org, 'acme');
    assert.equal(repo.name, 'app');
    assert.equal(repo.defaultBranch, 'main');
    assert.equal(repo.description, '');
    assert.equal(repo.cloneUrl, `${grove.url}/acme/app.git`);
    assert.ok(repo.cloneUrl.endsWith('/acme/app.git'));
    assert.match(repo.createdAt, ISO_DATE);
    assert.equal(repo.updatedAt, repo.createdAt);
    assert.ok(Date.parse(repo.createdAt) >= before - 1000);
    const head = await readFile(path.join(grove.server.repos.gitDir(repo.id), 'HEAD'), 'utf8');
    assert.equal(head, 'ref: refs/heads/main\n');
  });

  it('creates a repository with a custom default branch and description', async () => {
    const repo = await grove.sdk.repos.create('acme', { name: 'custom', defaultBranch: 'trunk', description: 'the trunk-based one' });
    assert.equal(repo.defaultBranch, 'trunk');
    assert.equal(repo.description, 'the trunk-based one');
    assert.deepEqual(await grove.sdk.repos.get('acme', 'custom'), repo);
    assert.equal(await readFile(path.join(grove.server.repos.gitDir(repo.id), 'HEAD'), 'utf8'), 'ref: refs/heads/trunk\n');
  });

  it('accepts a nested default branch such as release/v1', async () => {
    const repo = await grove.sdk.repos.create('acme', { name: 'nested-branch', defaultBranch: 'release/v1' });
    assert.equal(repo.defaultBranch, 'release/v1');
  });

  for (const branch of ['bad..name', '-x', 'has space', 'ends.lock', 'trailing/', 'a~b', 'HEAD', '']) {
    it(`refuses the default branch ${JSON.stringify(branch)} with 400 invalid_name and creates nothing`, async () => {
      const response = await api(grove, 'POST', '/api/v1/orgs/acme/repos', { body: { name: 'bad-branch', defaultBranch: branch } });
      assertError(response, 400, 'invalid_name', /defaultBranch/);
      assertError(await api(grove, 'GET', '/api/v1/repos/acme/bad-branch'), 404, 'not_found');
    });
  }

  for (const name of ['App', 'app.git', '-app', '', 'a'.repeat(101), 'a/b']) {
    it(`refuses the repository name ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)} with 400 invalid_name`, async () => {
      assertError(await api(grove, 'POST', '/api/v1/orgs/acme/repos', { body: { name } }), 400, 'invalid_name', /repo name/);
    });
  }

  it('allows a repository named like a reserved org word, such as api', async () => {
    const repo = await grove.sdk.repos.create('acme', { name: 'api' });
    assert.equal(repo.cloneUrl, `${grove.url}/acme/api.git`);
  });

  it('refuses a description longer than 1000 characters with 400 invalid_request', async () => {
    const response = await api(grove, 'POST', '/api/v1/orgs/acme/repos', { body: { name: 'wordy', description: 'x'.repeat(1001) } });
    assertError(response, 400, 'invalid_request', /description/);
  });

  it('refuses an unknown field in a repository create with 400 invalid_request', async () => {
    assertError(await api(grove, 'POST', '/api/v1/orgs/acme/repos', { body: { name: 'visible', private: true } }), 400, 'invalid_request', /private/);
  });

  it('refuses a duplicate repository name in the same org with 409 already_exists', async () => {
    const first = await grove.sdk.repos.create('acme', { name: 'dup' });
    assertError(await api(grove, 'POST', '/api/v1/orgs/acme/repos', { body: { name: 'dup' } }), 409, 'already_exists', /acme\/dup/);
    assert.deepEqual(await grove.sdk.repos.get('acme', 'dup'), first);
  });

  it('allows the same repository name in two different orgs', async () => {
    await grove.sdk.orgs.create({ name: 'other' });
    const a = await grove.sdk.repos.get('acme', 'dup');
    const b = await grove.sdk.repos.create('other', { name: 'dup' });
    assert.notEqual(a.id, b.id);
    assert.equal(b.cloneUrl, `${grove.url}/other/dup.git`);
  });

  it('creates exactly one repository when the same name is created eight times at once', async () => {
    const statuses = await Promise.all(Array.from({ length: 8 }, () => api(grove, 'POST', '/api/v1/orgs/acme/repos', { body: { name: 'contended' } })));
    assert.deepEqual(statuses.map((r) => r.status).sort(), [201, 409, 409, 409, 409, 409, 409, 409]);
    const created = statuses.find((r) => r.status === 201)!.json as Repo;
    assert.deepEqual(await grove.sdk.repos.get('acme', 'contended'), created);
    assert.equal(await readFile(path.join(grove.server.repos.gitDir(created.id), 'HEAD'), 'utf8'), 'ref: refs/heads/main\n');
  });

  it('answers 404 not_found when creating a repository in an unknown org', async () => {
    assertError(await api(grove, 'POST', '/api/v1/orgs/ghost/repos', { body: { name: 'app' } }), 404, 'not_found', /ghost/);
    assertError(await api(grove, 'GET', '/api/v1/orgs/ghost/repos'), 404, 'not_found', /ghost/);
  });

  it('gets a repository with 200 and answers 404 not_found for an unknown one', async () => {
    const response = await api(grove, 'GET', '/api/v1/repos/acme/app');
    assert.equal(response.status, 200, response.text);
    assert.equal(response.json.name, 'app');
    assert.equal(response.json.cloneUrl, `${grove.url}/acme/app.git`);
    assertError(await api(grove, 'GET', '/api/v1/repos/acme/nothing'), 404, 'not_found', /acme\/nothing/);
    assertError(await api(grove, 'GET', '/api/v1/repos/ghost/app'), 404, 'not_found');
  });

  it('changes the description with PATCH, bumping updatedAt but not createdAt or id', async () => {
    const before = await grove.sdk.repos.get('acme', 'app');
    await new Promise((resolve) => setTimeout(resolve, 5));
    const response = await api(grove, 'PATCH', '/api/v1/repos/acme/app', { body: { description: 'the main app' } });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.json.description, 'the main app');
    assert.equal(response.json.id, before.id);
    assert.equal(response.json.createdAt, before.createdAt);
    assert.ok(Date.parse(response.json.updatedAt) > Date.parse(before.updatedAt), `${response.json.updatedAt} is not after ${before.updatedAt}`);
    assert.deepEqual(await grove.sdk.repos.get('acme', 'app'), response.json);
  });

  it('refuses an empty PATCH and an unknown PATCH field with 400 invalid_request', async () => {
    assertError(await api(grove, 'PATCH', '/api/v1/repos/acme/app', { body: {} }), 400, 'invalid_request');
    assertError(await api(grove, 'PATCH', '/api/v1/repos/acme/app', { body: { org: 'other' } }), 400, 'invalid_request', /org/);
  });

  it('refuses a PATCH to an invalid name or default branch with 400 invalid_name and changes nothing', async () => {
    const before = await grove.sdk.repos.get('acme', 'app');
    assertError(await api(grove, 'PATCH', '/api/v1/repos/acme/app', { body: { name: 'Bad Name' } }), 400, 'invalid_name');
    assertError(await api(grove, 'PATCH', '/api/v1/repos/acme/app', { body: { defaultBranch: 'bad..name' } }), 400, 'invalid_name', /defaultBranch/);
    assertError(await api(grove, 'PATCH', '/api/v1/repos/acme/app', { body: { description: 'ok', defaultBranch: '-x' } }), 400, 'invalid_name');
    assert.deepEqual(await grove.sdk.repos.get('acme', 'app'), before);
  });

  it('refuses renaming onto an existing repository with 409 already_exists', async () => {
    assertError(await api(grove, 'PATCH', '/api/v1/repos/acme/app', { body: { name: 'dup' } }), 409, 'already_exists', /dup/);
    assert.equal((await grove.sdk.repos.get('acme', 'app')).name, 'app');
  });

  it('answers 404 not_found for a PATCH or DELETE of an unknown repository', async () => {
    assertError(await api(grove, 'PATCH', '/api/v1/repos/acme/nothing', { body: { description: 'x' } }), 404, 'not_found');
    assertError(await api(grove, 'DELETE', '/api/v1/repos/acme/nothing'), 404, 'not_found');
  });

  it('renames a repository with PATCH: the new name serves the same history and the old one is gone', async () => {
    const original = await grove.sdk.repos.create('acme', { name: 'old-name' });
    await using work = await tempDir();
    const source = path.join(work.path, 'src');
    await initWorkRepo(source);
    const head = await commitFile(source, 'README.md', 'renamed\n', 'first');
    await gitOk([...auth(grove.token), 'push', original.cloneUrl, 'main'], { cwd: source });

    const renamed = await grove.sdk.repos.update('acme', 'old-name', { name: 'new-name' });
    assert.equal(renamed.id, original.id);
    assert.equal(renamed.name, 'new-name');
    assert.equal(renamed.cloneUrl, `${grove.url}/acme/new-name.git`);
    assertError(await api(grove, 'GET', '/api/v1/repos/acme/old-name'), 404, 'not_found');
    assert.deepEqual(await grove.sdk.repos.get('acme', 'new-name'), renamed);

    const clone = path.join(work.path, 'clone');
    await gitOk([...auth(grove.token), 'clone', renamed.cloneUrl, clone]);
    assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: clone })).trim(), head);
    const old = await git([...auth(grove.token), 'ls-remote', original.cloneUrl]);
    assert.notEqual(old.code, 0);
    assert.match(old.stderr, /not found/);
  });

  it('changes the default branch with PATCH so that git clone checks out that branch', async () => {
    const repo = await grove.sdk.repos.create('acme', { name: 'branches' });
    await using work = await tempDir();
    const source = path.join(work.path, 'src');
    await initWorkRepo(source);
    await commitFile(source, 'main.txt', 'on main\n', 'main commit');
    await gitOk(['checkout', '-q', '-b', 'develop'], { cwd: source });
    const developHead = await commitFile(source, 'develop.txt', 'on develop\n', 'develop commit');
    await gitOk([...auth(grove.token), 'push', repo.cloneUrl, 'main', 'develop'], { cwd: source });

    const before = path.join(work.path, 'before');
    await gitOk([...auth(grove.token), 'clone', '-q', repo.cloneUrl, before]);
    assert.equal((await gitOk(['symbolic-ref', 'HEAD'], { cwd: before })).trim(), 'refs/heads/main');

    const response = await api(grove, 'PATCH', '/api/v1/repos/acme/branches', { body: { defaultBranch: 'develop' } });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.json.defaultBranch, 'develop');

    const after = path.join(work.path, 'after');
    await gitOk([...auth(grove.token), 'clone', '-q', repo.cloneUrl, after]);
    assert.equal((await gitOk(['symbolic-ref', 'HEAD'], { cwd: after })).trim(), 'refs/heads/develop');
    assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: after })).trim(), developHead);
    assert.equal(await readFile(path.join(after, 'develop.txt'), 'utf8'), 'on develop\n');
    const remoteHead = await gitOk([...auth(grove.token), 'ls-remote', '--symref', repo.cloneUrl, 'HEAD']);
    assert.match(remoteHead, /^ref: refs\/heads\/develop\tHEAD$/m);
  });

  it('deletes a repository with 204, after which the API and git clone both answer 404', async () => {
    const repo = await grove.sdk.repos.create('acme', { name: 'doomed' });
    const gitDir = grove.server.repos.gitDir(repo.id);
    const response = await api(grove, 'DELETE', '/api/v1/repos/acme/doomed');
    assert.equal(response.status, 204, response.text);
    assert.equal(response.text, '');
    assertError(await api(grove, 'GET', '/api/v1/repos/acme/doomed'), 404, 'not_found');
    assert.ok(!(await grove.sdk.repos.list('acme')).items.some((r) => r.name === 'doomed'));
    const infoRefs = await fetch(`${repo.cloneUrl}/info/refs?service=git-upload-pack`, { headers: { authorization: `Bearer ${grove.token}` } });
    assert.equal(infoRefs.status, 404);
    await infoRefs.arrayBuffer();
    await using work = await tempDir();
    const clone = await git([...auth(grove.token), 'clone', repo.cloneUrl, path.join(work.path, 'c')]);
    assert.notEqual(clone.code, 0);
    assert.match(clone.stderr, /not found/);
    await assert.rejects(readFile(path.join(gitDir, 'HEAD')), { code: 'ENOENT' });
    assertError(await api(grove, 'DELETE', '/api/v1/repos/acme/doomed'), 404, 'not_found');
  });

  it('gives a deleted repository name back as a new, empty repository', async () => {
    const first = await grove.sdk.repos.create('acme', { name: 'reborn' });
    await using work = await tempDir();
    const source = path.join(work.path, 'src');
    await initWorkRepo(source);
    await commitFile(source, 'a.txt', 'a\n', 'a');
    await gitOk([...auth(grove.token), 'push', first.cloneUrl, 'main'], { cwd: source });
    await grove.sdk.repos.delete('acme', 'reborn');
    const second = await grove.sdk.repos.create('acme', { name: 'reborn' });
    assert.notEqual(second.id, first.id);
    assert.equal((await gitOk([...auth(grove.token), 'ls-remote', second.cloneUrl])).trim(), '');
  });
});

describe('REST API: listing 250 repositories', () => {
  let grove: TestServer;
  const names = Array.from({ length: 250 }, (_, i) => `repo-${String(i).padStart(3, '0')}`);
  before(async () => {
    grove = await startTestServer();
    await grove.sdk.orgs.create({ name: 'big' });
    // created in a shuffled order, a few at a time
    const order = [...names].sort((a, b) => ((a.charCodeAt(7) * 31 + a.charCodeAt(6)) % 17) - ((b.charCodeAt(7) * 31 + b.charCodeAt(6)) % 17) || a.localeCompare(b));
    for (let i = 0; i < order.length; i += 10) {
      await Promise.all(order.slice(i, i + 10).map((name) => grove.sdk.repos.create('big', { name })));
    }
  });
  after(async () => {
    await grove.close();
  });

  it('lists them in pages of 100 with a nextCursor on every page but the last, all names in order and none twice', async () => {
    const pages: Page<Repo>[] = [];
    let cursor: string | null = null;
    do {
      const response = await api(grove, 'GET', `/api/v1/orgs/big/repos${cursor === null ? '' : `?cursor=${encodeURIComponent(cursor)}`}`);
      assert.equal(response.status, 200, response.text);
      pages.push(response.json);
      cursor = response.json.nextCursor;
      assert.ok(pages.length <= 4, 'pagination does not end');
    } while (cursor !== null);
    assert.deepEqual(pages.map((p) => p.items.length), [100, 100, 50]);
    assert.notEqual(pages[0]!.nextCursor, null);
    assert.notEqual(pages[1]!.nextCursor, null);
    assert.equal(pages[2]!.nextCursor, null);
    const listed = pages.flatMap((p) => p.items.map((r) => r.name));
    assert.equal(new Set(listed).size, listed.length, 'a repository was listed twice');
    assert.deepEqual(listed, names);
    for (const repo of pages.flatMap((p) => p.items)) {
      assert.equal(repo.org, 'big');
      assert.equal(repo.cloneUrl, `${grove.url}/big/${repo.name}.git`);
    }
  });

  it('lists them all through the SDK listAll iterator with a small page size', async () => {
    const listed: string[] = [];
    for await (const repo of grove.sdk.repos.listAll('big', 60)) listed.push(repo.name);
    assert.deepEqual(listed, names);
  });

  it('lists them with a limit of 1000 on a single page', async () => {
    const page = await grove.sdk.repos.list('big', { limit: 1000 });
    assert.equal(page.items.length, 250);
    assert.equal(page.nextCursor, null);
  });

  it('lists an empty org as an empty page', async () => {
    await grove.sdk.orgs.create({ name: 'empty' });
    assert.deepEqual(await grove.sdk.repos.list('empty'), { items: [], nextCursor: null });
  });
});

describe('REST API: authentication, discovery and errors', () => {
  let grove: TestServer;
  before(async () => {
    grove = await startTestServer();
    await grove.createRepo('acme', 'app');
  });
  after(async () => {
    await grove.close();
  });

  const routes: Array<[string, string, unknown?]> = [
    ['POST', '/api/v1/orgs', { name: 'sneaky' }],
    ['GET', '/api/v1/orgs'],
    ['GET', '/api/v1/orgs/acme'],
    ['DELETE', '/api/v1/orgs/acme'],
    ['POST', '/api/v1/orgs/acme/repos', { name: 'sneaky' }],
    ['GET', '/api/v1/orgs/acme/repos'],
    ['GET', '/api/v1/repos/acme/app'],
    ['PATCH', '/api/v1/repos/acme/app', { description: 'sneaky' }],
    ['DELETE', '/api/v1/repos/acme/app'],
  ];

  it('answers 401 unauthorized with WWW-Authenticate on every API route without a token, changing nothing', async () => {
    const before = await grove.sdk.repos.get('acme', 'app');
    for (const [method, route, body] of routes) {
      const response = await api(grove, method, route, { body, authorization: null });
      assertError(response, 401, 'unauthorized', /token/);
      assert.equal(response.headers.get('www-authenticate'), 'Basic realm="grove"', `${method} ${route}`);
    }
    assert.deepEqual(await grove.sdk.repos.get('acme', 'app'), before);
    assert.deepEqual((await grove.sdk.orgs.list()).items.map((o) => o.name), ['acme']);
  });

  it('answers 401 unauthorized on every API route with a wrong token', async () => {
    for (const [method, route, body] of routes) {
      for (const authorization of ['Bearer not-the-token', `Bearer ${grove.token}x`, `Basic ${Buffer.from(`x:${grove.token.slice(1)}`).toString('base64')}`]) {
        const response = await api(grove, method, route, { body, authorization });
        assertError(response, 401, 'unauthorized', /invalid credentials/);
        assert.equal(response.headers.get('www-authenticate'), 'Basic realm="grove"');
      }
    }
    assert.equal((await grove.sdk.repos.get('acme', 'app')).description, '');
  });

  it('answers 401 for an unknown scheme, an empty Bearer and a Basic header without a colon', async () => {
    for (const authorization of [`Token ${grove.token}`, 'Bearer ', `Basic ${Buffer.from(grove.token).toString('base64')}`, grove.token]) {
      assertError(await api(grove, 'GET', '/api/v1/orgs', { authorization }), 401, 'unauthorized');
    }
  });

  it('accepts HTTP Basic auth with the token as the password and any username', async () => {
    for (const user of ['x', 'agent-7', '']) {
      const response = await api(grove, 'GET', '/api/v1/orgs/acme', { authorization: `Basic ${Buffer.from(`${user}:${grove.token}`).toString('base64')}` });
      assert.equal(response.status, 200, `user ${JSON.stringify(user)}: ${response.text}`);
      assert.equal(response.json.name, 'acme');
    }
  });

  it('accepts HTTP Basic auth with the token as the username and an empty password', async () => {
    const response = await api(grove, 'GET', '/api/v1/orgs/acme', { authorization: `Basic ${Buffer.from(`${grove.token}:`).toString('base64')}` });
    assert.equal(response.status, 200, response.text);
  });

  it('accepts a lowercase bearer scheme', async () => {
    assert.equal((await api(grove, 'GET', '/api/v1/orgs', { authorization: `bearer ${grove.token}` })).status, 200);
  });

  it('serves the OpenAPI document without auth, listing the org and repo paths', async () => {
    const response = await api(grove, 'GET', '/api/v1/openapi.json', { authorization: null });
    assert.equal(response.status, 200, response.text);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    const doc = response.json;
    assert.match(doc.openapi, /^3\./);
    for (const p of ['/api/v1/orgs', '/api/v1/orgs/{org}', '/api/v1/orgs/{org}/repos', '/api/v1/repos/{org}/{repo}']) {
      assert.ok(p in doc.paths, `${p} is missing from ${Object.keys(doc.paths).join(', ')}`);
    }
    assert.ok(doc.paths['/api/v1/orgs'].post && doc.paths['/api/v1/orgs'].get);
    assert.ok(doc.paths['/api/v1/repos/{org}/{repo}'].patch && doc.paths['/api/v1/repos/{org}/{repo}'].delete);
    assert.deepEqual(Object.keys(doc.paths['/api/v1/repos/{org}/{repo}/fsck'].post.responses['200'].content['application/json'].schema.properties).sort(), ['moreProblems', 'ok', 'problems', 'storedBlobs']);
    assert.ok(!Object.keys(doc.paths).some((p) => p.includes('openapi') || p.includes('healthz') || p.includes('info/refs')), 'hidden routes are documented');
  });

  it('answers 404 not_found with the error shape for unknown routes inside and outside the API', async () => {
    assertError(await api(grove, 'GET', '/api/v1/nothing'), 404, 'not_found', /GET \/api\/v1\/nothing/);
    assertError(await api(grove, 'GET', '/api/v1/orgs/acme/teams'), 404, 'not_found');
    assertError(await api(grove, 'GET', '/nothing/here/at/all'), 404, 'not_found');
    assertError(await api(grove, 'GET', '/api/v2/orgs'), 404, 'not_found');
  });

  it('answers /healthz with 200 {status: "ok"} without auth', async () => {
    const response = await api(grove, 'GET', '/healthz', { authorization: null });
    assert.equal(response.status, 200);
    assert.deepEqual(response.json, { status: 'ok' });
  });

  it('serves Prometheus metrics with request counts and the git process gauge', async () => {
    await api(grove, 'GET', '/api/v1/orgs');
    const response = await fetch(`${grove.url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await response.text();
    assert.match(text, /^# TYPE grove_http_requests_total counter$/m);
    assert.match(text, /^grove_http_requests_total\{method="GET",route="\/api\/v1\/orgs",status="200"\} [1-9]\d*$/m);
    assert.match(text, /^grove_git_processes_running 0$/m);
  });

  it('asks for GROVE_METRICS_TOKEN on /metrics when it is set (401 without or with a wrong one), while /healthz stays open', async () => {
    const guarded = await startTestServer({ GROVE_METRICS_TOKEN: 'scrape-token-0123456789' });
    try {
      const scrape = (authorization?: string) => fetch(`${guarded.url}/metrics`, authorization ? { headers: { authorization } } : {});
      const none = await scrape();
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="grove-metrics"');
      assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'unauthorized');
      assert.equal((await scrape('Bearer scrape-token-wrong')).status, 401);
      assert.equal((await scrape(`Bearer ${guarded.token}`)).status, 401, 'the admin token is not the metrics token');
      const ok = await scrape('Bearer scrape-token-0123456789');
      assert.equal(ok.status, 200);
      assert.match(await ok.text(), /^grove_git_processes_running /m);
      assert.equal((await fetch(`${guarded.url}/healthz`)).status, 200);
    } finally {
      await guarded.close();
    }
  });

  it('makes the SDK throw GroveApiError with status and code for a 409 and a 404', async () => {
    await assert.rejects(grove.sdk.orgs.create({ name: 'acme' }), (error: unknown) => {
      assert.ok(error instanceof GroveApiError);
      assert.equal(error.status, 409);
      assert.equal(error.code, 'already_exists');
      assert.match(error.message, /acme/);
      return true;
    });
    await assert.rejects(grove.sdk.repos.get('acme', 'missing'), (error: unknown) => {
      assert.ok(error instanceof GroveApiError);
      assert.equal(error.status, 404);
      assert.equal(error.code, 'not_found');
      return true;
    });
    await assert.rejects(grove.sdk.orgs.delete('acme'), { name: 'GroveApiError', status: 409, code: 'org_not_empty' });
    await assert.rejects(grove.sdk.repos.create('acme', { name: 'Bad' }), { status: 400, code: 'invalid_name' });
  });

  it('makes the SDK throw GroveApiError 401 unauthorized for a wrong token', async () => {
    const { Grove } = await import('@grove/sdk');
    const wrong = new Grove({ baseUrl: `${grove.url}/`, token: 'definitely-wrong' });
    await assert.rejects(wrong.orgs.list(), { name: 'GroveApiError', status: 401, code: 'unauthorized' });
  });
});

describe('REST API: clone URLs behind a public URL', () => {
  let grove: TestServer;
  before(async () => {
    grove = await startTestServer({ GROVE_PUBLIC_URL: 'https://git.example.com/' });
    await grove.sdk.orgs.create({ name: 'acme' });
  });
  after(async () => {
    await grove.close();
  });

  it('builds clone URLs from GROVE_PUBLIC_URL, without a doubled slash, instead of the request host', async () => {
    const created = await grove.sdk.repos.create('acme', { name: 'app' });
    assert.equal(created.cloneUrl, 'https://git.example.com/acme/app.git');
    assert.equal((await grove.sdk.repos.get('acme', 'app')).cloneUrl, 'https://git.example.com/acme/app.git');
    assert.equal((await grove.sdk.repos.list('acme')).items[0]!.cloneUrl, 'https://git.example.com/acme/app.git');
  });
});
