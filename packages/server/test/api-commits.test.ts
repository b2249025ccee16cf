/**
 * Commits by API (`POST /api/v1/repos/{org}/{repo}/commits` and the raw upload
 * `PUT .../files/{path}`) against a real server, checked with the real git CLI:
 * root commits, adds, deletes, moves, modes, compare-and-swap on expectedHead,
 * startFrom, empty commits, path validation, Idempotency-Key, races with other
 * commits and with git pushes, key scopes and ref policies, the SDK.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { GroveApiError, type CreateApiKeyInput } from '@grove/sdk';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, tempDir } from './helpers/git.ts';

const ZEROS = '0'.repeat(40);

interface ApiAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: any;
}

/** One API request with a bearer token (root by default); the body is JSON unless it is a Buffer. */
async function api(grove: TestServer, method: string, apiPath: string, options: { body?: unknown; token?: string; headers?: Record<string, string> } = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = { authorization: `Bearer ${options.token ?? grove.token}`, ...options.headers };
  let body: string | Buffer | undefined;
  if (Buffer.isBuffer(options.body)) body = options.body;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${grove.url}/api/v1${apiPath}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

function assertError(answer: ApiAnswer, status: number, code: string): void {
  assert.equal(answer.status, status, answer.text);
  assert.equal(answer.json?.error?.code, code, answer.text);
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('commits by API', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let counter = 0;
  const dir = (name: string) => path.join(work.path, `${name}-${++counter}`);

  before(async () => {
    grove = await startTestServer();
    work = await tempDir('grove-api-commits-');
  });
  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  const commit = (repo: string, body: Record<string, unknown>, options: { token?: string; headers?: Record<string, string> } = {}) =>
    api(grove, 'POST', `/repos/acme/${repo}/commits`, { body, ...options });

  /** Refs of a repository as `git ls-remote` with the root token sees them. */
  async function refs(repo: string): Promise<Record<string, string>> {
    const out = await gitOk([...auth(grove.token), 'ls-remote', `${grove.url}/acme/${repo}.git`]);
    const result: Record<string, string> = {};
    for (const line of out.split('\n').filter(Boolean)) {
      const [oid, name] = line.split('\t') as [string, string];
      result[name] = oid;
    }
    return result;
  }

  async function clone(repo: string, branch?: string): Promise<string> {
    const target = dir(`clone-${repo}`);
    await gitOk([...auth(grove.token), 'clone', '-q', ...(branch ? ['-b', branch] : []), `${grove.url}/acme/${repo}.git`, target]);
    return target;
  }

  /** Every object file and pack of the bare repository (quarantines excluded): "nothing was written". */
  async function objectState(repo: string): Promise<string> {
    const { id } = await grove.sdk.repos.get('acme', repo);
    const gitDir = grove.server.repos.gitDir(id);
    const out = await gitOk(['count-objects', '-v'], { cwd: gitDir });
    return out.split('\n').filter((l) => /^(count|in-pack|packs):/.test(l)).join(' ');
  }

  /** Commits files on main by API and returns the sha (the request must succeed). */
  async function commitOk(repo: string, files: unknown[]): Promise<string> {
    const answer = await commit(repo, { branch: 'main', message: `change ${repo}`, files });
    assert.equal(answer.status, 201, answer.text);
    return answer.json.sha;
  }

  /** A repository with README.md committed on main through the API; returns the commit. */
  async function seeded(repo: string): Promise<string> {
    await grove.createRepo('acme', repo);
    const created = await commit(repo, { branch: 'main', message: 'initial', files: [{ path: 'README.md', content: `# ${repo}\n` }] });
    assert.equal(created.status, 201, created.text);
    return created.json.sha;
  }

  it('creates a root commit with no parents in an empty repository, and git clones it with the given author', async () => {
    await grove.createRepo('acme', 'root');
    const answer = await commit('root', {
      branch: 'main',
      message: 'first commit by API',
      author: { name: 'Agent Seven', email: 'agent7@example.com', date: '2021-02-03T04:05:06Z' },
      files: [{ path: 'README.md', content: 'hello\n' }, { path: 'docs/guide.md', content: 'guide\n' }],
    });
    assert.equal(answer.status, 201, answer.text);
    assert.match(answer.json.sha, /^[0-9a-f]{40}$/);
    assert.match(answer.json.tree, /^[0-9a-f]{40}$/);
    assert.deepEqual(answer.json.parents, []);
    assert.equal(answer.json.branch, 'main');
    assert.deepEqual(await refs('root'), { HEAD: answer.json.sha, 'refs/heads/main': answer.json.sha });

    const cloned = await clone('root');
    assert.equal((await gitOk(['log', '--format=%H|%P|%T|%an|%ae|%aI|%s'], { cwd: cloned })).trim(),
      `${answer.json.sha}||${answer.json.tree}|Agent Seven|agent7@example.com|2021-02-03T04:05:06+00:00|first commit by API`);
    assert.equal(await readFile(path.join(cloned, 'README.md'), 'utf8'), 'hello\n');
    assert.equal(await readFile(path.join(cloned, 'docs/guide.md'), 'utf8'), 'guide\n');
    await gitOk(['fsck', '--strict'], { cwd: cloned });
  });

  it('adds utf8 and base64 files, an executable and a symlink, then deletes and moves, and git sees exactly that', async () => {
    const first = await seeded('changes');
    const binary = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 31 + 7) % 256));
    const added = await commit('changes', {
      branch: 'main',
      message: 'add files',
      files: [
        { path: 'src/app.ts', content: 'export const ünï = "✓";\n' },
        { path: 'assets/data.bin', content: binary.toString('base64'), encoding: 'base64' },
        { path: 'run.sh', content: '#!/bin/sh\necho hi\n', mode: '100755' },
        { path: 'link', content: 'README.md', mode: '120000' },
      ],
    });
    assert.equal(added.status, 201, added.text);
    assert.deepEqual(added.json.parents, [first]);

    const changed = await commit('changes', {
      branch: 'main',
      expectedHead: added.json.sha,
      message: 'delete and move',
      files: [{ path: 'assets/data.bin', delete: true }, { path: 'lib/app.ts', moveFrom: 'src/app.ts' }, { path: 'bin/run', moveFrom: 'run.sh' }],
    });
    assert.equal(changed.status, 201, changed.text);
    assert.deepEqual(changed.json.parents, [added.json.sha]);

    const cloned = await clone('changes');
    assert.equal((await gitOk(['log', '--format=%H %P %s'], { cwd: cloned })).trim(), [
      `${changed.json.sha} ${added.json.sha} delete and move`,
      `${added.json.sha} ${first} add files`,
      `${first}  initial`,
    ].join('\n'));
    const lsTree = (rev: string) => gitOk(['ls-tree', '-r', '--format=%(objectmode) %(path)', rev], { cwd: cloned });
    assert.equal(await lsTree(added.json.sha), ['100644 README.md', '100644 assets/data.bin', '120000 link', '100755 run.sh', '100644 src/app.ts', ''].join('\n'));
    assert.equal(await lsTree('HEAD'), ['100644 README.md', '100755 bin/run', '100644 lib/app.ts', '120000 link', ''].join('\n'));
    assert.equal((await gitOk(['rev-parse', 'HEAD^{tree}'], { cwd: cloned })).trim(), changed.json.tree);
    // Moves keep the blob.
    assert.equal((await gitOk(['rev-parse', 'HEAD:lib/app.ts'], { cwd: cloned })).trim(), (await gitOk(['rev-parse', `${added.json.sha}:src/app.ts`], { cwd: cloned })).trim());
    assert.equal(await readFile(path.join(cloned, 'lib/app.ts'), 'utf8'), 'export const ünï = "✓";\n');
    assert.ok((await lstat(path.join(cloned, 'link'))).isSymbolicLink());
    assert.equal(await readlink(path.join(cloned, 'link')), 'README.md');
    assert.equal((await lstat(path.join(cloned, 'bin/run'))).mode & 0o111, 0o111);
    const blob = (await gitOk(['rev-parse', `${added.json.sha}:assets/data.bin`], { cwd: cloned })).trim();
    assert.equal(blob, (await gitOk(['hash-object', '--stdin'], { input: binary })).trim(), 'the base64 content decoded byte for byte');
    await gitOk(['fsck', '--strict'], { cwd: cloned });
  });

  it('refuses a stale expectedHead with 409 stale_ref and the current head, and changes nothing', async () => {
    const head = await seeded('stale');
    const objects = await objectState('stale');
    const stale = 'a'.repeat(40);
    const answer = await commit('stale', { branch: 'main', expectedHead: stale, message: 'late', files: [{ path: 'x.txt', content: 'x\n' }] });
    assertError(answer, 409, 'stale_ref');
    assert.deepEqual(answer.json.error.details, { ref: 'refs/heads/main', current: head });
    assert.match(answer.json.error.message, new RegExp(`refs/heads/main is at ${head}, not at the expected ${stale}`));
    assert.equal((await refs('stale'))['refs/heads/main'], head);
    assert.equal(await objectState('stale'), objects);
  });

  it('refuses an expectedHead of 40 zeros (must not exist) on an existing branch, and accepts it for a new one', async () => {
    const head = await seeded('zeros');
    const existing = await commit('zeros', { branch: 'main', expectedHead: ZEROS, message: 'create?', files: [{ path: 'x.txt', content: 'x\n' }] });
    assertError(existing, 409, 'stale_ref');
    assert.equal(existing.json.error.details.current, head);
    assert.equal((await refs('zeros'))['refs/heads/main'], head);

    const created = await commit('zeros', { branch: 'fresh', expectedHead: ZEROS, startFrom: 'main', message: 'new branch', files: [{ path: 'x.txt', content: 'x\n' }] });
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(created.json.parents, [head]);
  });

  it('creates a branch with startFrom (a branch, a tag or a sha) and refuses a missing branch without it with 422', async () => {
    const head = await seeded('start');
    const tagged = await api(grove, 'POST', '/repos/acme/start/tags', { body: { name: 'v1', sha: head, message: 'release' } });
    assert.equal(tagged.status, 201, tagged.text);
    for (const [branch, startFrom] of [['from-branch', 'main'], ['from-tag', 'v1'], ['from-sha', head], ['nested/from-short-sha', head.slice(0, 12)]] as const) {
      const answer = await commit('start', { branch, startFrom, message: `start ${branch}`, files: [{ path: `${branch}.txt`, content: 'x\n' }] });
      assert.equal(answer.status, 201, `${branch}: ${answer.text}`);
      assert.deepEqual(answer.json.parents, [head], branch);
      assert.equal((await refs('start'))[`refs/heads/${branch}`], answer.json.sha, branch);
    }
    const cloned = await clone('start', 'from-tag');
    assert.equal(await readFile(path.join(cloned, 'from-tag.txt'), 'utf8'), 'x\n');
    assert.equal(await readFile(path.join(cloned, 'README.md'), 'utf8'), '# start\n');

    const before = await refs('start');
    const missing = await commit('start', { branch: 'nowhere', message: 'lost', files: [{ path: 'x.txt', content: 'x\n' }] });
    assertError(missing, 422, 'unprocessable');
    assert.match(missing.json.error.message, /branch nowhere does not exist; pass startFrom/);
    const badStart = await commit('start', { branch: 'nowhere', startFrom: 'no-such-rev', message: 'lost', files: [{ path: 'x.txt', content: 'x\n' }] });
    assertError(badStart, 404, 'not_found');
    assert.deepEqual(await refs('start'), before);
  });

  it('refuses a commit that changes nothing with 422 unprocessable, unless allowEmpty', async () => {
    const head = await seeded('empty-change');
    const treeOf = async (sha: string) => (await gitOk(['rev-parse', `${sha}^{tree}`], { cwd: grove.server.repos.gitDir((await grove.sdk.repos.get('acme', 'empty-change')).id) })).trim();
    const same = await commit('empty-change', { branch: 'main', message: 'same content', files: [{ path: 'README.md', content: '# empty-change\n' }] });
    assertError(same, 422, 'unprocessable');
    assert.match(same.json.error.message, /would not change anything/);
    const none = await commit('empty-change', { branch: 'main', message: 'no files', files: [] });
    assertError(none, 422, 'unprocessable');
    const deleteMissing = await commit('empty-change', { branch: 'main', message: 'delete nothing', files: [{ path: 'absent.txt', delete: true }] });
    assertError(deleteMissing, 422, 'unprocessable');
    assert.equal((await refs('empty-change'))['refs/heads/main'], head);

    const allowed = await commit('empty-change', { branch: 'main', message: 'an empty commit', allowEmpty: true, files: [] });
    assert.equal(allowed.status, 201, allowed.text);
    assert.deepEqual(allowed.json.parents, [head]);
    assert.equal(allowed.json.tree, await treeOf(head));
    assert.equal((await refs('empty-change'))['refs/heads/main'], allowed.json.sha);
  });

  it('refuses unsafe paths with 400 invalid_request and writes nothing', async () => {
    const head = await seeded('paths');
    const objects = await objectState('paths');
    const bad = ['../x', '/abs', 'a//b', '.git/config', 'a/.git/hooks/x', '.GIT/config', 'a\u0000b', 'trailing/', 'a/./b', 'a/../b', '', 'line\nbreak'];
    for (const badPath of bad) {
      const answer = await commit('paths', { branch: 'main', message: 'bad', files: [{ path: 'ok.txt', content: 'fine\n' }, { path: badPath, content: 'x\n' }] });
      assertError(answer, 400, 'invalid_request');
      assert.match(answer.json.error.message, /^files\[1\]\.path: /, JSON.stringify(badPath));
      const asDelete = await commit('paths', { branch: 'main', message: 'bad', files: [{ path: badPath, delete: true }] });
      assertError(asDelete, 400, 'invalid_request');
      const asMove = await commit('paths', { branch: 'main', message: 'bad', files: [{ path: 'moved.txt', moveFrom: badPath }] });
      assertError(asMove, 400, 'invalid_request');
      assert.match(asMove.json.error.message, /^files\[0\]\.moveFrom: /, JSON.stringify(badPath));
    }
    assert.equal((await refs('paths'))['refs/heads/main'], head);
    assert.equal(await objectState('paths'), objects);
  });

  it('refuses a path named twice, a change with two kinds and unknown fields with 400', async () => {
    const head = await seeded('dupes');
    const twice = await commit('dupes', { branch: 'main', message: 'dup', files: [{ path: 'a.txt', content: '1\n' }, { path: 'a.txt', content: '2\n' }] });
    assertError(twice, 400, 'invalid_request');
    assert.match(twice.json.error.message, /files\[1\]\.path: a\.txt appears twice/);
    const addAndDelete = await commit('dupes', { branch: 'main', message: 'dup', files: [{ path: 'a.txt', content: '1\n' }, { path: 'a.txt', delete: true }] });
    assertError(addAndDelete, 400, 'invalid_request');
    const both = await commit('dupes', { branch: 'main', message: 'both', files: [{ path: 'a.txt', content: '1\n', delete: true }] });
    assertError(both, 400, 'invalid_request');
    assert.match(both.json.error.message, /exactly one of content, delete: true, moveFrom/);
    const badMode = await commit('dupes', { branch: 'main', message: 'mode', files: [{ path: 'a.txt', content: '1\n', mode: '100664' }] });
    assertError(badMode, 400, 'invalid_request');
    const badHead = await commit('dupes', { branch: 'main', expectedHead: 'HEAD', message: 'x', files: [{ path: 'a.txt', content: '1\n' }] });
    assertError(badHead, 400, 'invalid_request');
    const badBranch = await commit('dupes', { branch: 'bad..name', message: 'x', files: [{ path: 'a.txt', content: '1\n' }] });
    assertError(badBranch, 400, 'invalid_name');
    assert.equal((await refs('dupes'))['refs/heads/main'], head);
  });

  it('refuses moveFrom of a path that does not exist with 422', async () => {
    const head = await seeded('move-missing');
    const answer = await commit('move-missing', { branch: 'main', message: 'move', files: [{ path: 'b.txt', moveFrom: 'nope.txt' }] });
    assertError(answer, 422, 'unprocessable');
    assert.match(answer.json.error.message, /moveFrom: nope\.txt does not exist/);
    assert.equal((await refs('move-missing'))['refs/heads/main'], head);
  });

  // Regression: `git update-index --index-info` silently resolves a file/directory conflict by
  // dropping one side, so adding `dir` where dir/file.txt exists (or plain/inner.txt where the file
  // plain exists, or `new` and `new/inner.txt` together) used to commit without the other paths.
  it('refuses a file where a directory is, and a directory where a file is, with 422 and changes nothing', async () => {
    await seeded('df');
    const head = await commitOk('df', [{ path: 'dir/file.txt', content: 'in a directory\n' }, { path: 'plain', content: 'a file\n' }]);
    const gitDir = grove.server.repos.gitDir((await grove.sdk.repos.get('acme', 'df')).id);
    const problems: string[] = [];
    for (const files of [
      [{ path: 'dir', content: 'a file where a directory is\n' }],
      [{ path: 'plain/inner.txt', content: 'a directory where a file is\n' }],
      [{ path: 'new', content: 'x\n' }, { path: 'new/inner.txt', content: 'y\n' }],
    ]) {
      const answer = await commit('df', { branch: 'main', expectedHead: head, message: 'd/f', files });
      if (answer.status === 201) {
        const listing = (await gitOk(['ls-tree', '-r', '--name-only', answer.json.sha], { cwd: gitDir })).trim().split('\n').join(', ');
        problems.push(`${files.map((f) => f.path).join(' + ')}: 201, the commit holds only [${listing}]`);
        await api(grove, 'PATCH', '/repos/acme/df/branches/main', { body: { sha: head, expectedSha: answer.json.sha } });
      } else if (answer.status !== 422 || answer.json?.error?.code !== 'unprocessable') {
        problems.push(`${files.map((f) => f.path).join(' + ')}: ${answer.status} ${answer.text}`);
      }
    }
    assert.equal((await refs('df'))['refs/heads/main'], head);
    await grove.createRepo('acme', 'df-root');
    const root = await commit('df-root', { branch: 'main', message: 'd/f root', files: [{ path: 'x', content: 'x\n' }, { path: 'x/y', content: 'y\n' }] });
    if (root.status === 201) {
      const rootDir = grove.server.repos.gitDir((await grove.sdk.repos.get('acme', 'df-root')).id);
      const listing = (await gitOk(['ls-tree', '-r', '--name-only', root.json.sha], { cwd: rootDir })).trim().split('\n').join(', ');
      problems.push(`root commit x + x/y: 201, the commit holds only [${listing}]`);
    } else if (root.status !== 422) {
      problems.push(`root commit x + x/y: ${root.status} ${root.text}`);
    }
    // Replacing a file by a directory works when the file is deleted in the same commit.
    const replaced = await commitOk('df', [{ path: 'plain', delete: true }, { path: 'plain/inner.txt', content: 'now a directory\n' }]);
    const cloned = await clone('df');
    assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: cloned })).trim(), replaced);
    assert.equal(await readFile(path.join(cloned, 'plain/inner.txt'), 'utf8'), 'now a directory\n');
    assert.equal(await readFile(path.join(cloned, 'dir/file.txt'), 'utf8'), 'in a directory\n');
    assert.deepEqual(problems, []);
  });

  it('cannot forge commit headers through author and committer names or emails', async () => {
    await seeded('idents');
    const answer = await commit('idents', {
      branch: 'main',
      message: 'ident test',
      author: { name: 'Mallory <m@x> 1 +0000\ncommitter Forged', email: 'a>b\n@example.com' },
      committer: { name: 'Eve\nparent 0000000000000000000000000000000000000000', email: 'eve@example.com' },
      files: [{ path: 'x.txt', content: 'x\n' }],
    });
    if (answer.status === 201) {
      const cloned = await clone('idents');
      await gitOk(['fsck', '--strict'], { cwd: cloned });
      const raw = await gitOk(['cat-file', 'commit', answer.json.sha], { cwd: cloned });
      const headers = raw.slice(0, raw.indexOf('\n\n')).split('\n');
      assert.equal(headers.filter((h) => h.startsWith('committer ')).length, 1, raw);
      assert.equal(headers.filter((h) => h.startsWith('author ')).length, 1, raw);
      assert.equal(headers.filter((h) => h.startsWith('parent ')).length, 1, raw);
    } else {
      assert.ok(answer.status === 400 || answer.status === 422, answer.text);
    }
  });

  it('replays a retried Idempotency-Key request with the first sha and Idempotent-Replayed: true, without committing twice', async () => {
    const head = await seeded('idem');
    const body = { branch: 'main', message: 'once', files: [{ path: 'once.txt', content: 'once\n' }] };
    const first = await commit('idem', body, { headers: { 'idempotency-key': 'agent-7-task-1' } });
    assert.equal(first.status, 201, first.text);
    assert.equal(first.headers.get('idempotent-replayed'), null);
    const retry = await commit('idem', body, { headers: { 'idempotency-key': 'agent-7-task-1' } });
    assert.equal(retry.status, 201, retry.text);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(retry.json, first.json);
    assert.equal((await refs('idem'))['refs/heads/main'], first.json.sha, 'the retry did not move the branch');
    const cloned = await clone('idem');
    assert.equal((await gitOk(['rev-list', '--count', 'HEAD'], { cwd: cloned })).trim(), '2');
    assert.deepEqual(first.json.parents, [head]);

    const different = await commit('idem', { ...body, message: 'something else' }, { headers: { 'idempotency-key': 'agent-7-task-1' } });
    assertError(different, 409, 'idempotency_mismatch');
    assert.equal((await refs('idem'))['refs/heads/main'], first.json.sha);

    // Without a key, the same body is a new request (here: nothing to change).
    const again = await commit('idem', body);
    assertError(again, 422, 'unprocessable');
  });

  it('keeps Idempotency-Keys per principal: another key with the same Idempotency-Key is not replayed', async () => {
    await seeded('idem-principal');
    const body = { branch: 'main', message: 'shared key', files: [{ path: 'shared.txt', content: 'shared\n' }] };
    const first = await commit('idem-principal', body, { headers: { 'idempotency-key': 'same-key' } });
    assert.equal(first.status, 201, first.text);
    const other = (await grove.sdk.apiKeys.create({ scope: 'write', resources: [{ org: 'acme', repo: 'idem-principal' }] })).token;
    const second = await commit('idem-principal', body, { token: other, headers: { 'idempotency-key': 'same-key' } });
    assert.equal(second.headers.get('idempotent-replayed'), null, second.text);
    assertError(second, 422, 'unprocessable');
  });

  it('releases an Idempotency-Key when the request fails, so the same retry can succeed later', async () => {
    await seeded('idem-fail');
    const body = { branch: 'later', startFrom: 'base-for-later', message: 'later', files: [{ path: 'later.txt', content: 'later\n' }] };
    const failed = await commit('idem-fail', body, { headers: { 'idempotency-key': 'k-fail' } });
    assertError(failed, 404, 'not_found');
    const branch = await api(grove, 'POST', '/repos/acme/idem-fail/branches', { body: { name: 'base-for-later', sha: 'main' } });
    assert.equal(branch.status, 201, branch.text);
    const retried = await commit('idem-fail', body, { headers: { 'idempotency-key': 'k-fail' } });
    assert.equal(retried.status, 201, retried.text);
    assert.equal(retried.headers.get('idempotent-replayed'), null, 'it ran, it was not replayed');
    const replayed = await commit('idem-fail', body, { headers: { 'idempotency-key': 'k-fail' } });
    assert.equal(replayed.headers.get('idempotent-replayed'), 'true');
    assert.equal(replayed.json.sha, retried.json.sha);
  });

  it('lets exactly one of several concurrent commits with the same expectedHead win; the others get 409 stale_ref', async () => {
    const head = await seeded('race');
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) =>
      commit('race', { branch: 'main', expectedHead: head, message: `racer ${i}`, files: [{ path: `racer-${i}.txt`, content: `${i}\n` }] })));
    const winners = answers.filter((a) => a.status === 201);
    const losers = answers.filter((a) => a.status !== 201);
    assert.equal(winners.length, 1, answers.map((a) => `${a.status} ${a.text}`).join('\n'));
    const winner = winners[0]!.json.sha as string;
    for (const loser of losers) {
      assertError(loser, 409, 'stale_ref');
      assert.equal(loser.json.error.details.current, winner, loser.text);
    }
    assert.equal((await refs('race'))['refs/heads/main'], winner);
    const cloned = await clone('race');
    assert.equal((await gitOk(['rev-list', '--count', 'HEAD'], { cwd: cloned })).trim(), '2');
  });

  it('never loses an update when a commit by API and a git push race on one branch: the loser is refused', async () => {
    await seeded('push-race');
    const local = await clone('push-race');
    const url = `${grove.url}/acme/push-race.git`;
    const outcomes = new Set<string>();
    for (let round = 0; round < 6; round++) {
      await gitOk([...auth(grove.token), 'fetch', '-q', 'origin'], { cwd: local });
      await gitOk(['reset', '-q', '--hard', 'origin/main'], { cwd: local });
      const base = (await gitOk(['rev-parse', 'HEAD'], { cwd: local })).trim();
      const pushed = await commitFile(local, `push-${round}.txt`, `push ${round}\n`, `push ${round}`);
      const [apiAnswer, push] = await Promise.all([
        commit('push-race', { branch: 'main', message: `api ${round}`, files: [{ path: `api-${round}.txt`, content: `api ${round}\n` }] }),
        git([...auth(grove.token), 'push', url, 'HEAD:main'], { cwd: local }),
      ]);
      const tip = (await refs('push-race'))['refs/heads/main']!;
      await gitOk([...auth(grove.token), 'fetch', '-q', 'origin'], { cwd: local });
      const reaches = async (sha: string) => (await git(['merge-base', '--is-ancestor', sha, tip], { cwd: local })).code === 0;
      assert.ok(apiAnswer.status === 201 || push.code === 0, `round ${round}: both failed\n${apiAnswer.text}\n${push.stderr}`);
      if (apiAnswer.status === 201) {
        assert.ok(await reaches(apiAnswer.json.sha), `round ${round}: the API commit was lost`);
      } else {
        assertError(apiAnswer, 409, 'stale_ref');
        assert.equal(apiAnswer.json.error.details.current, pushed, `round ${round}`);
      }
      if (push.code === 0) {
        assert.ok(await reaches(pushed), `round ${round}: the pushed commit was lost\n${push.stderr}`);
      } else {
        assert.equal(push.code, 1, push.stderr);
        assert.match(push.stderr, /! \[(remote )?rejected\]/, push.stderr);
        assert.equal(tip, apiAnswer.json.sha);
        assert.deepEqual(apiAnswer.json.parents, [base]);
      }
      outcomes.add(`${apiAnswer.status}/${push.code}`);
    }
    // Which side wins each round is up to the scheduler (both orders occur in practice); the invariant above holds either way.
    assert.ok(outcomes.size >= 1);
  });

  describe('scopes and policies', () => {
    async function key(input: CreateApiKeyInput): Promise<string> {
      return (await grove.sdk.apiKeys.create(input)).token;
    }

    it('refuses a read key with 403 and the reason; a key for another repository gets 404', async () => {
      const head = await seeded('scoped-read');
      await grove.createRepo('acme', 'elsewhere');
      const reader = await key({ scope: 'read', resources: [{ org: 'acme', repo: 'scoped-read' }] });
      const answer = await commit('scoped-read', { branch: 'main', message: 'x', files: [{ path: 'x.txt', content: 'x\n' }] }, { token: reader });
      assertError(answer, 403, 'forbidden');
      assert.equal(answer.json.error.message, 'this key has scope read; write access is needed');
      const other = await key({ scope: 'write', resources: [{ org: 'acme', repo: 'elsewhere' }] });
      assertError(await commit('scoped-read', { branch: 'main', message: 'x', files: [{ path: 'x.txt', content: 'x\n' }] }, { token: other }), 404, 'not_found');
      const upload = await api(grove, 'PUT', '/repos/acme/scoped-read/files/x.bin?branch=main&message=x', { body: Buffer.from('x'), token: reader, headers: { 'content-type': 'application/octet-stream' } });
      assertError(upload, 403, 'forbidden');
      assert.equal((await refs('scoped-read'))['refs/heads/main'], head);
    });

    it('refuses a key limited to agent-7/* on main with the reason, and commits on agent-7/x', async () => {
      const head = await seeded('scoped-branch');
      const agent = await key({ scope: 'write', resources: [{ org: 'acme', repo: 'scoped-branch', branches: ['agent-7/*'] }] });
      const denied = await commit('scoped-branch', { branch: 'main', message: 'x', files: [{ path: 'x.txt', content: 'x\n' }] }, { token: agent });
      assertError(denied, 403, 'forbidden');
      assert.equal(denied.json.error.message, 'this key may only push to branches matching agent-7/*');
      const deniedNew = await commit('scoped-branch', { branch: 'agent-8/x', startFrom: 'main', message: 'x', files: [{ path: 'x.txt', content: 'x\n' }] }, { token: agent });
      assertError(deniedNew, 403, 'forbidden');
      const upload = await api(grove, 'PUT', '/repos/acme/scoped-branch/files/x.bin?branch=main&message=x', { body: Buffer.from('x'), token: agent, headers: { 'content-type': 'application/octet-stream' } });
      assertError(upload, 403, 'forbidden');
      assert.equal(upload.json.error.message, 'this key may only push to branches matching agent-7/*');

      const allowed = await commit('scoped-branch', { branch: 'agent-7/x', startFrom: 'main', message: 'agent work', files: [{ path: 'x.txt', content: 'x\n' }] }, { token: agent });
      assert.equal(allowed.status, 201, allowed.text);
      const again = await commit('scoped-branch', { branch: 'agent-7/x', expectedHead: allowed.json.sha, message: 'more', files: [{ path: 'y.txt', content: 'y\n' }] }, { token: agent });
      assert.equal(again.status, 201, again.text);
      const current = await refs('scoped-branch');
      assert.equal(current['refs/heads/main'], head);
      assert.equal(current['refs/heads/agent-7/x'], again.json.sha);
      assert.equal(current['refs/heads/agent-8/x'], undefined);
      // The default signature names the key.
      const cloned = await clone('scoped-branch', 'agent-7/x');
      assert.match((await gitOk(['log', '-1', '--format=%ae'], { cwd: cloned })).trim(), /@grove\.invalid$/);
    });

    it('refuses a write key on a protected main with 403; an admin key and root may commit', async () => {
      const head = await seeded('protected');
      await grove.sdk.policies.set('acme', 'protected', [{ pattern: 'main', protected: true }]);
      const writer = await key({ scope: 'write', resources: [{ org: 'acme', repo: 'protected' }] });
      const denied = await commit('protected', { branch: 'main', message: 'x', files: [{ path: 'x.txt', content: 'x\n' }] }, { token: writer });
      assertError(denied, 403, 'forbidden');
      assert.equal(denied.json.error.message, 'refs/heads/main is protected: only admin keys may move it');
      assert.equal((await refs('protected'))['refs/heads/main'], head);
      const side = await commit('protected', { branch: 'side', startFrom: 'main', message: 'side', files: [{ path: 'x.txt', content: 'x\n' }] }, { token: writer });
      assert.equal(side.status, 201, side.text);

      const admin = await key({ scope: 'admin', resources: [{ org: 'acme', repo: 'protected' }] });
      const byAdmin = await commit('protected', { branch: 'main', message: 'by admin', files: [{ path: 'x.txt', content: 'x\n' }] }, { token: admin });
      assert.equal(byAdmin.status, 201, byAdmin.text);
      assert.equal((await refs('protected'))['refs/heads/main'], byAdmin.json.sha);
    });
  });

  describe('raw uploads', () => {
    it('commits a 5 MB raw body streamed with PUT .../files/{path}, and the cloned file is byte-identical', async () => {
      const head = await seeded('upload');
      const data = randomBytes(5 * 1024 * 1024);
      const answer = await api(grove, 'PUT', `/repos/acme/upload/files/${encodeURIComponent('data dir')}/big.bin?branch=main&message=${encodeURIComponent('upload big.bin')}&expectedHead=${head}`, {
        body: data,
        headers: { 'content-type': 'application/octet-stream' },
      });
      assert.equal(answer.status, 201, answer.text);
      assert.deepEqual(answer.json.parents, [head]);
      assert.equal(answer.json.branch, 'main');
      const cloned = await clone('upload');
      assert.equal((await gitOk(['log', '-1', '--format=%H %s'], { cwd: cloned })).trim(), `${answer.json.sha} upload big.bin`);
      const file = await readFile(path.join(cloned, 'data dir/big.bin'));
      assert.equal(file.length, data.length);
      assert.equal(sha256(file), sha256(data));
      assert.equal((await gitOk(['ls-tree', '-r', '--name-only', 'HEAD'], { cwd: cloned })), 'README.md\ndata dir/big.bin\n');
    });

    it('refuses a raw upload with a stale expectedHead, an unsafe path, or without the octet-stream type, and changes nothing', async () => {
      const head = await seeded('upload-bad');
      const put = (rest: string, body: Buffer, contentType = 'application/octet-stream') =>
        api(grove, 'PUT', `/repos/acme/upload-bad/files/${rest}`, { body, headers: { 'content-type': contentType } });
      const stale = await put(`x.bin?branch=main&message=m&expectedHead=${'b'.repeat(40)}`, Buffer.from('x'));
      assertError(stale, 409, 'stale_ref');
      assert.equal(stale.json.error.details.current, head);
      assertError(await put('.git/config?branch=main&message=m', Buffer.from('x')), 400, 'invalid_request');
      assertError(await put('a%2F%2Fb?branch=main&message=m', Buffer.from('x')), 400, 'invalid_request');
      const wrongType = await put('x.bin?branch=main&message=m', Buffer.from('x'), 'text/plain');
      assertError(wrongType, 415, 'unsupported_media_type');
      const same = await put('README.md?branch=main&message=m', Buffer.from('# upload-bad\n'));
      assertError(same, 422, 'unprocessable');
      assert.equal((await refs('upload-bad'))['refs/heads/main'], head);
    });

    // Regression: an upload over the limit used to destroy the request stream (and the socket), so
    // the client saw `read ECONNRESET` (the SDK threw `TypeError: fetch failed`) instead of the 413.
    it('refuses a raw upload larger than GROVE_MAX_PACK_BYTES with 413 payload_too_large and changes nothing', async () => {
      const small = await startTestServer({ GROVE_MAX_PACK_BYTES: String(1024 * 1024) });
      try {
        await small.createRepo('acme', 'limited');
        const root = await small.sdk.commits.create('acme', 'limited', { branch: 'main', message: 'root', files: [{ path: 'a.txt', content: 'a\n' }] });
        const outcome = await small.sdk.commits.uploadFile('acme', 'limited', 'big.bin', new Uint8Array(randomBytes(3 * 1024 * 1024)), { branch: 'main', message: 'big' })
          .then((result) => `committed ${result.sha}`, (error: Error) => error);
        assert.equal((await small.sdk.branches.get('acme', 'limited', 'main')).sha, root.sha, 'nothing was committed');
        const fits = await small.sdk.commits.uploadFile('acme', 'limited', 'ok.bin', new Uint8Array(512 * 1024), { branch: 'main', message: 'fits' });
        assert.deepEqual(fits.parents, [root.sha]);
        assert.ok(outcome instanceof GroveApiError, `expected a GroveApiError, got ${String(outcome)} (${String((outcome as Error).cause ?? '')})`);
        assert.equal(outcome.status, 413);
        assert.equal(outcome.code, 'payload_too_large');
      } finally {
        await small.close();
      }
    });

    it('uploads with the SDK commits.uploadFile from bytes and from a stream, with an executable mode', async () => {
      const head = await seeded('upload-sdk');
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const result = await grove.sdk.commits.uploadFile('acme', 'upload-sdk', 'bin/tool', new Uint8Array(data), { branch: 'main', message: 'tool', expectedHead: head, mode: '100755' });
      assert.deepEqual(result.parents, [head]);
      const chunks = [data.subarray(0, 1000), data.subarray(1000)];
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          const next = chunks.shift();
          if (next) controller.enqueue(new Uint8Array(next));
          else controller.close();
        },
      });
      const streamed = await grove.sdk.commits.uploadFile('acme', 'upload-sdk', 'copy/tool', stream, { branch: 'side', startFrom: 'main', message: 'streamed copy' });
      assert.deepEqual(streamed.parents, [result.sha]);
      const cloned = await clone('upload-sdk', 'side');
      assert.equal(sha256(await readFile(path.join(cloned, 'bin/tool'))), sha256(data));
      assert.equal(sha256(await readFile(path.join(cloned, 'copy/tool'))), sha256(data));
      assert.equal(await gitOk(['ls-tree', '-r', '--format=%(objectmode) %(path)', 'HEAD'], { cwd: cloned }), '100644 README.md\n100755 bin/tool\n100644 copy/tool\n');
      await assert.rejects(
        grove.sdk.commits.uploadFile('acme', 'upload-sdk', 'x.bin', new Uint8Array([1]), { branch: 'main', message: 'stale', expectedHead: head }),
        (error: unknown) => error instanceof GroveApiError && error.status === 409 && error.code === 'stale_ref',
      );
    });
  });

  describe('the SDK', () => {
    it('creates commits with commits.create, replays with an idempotencyKey, and throws GroveApiError with status, code and details', async () => {
      await grove.createRepo('acme', 'sdk');
      const sdk = grove.sdk.commits;
      const root = await sdk.create('acme', 'sdk', { branch: 'main', message: 'root', files: [{ path: 'a.txt', content: 'a\n' }] });
      assert.deepEqual(root.parents, []);
      assert.equal(root.branch, 'main');
      const input = { branch: 'main', expectedHead: root.sha, message: 'second', files: [{ path: 'b.txt', content: Buffer.from('b\n').toString('base64'), encoding: 'base64' as const }] };
      const second = await sdk.create('acme', 'sdk', input, { idempotencyKey: 'sdk-1' });
      const replay = await sdk.create('acme', 'sdk', input, { idempotencyKey: 'sdk-1' });
      assert.deepEqual(replay, second);
      assert.deepEqual(second.parents, [root.sha]);

      await assert.rejects(sdk.create('acme', 'sdk', input), (error: unknown) => {
        assert.ok(error instanceof GroveApiError);
        assert.equal(error.status, 409);
        assert.equal(error.code, 'stale_ref');
        assert.deepEqual(error.details, { ref: 'refs/heads/main', current: second.sha });
        return true;
      });
      await assert.rejects(sdk.create('acme', 'sdk', { branch: 'main', message: 'bad', files: [{ path: '../x', content: 'x' }] }), (error: unknown) =>
        error instanceof GroveApiError && error.status === 400 && error.code === 'invalid_request');
      await assert.rejects(sdk.create('acme', 'sdk', { branch: 'main', message: 'same', files: [{ path: 'a.txt', content: 'a\n' }] }), (error: unknown) =>
        error instanceof GroveApiError && error.status === 422 && error.code === 'unprocessable');
      const cloned = await clone('sdk');
      assert.equal(await readFile(path.join(cloned, 'b.txt'), 'utf8'), 'b\n');
    });
  });
});
