/**
 * The access commands of the grove CLI (`key`, `signing-key`, `token mint`, `policy`)
 * against a real server, with the real git CLI using what they print.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT, GROVE_BIN, COMPILE_CACHE, grove, json, type CliRun } from './helpers/cli.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

/** Asserts a zero exit, nothing on stderr, and exactly one line on stdout; returns the line. */
function oneLine(run: CliRun): string {
  assert.equal(run.code, 0, `exit ${run.code}: ${run.stderr}`);
  assert.equal(run.stderr, '');
  assert.match(run.stdout, /^[^\n]+\n$/, `not exactly one line: ${JSON.stringify(run.stdout)}`);
  return run.stdout.trimEnd();
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('grove key, token, signing-key and policy commands', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let url: string;
  let source: string;
  let counter = 0;
  const dir = (name: string) => path.join(work.path, `${name}-${++counter}`);

  before(async () => {
    server = await startTestServer();
    env = { GROVE_URL: server.url, GROVE_TOKEN: server.token };
    work = await tempDir('grove-access-cli-');
    url = await server.createRepo('acme', 'app');
    source = dir('source');
    await initWorkRepo(source);
    await commitFile(source, 'README.md', '# app\n', 'initial commit');
    await gitOk([...auth(server.token), 'push', '-q', url, 'main'], { cwd: source });
  });
  after(async () => {
    await server.close();
    await work[Symbol.asyncDispose]();
  });

  it("prints only the token for `key create --scope write --repo acme/app --branch 'agent-7/*' --ttl 1h`, and git pushes agent-7/x with it", async () => {
    const token = oneLine(await grove(['key', 'create', '--scope', 'write', '--repo', 'acme/app', '--branch', 'agent-7/*', '--ttl', '1h'], env));
    assert.match(token, /^grove_[A-Za-z0-9_-]{43}$/);

    const tip = await commitFile(source, 'agent.txt', 'agent 7\n', 'work of agent 7');
    const pushed = await git([...auth(token), 'push', url, 'HEAD:refs/heads/agent-7/x'], { cwd: source });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stderr, /\* \[new branch\]\s+HEAD -> agent-7\/x/);
    assert.match(await gitOk([...auth(server.token), 'ls-remote', url, 'refs/heads/agent-7/x']), new RegExp(`^${tip}\\trefs/heads/agent-7/x$`, 'm'));

    const refused = await git([...auth(token), 'push', url, 'HEAD:main'], { cwd: source });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /! \[remote rejected\] HEAD -> main \(this key may only push to branches matching agent-7\/\*\)/);

    const keys = await server.sdk.apiKeys.list();
    const created = keys.items.find((k) => k.resources[0]?.branches?.[0] === 'agent-7/*');
    assert.ok(created, 'the key is listed');
    assert.equal(created.scope, 'write');
    assert.deepEqual(created.resources, [{ org: 'acme', repo: 'app', branches: ['agent-7/*'] }]);
    const lifetime = Date.parse(created.expiresAt!) - Date.parse(created.createdAt);
    assert.ok(Math.abs(lifetime - 3600_000) < 1000, `lifetime ${lifetime} ms`);
  });

  it('pipes: the token goes straight into an environment variable with $(grove key create …)', async () => {
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        'sh',
        ['-c', `T=$("${process.execPath}" "${GROVE_BIN}" key create --scope read --org acme --ttl 10m) && git -c "http.extraHeader=Authorization: Bearer $T" ls-remote "${url}"`],
        { cwd: ROOT, env: { PATH: process.env.PATH, NODE_COMPILE_CACHE: COMPILE_CACHE, HOME: os.tmpdir(), GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0', ...env }, encoding: 'utf8' },
        (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
      );
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\trefs\/heads\/main$/m);
  });

  it('prints the whole key with `key create --json`, and `key list` prints JSON without any token', async () => {
    const created = json(await grove(['key', 'create', '--scope', 'read', '--org', 'acme', '--name', 'listed', '--label', 'team=red', '--ttl', '30m', '--json'], env));
    assert.match(created.token, /^grove_/);
    assert.equal(created.name, 'listed');
    assert.deepEqual(created.labels, { team: 'red' });

    const [listRun, filteredRun, pagedRun, getRun] = await Promise.all([
      grove(['key', 'list'], env),
      grove(['key', 'list', '--label', 'team:red'], env),
      grove(['key', 'list', '--org', 'acme', '--limit', '1'], env),
      grove(['key', 'get', created.id], env),
    ]);
    const list = json(listRun);
    assert.ok(Array.isArray(list.items));
    assert.ok(list.items.length >= 2);
    assert.ok(list.items.every((k: Record<string, unknown>) => !('token' in k)), 'a token field in key list');
    assert.ok(!listRun.stdout.includes('grove_'), 'something token-like in key list');
    const { token: _token, ...withoutToken } = created;
    assert.deepEqual(list.items.find((k: { id: string }) => k.id === created.id), withoutToken);

    assert.deepEqual(json(filteredRun).items.map((k: { id: string }) => k.id), [created.id]);
    const paged = json(pagedRun);
    assert.equal(paged.items.length, 1);
    assert.equal(typeof paged.nextCursor, 'string');
    assert.deepEqual(json(getRun), withoutToken);
  });

  it('revokes with `key revoke ID`, printing nothing; the token stops working at once', async () => {
    const created = json(await grove(['key', 'create', '--scope', 'read', '--repo', 'acme/app', '--json'], env));
    assert.equal((await git([...auth(created.token), 'ls-remote', url])).code, 0);
    const [revoke, unknown] = await Promise.all([grove(['key', 'revoke', created.id], env), grove(['key', 'revoke', 'key_nope'], env)]);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.equal(revoke.stdout, '');
    assert.equal(revoke.stderr, '');
    const after = await git([...auth(created.token), 'ls-remote', url]);
    assert.equal(after.code, 128, after.stderr);
    assert.match(after.stderr, /could not read Username|Authentication failed/);
    assert.notEqual(json(await grove(['key', 'get', created.id], env)).revokedAt, null);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, 'grove: not_found: key key_nope not found\n');
  });

  it('reports refusals and usage errors on one stderr line with exit 1', async () => {
    const reader = oneLine(await grove(['key', 'create', '--scope', 'read', '--org', 'acme'], env));
    const [denied, badScope, noResource, badTtl] = await Promise.all([
      grove(['key', 'create', '--scope', 'read', '--repo', 'acme/app'], { ...env, GROVE_TOKEN: reader }),
      grove(['key', 'create', '--scope', 'owner', '--org', 'acme'], env),
      grove(['key', 'create', '--scope', 'read'], env),
      grove(['key', 'create', '--scope', 'read', '--org', 'acme', '--ttl', '5 minutes'], env),
    ]);
    assert.equal(denied.code, 1);
    assert.equal(denied.stdout, '');
    assert.equal(denied.stderr, 'grove: forbidden: only admin keys can create API keys\n');

    assert.equal(badScope.code, 1);
    assert.equal(badScope.stderr, 'grove: --scope must be read, write or admin\n');
    assert.equal(noResource.code, 1);
    assert.match(noResource.stderr, /^grove: name at least one --org ORG or --repo ORG\/REPO\n$/);
    assert.equal(badTtl.code, 1);
    assert.match(badTtl.stderr, /^grove: invalid_request: ttl must be like/);
  });

  it('mints a token with `token mint --private-key-file <pem>` without any network, and git clones with it', async () => {
    const pair = generateKeyPairSync('ed25519');
    const privateFile = path.join(work.path, 'fleet.pem');
    const publicFile = path.join(work.path, 'fleet.pub.pem');
    await writeFile(privateFile, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    await writeFile(publicFile, pair.publicKey.export({ format: 'pem', type: 'spki' }));
    const added = json(await grove(['signing-key', 'add', 'acme', '--public-key-file', publicFile, '--name', 'fleet'], env));
    assert.match(added.id, /^sk_/);
    assert.deepEqual(json(await grove(['signing-key', 'list', 'acme'], env)).map((k: { id: string }) => k.id), [added.id]);

    // No server at GROVE_URL and no GROVE_TOKEN: minting must not need either.
    const offline = { GROVE_URL: `http://127.0.0.1:${await closedPort()}` };
    const [minted, tooLong] = await Promise.all([
      grove(['token', 'mint', '--private-key-file', privateFile, '--scope', 'read', '--repo', 'acme/app'], offline),
      grove(['token', 'mint', '--private-key-file', privateFile, '--scope', 'read', '--repo', 'acme/app', '--ttl', '25h'], offline),
    ]);
    const token = oneLine(minted);
    assert.match(token, /^eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+$/);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
    assert.equal(claims.iss, 'acme');
    assert.equal(claims.scope, 'read');
    assert.deepEqual(claims.resources, [{ org: 'acme', repo: 'app' }]);
    assert.equal(claims.exp - claims.iat, 3600);

    const clone = dir('minted-clone');
    const cloned = await git([...auth(token), 'clone', url, clone]);
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.equal(await gitOk(['show', 'HEAD:README.md'], { cwd: clone }), '# app\n');
    const push = await git([...auth(token), 'push', url, 'HEAD:refs/heads/read-only'], { cwd: clone });
    assert.equal(push.code, 128, push.stderr);
    assert.match(push.stderr, /remote: this token has scope read; write access is needed/);

    assert.equal(tooLong.code, 1);
    assert.equal(tooLong.stdout, '');
    assert.match(tooLong.stderr, /^grove: ttl must be between 1 second and 24 hours\n$/);

    const jti = JSON.parse(Buffer.from(oneLine(await grove(['token', 'mint', '--private-key-file', privateFile, '--scope', 'read', '--repo', 'acme/app'], offline)).split('.')[1]!, 'base64url').toString('utf8')).jti as string;
    const revoked = await grove(['token', 'revoke', 'acme', added.id, claims.jti, '--exp', String(claims.exp)], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal((await git([...auth(token), 'ls-remote', url])).code, 128, 'the revoked token is refused');
    assert.notEqual(jti, claims.jti);
    const badExp = await grove(['token', 'revoke', 'acme', added.id, 'x', '--exp', 'tomorrow'], env);
    assert.equal(badExp.code, 1);
    assert.match(badExp.stderr, /--exp must be epoch seconds/);

    const deleted = await grove(['signing-key', 'delete', 'acme', added.id], env);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal((await git([...auth(token), 'ls-remote', url])).code, 128, 'the token dies with its signing key');
  });

  it('mints with a JWK private key file too', async () => {
    const pair = generateKeyPairSync('ed25519');
    const privateFile = path.join(work.path, 'fleet.jwk.json');
    const publicFile = path.join(work.path, 'fleet.pub.jwk.json');
    await writeFile(privateFile, JSON.stringify(pair.privateKey.export({ format: 'jwk' })), { mode: 0o600 });
    await writeFile(publicFile, JSON.stringify(pair.publicKey.export({ format: 'jwk' })));
    json(await grove(['signing-key', 'add', 'acme', '--public-key-file', publicFile, '--name', 'jwk fleet'], env));
    const token = oneLine(await grove(['token', 'mint', '--private-key-file', privateFile, '--scope', 'write', '--repo', 'acme/app', '--branch', 'jwk/*', '--ttl', '10m'], {}));
    const pushed = await git([...auth(token), 'push', url, 'HEAD:refs/heads/jwk/one'], { cwd: source });
    assert.equal(pushed.code, 0, pushed.stderr);
  });

  it("sets ref rules with `policy set acme/app '[{\"pattern\":\"main\",\"protected\":true}]'` and shows them with `policy get acme/app`", async () => {
    const rules = [{ pattern: 'main', protected: true }];
    assert.deepEqual(json(await grove(['policy', 'set', 'acme/app', JSON.stringify(rules)], env)), { rules });
    assert.deepEqual(json(await grove(['policy', 'get', 'acme/app'], env)), { rules });
    assert.deepEqual(await server.sdk.policies.get('acme', 'app'), { rules });

    const writer = oneLine(await grove(['key', 'create', '--scope', 'write', '--repo', 'acme/app', '--ttl', '10m'], env));
    await commitFile(source, 'protected.txt', 'protected\n', 'for a protected main');
    const refused = await git([...auth(writer), 'push', url, 'HEAD:main'], { cwd: source });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /! \[remote rejected\] HEAD -> main \(refs\/heads\/main is protected: only admin keys may move it\)/);

    const [invalid, notJson] = await Promise.all([grove(['policy', 'set', 'acme/app', '[{"pattern":"a..b"}]'], env), grove(['policy', 'set', 'acme/app', 'main'], env)]);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /^grove: invalid_request: rules\[0\]\.pattern: branch pattern "a\.\.b" is invalid/);
    assert.equal(notJson.code, 1);
    assert.equal(notJson.stderr, 'grove: rules must be a JSON array\n');
    assert.deepEqual(json(await grove(['policy', 'get', 'acme/app'], env)), { rules });
    assert.deepEqual(json(await grove(['policy', 'set', 'acme/app', '[]'], env)), { rules: [] });
  });
});
