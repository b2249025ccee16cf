import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { grove, json } from './helpers/cli.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the grove command line as an API client', () => {
  let server: TestServer;
  let env: Record<string, string>;
  before(async () => {
    server = await startTestServer();
    env = { GROVE_URL: server.url, GROVE_TOKEN: server.token };
  });
  after(async () => {
    await server.close();
  });

  it('creates an org with `org create` and prints it as JSON', async () => {
    const org = json(await grove(['org', 'create', 'acme'], env));
    assert.equal(org.name, 'acme');
    assert.match(org.id, /^[0-9a-f]{32}$/);
    assert.deepEqual(await server.sdk.orgs.get('acme'), org);
  });

  it('lists orgs a page at a time with `org list --limit` and shows one with `org get`', async () => {
    await server.sdk.orgs.create({ name: 'zeta' });
    const [page, get] = await Promise.all([grove(['org', 'list', '--limit', '1'], env), grove(['org', 'get', 'zeta'], env)]);
    const first = json(page);
    assert.deepEqual(first.items.map((o: { name: string }) => o.name), ['acme']);
    assert.equal(typeof first.nextCursor, 'string');
    assert.deepEqual(json(get), await server.sdk.orgs.get('zeta'));
    const second = await server.sdk.orgs.list({ limit: 1, cursor: first.nextCursor });
    assert.deepEqual(second.items.map((o) => o.name), ['zeta']);
  });

  it('deletes an empty org with `org delete`, printing nothing', async () => {
    const run = await grove(['org', 'delete', 'zeta'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '');
    await assert.rejects(server.sdk.orgs.get('zeta'), { status: 404 });
  });

  it('creates a repository with `repo create` and prints JSON with its clone URL', async () => {
    const repo = json(await grove(['repo', 'create', 'acme/app'], env));
    assert.equal(repo.org, 'acme');
    assert.equal(repo.name, 'app');
    assert.equal(repo.defaultBranch, 'main');
    assert.equal(repo.cloneUrl, `${server.url}/acme/app.git`);
  });

  it('passes --default-branch and --description to `repo create`', async () => {
    const repo = json(await grove(['repo', 'create', 'acme/lib', '--default-branch', 'trunk', '--description', 'shared code'], env));
    assert.equal(repo.defaultBranch, 'trunk');
    assert.equal(repo.description, 'shared code');
  });

  it('lists an org\'s repositories with `repo list` and shows one with `repo get`', async () => {
    const [list, get] = await Promise.all([grove(['repo', 'list', 'acme'], env), grove(['repo', 'get', 'acme/app'], env)]);
    const page = json(list);
    assert.deepEqual(page.items.map((r: { name: string }) => r.name), ['app', 'lib']);
    assert.equal(page.nextCursor, null);
    assert.deepEqual(json(get), await server.sdk.repos.get('acme', 'app'));
  });

  it('changes the description with `repo update --description` and prints the updated repository', async () => {
    const repo = json(await grove(['repo', 'update', 'acme/app', '--description', 'x'], env));
    assert.equal(repo.description, 'x');
    assert.equal(repo.name, 'app');
    assert.equal((await server.sdk.repos.get('acme', 'app')).description, 'x');
  });

  it('renames and changes the default branch with `repo update --name --default-branch`', async () => {
    const repo = json(await grove(['repo', 'update', 'acme/lib', '--name', 'library', '--default-branch', 'main'], env));
    assert.equal(repo.name, 'library');
    assert.equal(repo.defaultBranch, 'main');
    assert.equal(repo.description, 'shared code');
    assert.equal(repo.cloneUrl, `${server.url}/acme/library.git`);
  });

  it('checks a repository with `repo fsck`, printing the report and exiting 0 when it is clean', async () => {
    const run = await grove(['repo', 'fsck', 'acme/library'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(json(run), { ok: true, problems: [], moreProblems: 0, storedBlobs: { count: 0, bytes: 0 } });
  });

  it('deletes a repository with `repo delete`, printing nothing', async () => {
    const run = await grove(['repo', 'delete', 'acme/app'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '');
    await assert.rejects(server.sdk.repos.get('acme', 'app'), { status: 404, code: 'not_found' });
  });

  it('exits 1 with `grove: <code>: <message>` on stderr when the API answers an error', async () => {
    const [duplicate, missing, notEmpty] = await Promise.all([
      grove(['org', 'create', 'acme'], env),
      grove(['repo', 'get', 'acme/app'], env),
      grove(['org', 'delete', 'acme'], env),
    ]);
    for (const run of [duplicate, missing, notEmpty]) {
      assert.equal(run.code, 1, run.stdout);
      assert.equal(run.stdout, '');
    }
    assert.equal(duplicate.stderr, 'grove: already_exists: org acme already exists\n');
    assert.equal(missing.stderr, 'grove: not_found: repository acme/app not found\n');
    assert.equal(notEmpty.stderr, 'grove: org_not_empty: org acme still has repositories; delete them first\n');
  });

  it('exits 1 with `grove: unauthorized: ...` for a wrong token', async () => {
    const run = await grove(['org', 'list'], { ...env, GROVE_TOKEN: 'not-the-admin-token' });
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^grove: unauthorized: invalid credentials.*\n$/);
  });

  it('exits 1 with a clear message when GROVE_TOKEN is not set, without calling the server', async () => {
    const run = await grove(['org', 'create', 'tokenless'], { GROVE_URL: server.url });
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.equal(run.stderr, 'grove: GROVE_TOKEN is not set: export the admin token or an API key\n');
    await assert.rejects(server.sdk.orgs.get('tokenless'), { status: 404 });
  });

  it('exits 1 naming the expected ORG/REPO form for a malformed repository argument', async () => {
    const [get, create] = await Promise.all([grove(['repo', 'get', 'acme'], env), grove(['repo', 'create', 'acme/app/extra'], env)]);
    for (const [run, target] of [[get, 'acme'], [create, 'acme/app/extra']] as const) {
      assert.equal(run.code, 1, target);
      assert.equal(run.stdout, '');
      assert.equal(run.stderr, `grove: expected ORG/REPO, got ${JSON.stringify(target)}\n`);
    }
    assert.deepEqual((await server.sdk.repos.list('acme')).items.map((r) => r.name), ['library']);
  });

  it('exits 1 telling the user to check GROVE_URL when the server cannot be reached', async () => {
    const run = await grove(['org', 'list'], { GROVE_URL: `http://127.0.0.1:${await closedPort()}`, GROVE_TOKEN: server.token });
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^grove: cannot reach the server \(.+\); check GROVE_URL\n$/);
  });

  it('exits non-zero with usage help for an unknown command or a missing argument', async () => {
    const [unknown, missing] = await Promise.all([grove(['frobnicate'], env), grove(['repo', 'create'], env)]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /missing required argument/);
  });
});
