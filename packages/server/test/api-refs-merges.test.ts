/**
 * Branches, tags and merges by API against a real server, checked with the real git
 * CLI on the server's bare repository and on clones: listing with prefix and
 * pagination, create / move / delete with compare-and-swap, branch TTLs and the
 * sweeper, ref policies, lightweight and annotated tags, fast-forward, merge and
 * squash merges, conflicts with hunks, previews, and key scopes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { GroveApiError } from '@grove/sdk';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, git, gitOk, tempDir } from './helpers/git.ts';

interface ApiAnswer {
  readonly status: number;
  readonly text: string;
  readonly headers: Headers;
  readonly json: any;
}

async function api(grove: TestServer, method: string, apiPath: string, options: { body?: unknown; token?: string; headers?: Record<string, string> } = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = { authorization: `Bearer ${options.token ?? grove.token}`, ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${grove.url}/api/v1${apiPath}`, { method, headers, ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}) });
  const text = await response.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, headers: response.headers, json };
}

function assertError(answer: ApiAnswer, status: number, code: string): void {
  assert.equal(answer.status, status, answer.text);
  assert.equal(answer.json?.error?.code, code, answer.text);
}

describe('branches, tags and merges by API', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let counter = 0;

  before(async () => {
    // The background sweeper stays out of the way: tests sweep explicitly.
    grove = await startTestServer({ GROVE_SWEEP_INTERVAL_MS: String(3600_000) });
    work = await tempDir('grove-api-refs-');
  });
  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  const call = (method: string, repo: string, rest: string, body?: unknown, token?: string) =>
    api(grove, method, `/repos/acme/${repo}${rest}`, { ...(body !== undefined ? { body } : {}), ...(token ? { token } : {}) });

  async function gitDir(repo: string): Promise<string> {
    return grove.server.repos.gitDir((await grove.sdk.repos.get('acme', repo)).id);
  }

  /** `git` on the server's bare repository (read-only inspection). */
  async function bare(repo: string, args: string[]): Promise<string> {
    return (await gitOk(args, { cwd: await gitDir(repo) })).trim();
  }

  async function refs(repo: string): Promise<Record<string, string>> {
    const out = await gitOk([...auth(grove.token), 'ls-remote', `${grove.url}/acme/${repo}.git`]);
    const result: Record<string, string> = {};
    for (const line of out.split('\n').filter(Boolean)) {
      const [oid, name] = line.split('\t') as [string, string];
      result[name] = oid;
    }
    return result;
  }

  async function clone(repo: string, branch = 'main'): Promise<string> {
    const target = path.join(work.path, `clone-${repo}-${++counter}`);
    await gitOk([...auth(grove.token), 'clone', '-q', '-b', branch, `${grove.url}/acme/${repo}.git`, target]);
    return target;
  }

  /** Commits files on a branch by API (creating it from startFrom when given); returns the sha. */
  async function commitOn(repo: string, branch: string, files: Record<string, string>, startFrom?: string): Promise<string> {
    const answer = await call('POST', repo, '/commits', {
      branch,
      message: `change ${Object.keys(files).join(', ')} on ${branch}`,
      ...(startFrom ? { startFrom } : {}),
      files: Object.entries(files).map(([p, content]) => ({ path: p, content })),
    });
    assert.equal(answer.status, 201, answer.text);
    return answer.json.sha;
  }

  /** A new repository with one commit on main. */
  async function seeded(repo: string, files: Record<string, string> = { 'README.md': `# ${repo}\n` }): Promise<string> {
    await grove.createRepo('acme', repo);
    return commitOn(repo, 'main', files);
  }

  describe('branches', () => {
    it('lists branches by name with a prefix filter and pagination', async () => {
      const head = await seeded('list');
      for (const name of ['agent/c', 'agent/a', 'agent/b', 'other/x', 'agents-not-agent']) {
        assert.equal((await call('POST', 'list', '/branches', { name, sha: head })).status, 201, name);
      }
      const first = await call('GET', 'list', '/branches?prefix=agent/&limit=2');
      assert.equal(first.status, 200, first.text);
      assert.deepEqual(first.json.items.map((b: { name: string }) => b.name), ['agent/a', 'agent/b']);
      assert.ok(first.json.items.every((b: { sha: string }) => b.sha === head));
      assert.equal(typeof first.json.nextCursor, 'string');
      const second = await call('GET', 'list', `/branches?prefix=agent/&limit=2&cursor=${encodeURIComponent(first.json.nextCursor)}`);
      assert.equal(second.status, 200, second.text);
      assert.deepEqual(second.json.items.map((b: { name: string }) => b.name), ['agent/c']);
      assert.equal(second.json.nextCursor, null);

      const all = await call('GET', 'list', '/branches');
      assert.deepEqual(all.json.items.map((b: { name: string }) => b.name), ['agent/a', 'agent/b', 'agent/c', 'agents-not-agent', 'main', 'other/x']);
      assert.equal(all.json.nextCursor, null);

      // Walking every page with limit=2 sees each branch exactly once.
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: ApiAnswer = await call('GET', 'list', `/branches?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        assert.ok(page.json.items.length <= 2);
        seen.push(...page.json.items.map((b: { name: string }) => b.name));
        cursor = page.json.nextCursor;
      } while (cursor);
      assert.deepEqual(seen, all.json.items.map((b: { name: string }) => b.name));

      const sdkPage = await grove.sdk.branches.list('acme', 'list', { prefix: 'other/' });
      assert.deepEqual(sdkPage, { items: [{ name: 'other/x', sha: head }], nextCursor: null });
      assertError(await call('GET', 'list', '/branches?limit=0'), 400, 'invalid_request');
    });

    it('gets a branch, and answers 404 for a missing one', async () => {
      const head = await seeded('get');
      assert.equal((await call('POST', 'get', '/branches', { name: 'feature/deep/x', sha: head })).status, 201);
      const answer = await call('GET', 'get', '/branches/feature/deep/x');
      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual(answer.json, { name: 'feature/deep/x', sha: head, expiresAt: null });
      assert.deepEqual(await grove.sdk.branches.get('acme', 'get', 'main'), { name: 'main', sha: head, expiresAt: null });
      assertError(await call('GET', 'get', '/branches/nope'), 404, 'not_found');
      assertError(await call('GET', 'nope-repo', '/branches/main'), 404, 'not_found');
    });

    it('creates branches at a sha, a branch and a tag; an existing name is 409 already_exists; a missing target 404', async () => {
      const first = await seeded('create');
      const second = await commitOn('create', 'main', { 'b.txt': 'b\n' });
      assert.equal((await call('POST', 'create', '/tags', { name: 'v1', sha: first, message: 'release 1' })).status, 201);

      const atSha = await call('POST', 'create', '/branches', { name: 'at-sha', sha: first });
      assert.equal(atSha.status, 201, atSha.text);
      assert.deepEqual(atSha.json, { name: 'at-sha', sha: first, expiresAt: null });
      const atBranch = await call('POST', 'create', '/branches', { name: 'at-branch', sha: 'main' });
      assert.equal(atBranch.json.sha, second);
      const atTag = await call('POST', 'create', '/branches', { name: 'at-tag', sha: 'v1' });
      assert.equal(atTag.json.sha, first, 'an annotated tag is peeled to its commit');
      const atShort = await call('POST', 'create', '/branches', { name: 'at-short', sha: second.slice(0, 10) });
      assert.equal(atShort.json.sha, second);
      const current = await refs('create');
      assert.equal(current['refs/heads/at-sha'], first);
      assert.equal(current['refs/heads/at-branch'], second);
      assert.equal(current['refs/heads/at-tag'], first);
      assert.equal(await bare('create', ['cat-file', '-t', 'refs/heads/at-tag']), 'commit');

      const existing = await call('POST', 'create', '/branches', { name: 'at-sha', sha: second });
      assertError(existing, 409, 'already_exists');
      assert.equal((await refs('create'))['refs/heads/at-sha'], first, 'unchanged');
      assertError(await call('POST', 'create', '/branches', { name: 'x', sha: 'no-such-branch' }), 404, 'not_found');
      assertError(await call('POST', 'create', '/branches', { name: 'x', sha: 'f'.repeat(40) }), 404, 'not_found');
      const tree = await bare('create', ['rev-parse', 'main^{tree}']);
      assertError(await call('POST', 'create', '/branches', { name: 'x', sha: tree }), 404, 'not_found');
      assert.equal((await refs('create'))['refs/heads/x'], undefined);
    });

    it('refuses invalid branch names with 400 invalid_name', async () => {
      const head = await seeded('names');
      const before = await refs('names');
      for (const name of ['bad..name', 'has space', 'x.lock', '-dash', 'a//b', 'trailing/', '.hidden', 'colon:x', 'tilde~1', 'caret^', 'q?', 'star*', 'HEAD', 'a@{1}', 'end.', '']) {
        const answer = await call('POST', 'names', '/branches', { name, sha: head });
        assertError(answer, 400, 'invalid_name');
      }
      assertError(await call('POST', 'names', '/tags', { name: 'bad..tag', sha: head }), 400, 'invalid_name');
      assert.deepEqual(await refs('names'), before);
    });

    it('moves a branch with expectedSha; a stale expectedSha is 409 stale_ref with the current sha', async () => {
      const first = await seeded('move');
      const second = await commitOn('move', 'main', { 'b.txt': 'b\n' });
      assert.equal((await call('POST', 'move', '/branches', { name: 'topic', sha: first })).status, 201);
      const moved = await call('PATCH', 'move', '/branches/topic', { sha: second, expectedSha: first });
      assert.equal(moved.status, 200, moved.text);
      assert.deepEqual(moved.json, { name: 'topic', sha: second, expiresAt: null });
      assert.equal((await refs('move'))['refs/heads/topic'], second);

      const stale = await call('PATCH', 'move', '/branches/topic', { sha: first, expectedSha: first });
      assertError(stale, 409, 'stale_ref');
      assert.deepEqual(stale.json.error.details, { ref: 'refs/heads/topic', current: second });
      assert.equal((await refs('move'))['refs/heads/topic'], second);

      // Backwards (not a fast-forward) is allowed without a policy; revision expressions are not accepted.
      assertError(await call('PATCH', 'move', '/branches/topic', { sha: 'main~1', expectedSha: second }), 404, 'not_found');
      const back = await grove.sdk.branches.move('acme', 'move', 'topic', { sha: first, expectedSha: second });
      assert.equal(back.sha, first);
      assertError(await call('PATCH', 'move', '/branches/nope', { sha: first, expectedSha: first }), 404, 'not_found');
      assertError(await call('PATCH', 'move', '/branches/topic', { sha: first }), 400, 'invalid_request');
    });

    it('deletes a branch with expectedSha (stale: 409), and refuses to delete the default branch with 422', async () => {
      const head = await seeded('delete');
      const other = await commitOn('delete', 'side', { 's.txt': 's\n' }, 'main');
      const stale = await call('DELETE', 'delete', `/branches/side?expectedSha=${head}`);
      assertError(stale, 409, 'stale_ref');
      assert.equal(stale.json.error.details.current, other);
      assert.equal((await refs('delete'))['refs/heads/side'], other);
      const deleted = await call('DELETE', 'delete', `/branches/side?expectedSha=${other}`);
      assert.equal(deleted.status, 204, deleted.text);
      assert.equal((await refs('delete'))['refs/heads/side'], undefined);
      assertError(await call('GET', 'delete', '/branches/side'), 404, 'not_found');
      assertError(await call('DELETE', 'delete', '/branches/side'), 404, 'not_found');

      const main = await call('DELETE', 'delete', '/branches/main');
      assertError(main, 422, 'unprocessable');
      assert.match(main.json.error.message, /default branch/);
      assert.equal((await refs('delete'))['refs/heads/main'], head);

      // Without expectedSha, and through the SDK.
      await commitOn('delete', 'gone', { 'g.txt': 'g\n' }, 'main');
      await grove.sdk.branches.delete('acme', 'delete', 'gone');
      assert.equal((await refs('delete'))['refs/heads/gone'], undefined);
    });

    it('deletes a branch with ttl "2s" on the first sweep after it expires, and then GET is 404', async () => {
      const head = await seeded('ttl');
      const created = await call('POST', 'ttl', '/branches', { name: 'scratch/agent-1', sha: head, ttl: '2s' });
      assert.equal(created.status, 201, created.text);
      const expiresAt = Date.parse(created.json.expiresAt);
      assert.ok(Math.abs(expiresAt - (Date.now() + 2000)) < 1500, created.json.expiresAt);
      const longer = await call('POST', 'ttl', '/branches', { name: 'scratch/agent-2', sha: head, ttl: 3600 });
      assert.equal(longer.status, 201, longer.text);
      assert.equal((await call('GET', 'ttl', '/branches/scratch/agent-1')).json.expiresAt, created.json.expiresAt);

      await grove.server.sweep();
      assert.equal((await call('GET', 'ttl', '/branches/scratch/agent-1')).status, 200, 'not expired yet: kept');
      // Moving the branch does not cancel its TTL.
      await commitOn('ttl', 'scratch/agent-1', { 'w.txt': 'work\n' });
      await delay(Math.max(0, expiresAt - Date.now()) + 100);
      await grove.server.sweep();
      assertError(await call('GET', 'ttl', '/branches/scratch/agent-1'), 404, 'not_found');
      const current = await refs('ttl');
      assert.equal(current['refs/heads/scratch/agent-1'], undefined);
      assert.equal(current['refs/heads/scratch/agent-2'], head, 'an unexpired branch stays');
      assert.equal(current['refs/heads/main'], head);
      assertError(await call('POST', 'ttl', '/branches', { name: 'bad-ttl', sha: head, ttl: '2 weeks' }), 400, 'invalid_request');
      assertError(await call('POST', 'ttl', '/branches', { name: 'bad-ttl', sha: head, ttl: '400d' }), 400, 'invalid_request');
    });

    // Regression: a branch TTL used to outlive a branch deleted by a git push (only the API DELETE and
    // the sweeper cleared branch_ttls), so a later branch of the same name created without a ttl
    // reported the old expiresAt on GET and was deleted by the sweeper.
    it('does not expire a branch created without a ttl after an expiring branch of the same name was deleted by a push', async () => {
      const head = await seeded('ttl-reuse');
      const created = await call('POST', 'ttl-reuse', '/branches', { name: 'scratch', sha: head, ttl: '1s' });
      assert.equal(created.status, 201, created.text);
      const local = await clone('ttl-reuse');
      await gitOk([...auth(grove.token), 'push', '-q', 'origin', ':refs/heads/scratch'], { cwd: local });
      assert.equal((await refs('ttl-reuse'))['refs/heads/scratch'], undefined);
      const again = await call('POST', 'ttl-reuse', '/branches', { name: 'scratch', sha: head });
      assert.equal(again.status, 201, again.text);
      assert.equal(again.json.expiresAt, null);
      assert.equal((await call('GET', 'ttl-reuse', '/branches/scratch')).json.expiresAt, null, 'GET reports the old TTL');
      await delay(Math.max(0, Date.parse(created.json.expiresAt) - Date.now()) + 100);
      await grove.server.sweep();
      const got = await call('GET', 'ttl-reuse', '/branches/scratch');
      assert.equal(got.status, 200, `the branch created without a ttl was swept: ${got.text}`);
      assert.equal(got.json.expiresAt, null);
    });

    it('refuses a non-fast-forward move of a noForcePush branch with 403 mentioning force, and allows a fast-forward', async () => {
      const first = await seeded('noforce');
      const second = await commitOn('noforce', 'main', { 'b.txt': 'b\n' });
      const unrelated = await commitOn('noforce', 'unrelated', { 'u.txt': 'u\n' }, first);
      await grove.sdk.policies.set('acme', 'noforce', [{ pattern: 'main', noForcePush: true }]);
      for (const target of [first, unrelated]) {
        const denied = await call('PATCH', 'noforce', '/branches/main', { sha: target, expectedSha: second });
        assertError(denied, 403, 'forbidden');
        assert.match(denied.json.error.message, /force/);
        assert.equal(denied.json.error.message, 'refs/heads/main may not be force-pushed (repo policy main)');
      }
      assert.equal((await refs('noforce'))['refs/heads/main'], second);
      const third = await commitOn('noforce', 'next', { 'c.txt': 'c\n' }, 'main');
      const ff = await call('PATCH', 'noforce', '/branches/main', { sha: third, expectedSha: second });
      assert.equal(ff.status, 200, ff.text);
      assert.equal((await refs('noforce'))['refs/heads/main'], third);
    });

    it('applies key branch globs and noDelete policies to branch writes', async () => {
      const head = await seeded('branch-scopes');
      const agent = (await grove.sdk.apiKeys.create({ scope: 'write', resources: [{ org: 'acme', repo: 'branch-scopes', branches: ['agent-7/*'] }] })).token;
      const reader = (await grove.sdk.apiKeys.create({ scope: 'read', resources: [{ org: 'acme', repo: 'branch-scopes' }] })).token;
      const denied = await call('POST', 'branch-scopes', '/branches', { name: 'other', sha: head }, agent);
      assertError(denied, 403, 'forbidden');
      assert.equal(denied.json.error.message, 'this key may only push to branches matching agent-7/*');
      assertError(await call('POST', 'branch-scopes', '/tags', { name: 'agent-7/t', sha: head }, agent), 403, 'forbidden');
      assert.equal((await call('POST', 'branch-scopes', '/branches', { name: 'agent-7/x', sha: head }, agent)).status, 201);
      assertError(await call('POST', 'branch-scopes', '/branches', { name: 'agent-7/y', sha: head }, reader), 403, 'forbidden');
      assert.equal((await call('GET', 'branch-scopes', '/branches', undefined, reader)).status, 200);

      await grove.sdk.policies.set('acme', 'branch-scopes', [{ pattern: 'agent-7/*', noDelete: true }]);
      const noDelete = await call('DELETE', 'branch-scopes', '/branches/agent-7/x', undefined, agent);
      assertError(noDelete, 403, 'forbidden');
      assert.match(noDelete.json.error.message, /may not be deleted/);
      assert.equal((await refs('branch-scopes'))['refs/heads/agent-7/x'], head);
    });
  });

  describe('tags', () => {
    it('creates lightweight and annotated tags, lists, gets and deletes them', async () => {
      const first = await seeded('tags');
      const second = await commitOn('tags', 'main', { 'b.txt': 'b\n' });
      const light = await call('POST', 'tags', '/tags', { name: 'light', sha: first });
      assert.equal(light.status, 201, light.text);
      assert.deepEqual(light.json, { name: 'light', sha: first, target: first, annotated: false });
      const annotated = await call('POST', 'tags', '/tags', { name: 'release/v1.0', sha: 'main', message: 'Release 1.0\n\nWith notes.' });
      assert.equal(annotated.status, 201, annotated.text);
      assert.equal(annotated.json.annotated, true);
      assert.equal(annotated.json.target, second);
      assert.notEqual(annotated.json.sha, second);

      assert.equal(await bare('tags', ['cat-file', '-t', 'refs/tags/light']), 'commit');
      assert.equal(await bare('tags', ['cat-file', '-t', 'refs/tags/release/v1.0']), 'tag');
      assert.equal(await bare('tags', ['rev-parse', 'refs/tags/release/v1.0']), annotated.json.sha);
      assert.equal(await bare('tags', ['rev-parse', 'refs/tags/release/v1.0^{commit}']), second);
      const object = await bare('tags', ['cat-file', '-p', annotated.json.sha]);
      assert.match(object, new RegExp(`^object ${second}\ntype commit\ntag release/v1\\.0\ntagger .+ <.+> \\d+ \\+0000\n\nRelease 1\\.0\n\nWith notes\\.$`));

      // A clone sees both, and the annotated tag's message.
      const cloned = await clone('tags');
      assert.equal((await gitOk(['tag', '-l', '-n9', 'release/v1.0'], { cwd: cloned })).replace(/\s+/g, ' ').trim(), 'release/v1.0 Release 1.0 With notes.');
      assert.equal((await gitOk(['rev-parse', 'light'], { cwd: cloned })).trim(), first);
      await gitOk(['fsck', '--strict'], { cwd: cloned });

      const list = await call('GET', 'tags', '/tags');
      assert.deepEqual(list.json, {
        items: [
          { name: 'light', sha: first, target: first, annotated: false },
          { name: 'release/v1.0', sha: annotated.json.sha, target: second, annotated: true },
        ],
        nextCursor: null,
      });
      assert.deepEqual((await grove.sdk.tags.list('acme', 'tags', { prefix: 'release/' })).items.map((t) => t.name), ['release/v1.0']);
      assert.deepEqual(await grove.sdk.tags.get('acme', 'tags', 'release/v1.0'), annotated.json);
      assertError(await call('POST', 'tags', '/tags', { name: 'light', sha: second }), 409, 'already_exists');

      assertError(await call('DELETE', 'tags', `/tags/light?expectedSha=${second}`), 409, 'stale_ref');
      assert.equal((await call('DELETE', 'tags', `/tags/light?expectedSha=${first}`)).status, 204);
      await grove.sdk.tags.delete('acme', 'tags', 'release/v1.0');
      assertError(await call('GET', 'tags', '/tags/light'), 404, 'not_found');
      const after = await refs('tags');
      assert.equal(after['refs/tags/light'], undefined);
      assert.equal(after['refs/tags/release/v1.0'], undefined);
    });
  });

  describe('merges', () => {
    /** main has base.txt; main and feature each change a different file (or the same one, with conflict). */
    async function diverged(repo: string, conflict = false): Promise<{ base: string; main: string; feature: string }> {
      const base = await seeded(repo, { 'shared.txt': 'one\ntwo\nthree\n' });
      const feature = await commitOn(repo, 'feature', conflict ? { 'shared.txt': 'one\nFEATURE\nthree\n' } : { 'feature.txt': 'feature\n' }, 'main');
      const main = await commitOn(repo, 'main', conflict ? { 'shared.txt': 'one\nMAIN\nthree\n' } : { 'main.txt': 'main\n' });
      return { base, main, feature };
    }

    it('fast-forwards base to head', async () => {
      await seeded('ff');
      const feature = await commitOn('ff', 'feature', { 'f.txt': 'f\n' }, 'main');
      const answer = await call('POST', 'ff', '/merges', { base: 'main', head: 'feature', strategy: 'fast-forward' });
      assert.equal(answer.status, 201, answer.text);
      assert.equal(answer.json.sha, feature);
      assert.equal(answer.json.fastForward, true);
      assert.equal(answer.json.tree, await bare('ff', ['rev-parse', `${feature}^{tree}`]));
      assert.equal((await refs('ff'))['refs/heads/main'], feature);
      assert.equal(await bare('ff', ['rev-list', '--count', 'main']), '2');
    });

    it('merges diverged branches with a two-parent merge commit whose tree has both changes', async () => {
      const { main, feature } = await diverged('merge');
      const answer = await call('POST', 'merge', '/merges', { base: 'main', head: 'feature', strategy: 'merge', message: 'Merge feature' });
      assert.equal(answer.status, 201, answer.text);
      assert.deepEqual(answer.json.parents, [main, feature]);
      assert.equal(answer.json.fastForward, false);
      assert.equal((await refs('merge'))['refs/heads/main'], answer.json.sha);
      const cloned = await clone('merge');
      assert.equal((await gitOk(['log', '-1', '--format=%H %P %T %s'], { cwd: cloned })).trim(), `${answer.json.sha} ${main} ${feature} ${answer.json.tree} Merge feature`);
      assert.equal(await readFile(path.join(cloned, 'main.txt'), 'utf8'), 'main\n');
      assert.equal(await readFile(path.join(cloned, 'feature.txt'), 'utf8'), 'feature\n');
      assert.equal(await readFile(path.join(cloned, 'shared.txt'), 'utf8'), 'one\ntwo\nthree\n');
      await gitOk(['fsck', '--strict'], { cwd: cloned });
      // The default strategy is merge, with a default message.
      await commitOn('merge', 'feature2', { 'f2.txt': 'f2\n' }, 'feature');
      await commitOn('merge', 'main', { 'm2.txt': 'm2\n' });
      const byDefault = await grove.sdk.merges.merge('acme', 'merge', { base: 'main', head: 'feature2' });
      assert.equal(byDefault.parents.length, 2);
      assert.equal(await bare('merge', ['log', '-1', '--format=%s', 'main']), 'Merge feature2 into main');
    });

    it('squashes head into base as one commit with one parent', async () => {
      const { main, feature } = await diverged('squash');
      await commitOn('squash', 'feature', { 'feature2.txt': 'more\n' });
      const answer = await call('POST', 'squash', '/merges', { base: 'main', head: 'feature', strategy: 'squash', message: 'Squashed feature' });
      assert.equal(answer.status, 201, answer.text);
      assert.deepEqual(answer.json.parents, [main]);
      const cloned = await clone('squash');
      assert.equal((await gitOk(['log', '--format=%s', '-1'], { cwd: cloned })).trim(), 'Squashed feature');
      assert.equal((await gitOk(['rev-parse', 'HEAD^@'], { cwd: cloned })).trim(), main);
      assert.equal((await gitOk(['ls-tree', '-r', '--name-only', 'HEAD'], { cwd: cloned })), 'feature.txt\nfeature2.txt\nmain.txt\nshared.txt\n');
      assert.equal((await git(['merge-base', '--is-ancestor', feature, 'HEAD'], { cwd: cloned })).code, 1, 'feature is not an ancestor after a squash');
    });

    it('rebases head onto base: its commits replayed in order, with their authors and messages, base moved to the last', async () => {
      const { main } = await diverged('rebase');
      await commitOn('rebase', 'feature', { 'feature2.txt': 'more\n' });
      const answer = await call('POST', 'rebase', '/merges', { base: 'main', head: 'feature', strategy: 'rebase' });
      assert.equal(answer.status, 201, answer.text);
      assert.equal((await refs('rebase'))['refs/heads/main'], answer.json.sha);
      const cloned = await clone('rebase');
      const log = (await gitOk(['log', '--format=%s|%P', `${main}..HEAD`], { cwd: cloned })).trim().split('\n');
      assert.equal(log.length, 2, log.join('\n'));
      assert.equal((await gitOk(['rev-parse', 'HEAD~2'], { cwd: cloned })).trim(), main);
      assert.equal((await gitOk(['ls-tree', '-r', '--name-only', 'HEAD'], { cwd: cloned })), 'feature.txt\nfeature2.txt\nmain.txt\nshared.txt\n');
      await gitOk(['fsck', '--strict'], { cwd: cloned });
    });

    it('refuses a rebase that conflicts with 409 merge_conflict naming the commit, and moves nothing', async () => {
      const { main } = await diverged('rebase-conflict', true);
      const answer = await call('POST', 'rebase-conflict', '/merges', { base: 'main', head: 'feature', strategy: 'rebase' });
      assertError(answer, 409, 'merge_conflict');
      assert.match(answer.json.error.details.commit, /^[0-9a-f]{40}$/);
      assert.equal(answer.json.error.details.conflicts[0].path, 'shared.txt');
      assert.equal((await refs('rebase-conflict'))['refs/heads/main'], main);
    });

    it('refuses an already-merged head with 422 and a fast-forward of diverged branches with 422', async () => {
      const { base, main } = await diverged('refused');
      const behind = await call('POST', 'refused', '/branches', { name: 'behind', sha: base });
      assert.equal(behind.status, 201);
      const already = await call('POST', 'refused', '/merges', { base: 'main', head: 'behind' });
      assertError(already, 422, 'unprocessable');
      assert.match(already.json.error.message, /already contains/);
      assertError(await call('POST', 'refused', '/merges', { base: 'main', head: 'main' }), 422, 'unprocessable');
      const ff = await call('POST', 'refused', '/merges', { base: 'main', head: 'feature', strategy: 'fast-forward' });
      assertError(ff, 422, 'unprocessable');
      assert.match(ff.json.error.message, /diverged/);
      assertError(await call('POST', 'refused', '/merges', { base: 'nope', head: 'feature' }), 404, 'not_found');
      assertError(await call('POST', 'refused', '/merges', { base: 'main', head: 'nope' }), 404, 'not_found');
      assertError(await call('POST', 'refused', '/merges', { base: 'main', head: 'feature', strategy: 'octopus' }), 400, 'invalid_request');
      assert.equal((await refs('refused'))['refs/heads/main'], main);
    });

    it('answers a conflict with 409 merge_conflict, the path and the hunks, and moves nothing; preview says the same', async () => {
      const { main, feature } = await diverged('conflict', true);
      await commitOn('conflict', 'main', { 'clean.txt': 'clean\n' });
      const mainTip = (await refs('conflict'))['refs/heads/main']!;
      const objectsBefore = await bare('conflict', ['count-objects', '-v']);
      const answer = await call('POST', 'conflict', '/merges', { base: 'main', head: 'feature', strategy: 'merge' });
      assertError(answer, 409, 'merge_conflict');
      const conflicts = answer.json.error.details.conflicts;
      assert.equal(conflicts.length, 1, answer.text);
      assert.equal(conflicts[0].path, 'shared.txt');
      assert.deepEqual(Object.keys(conflicts[0].stages).sort(), ['base', 'ours', 'theirs']);
      assert.equal(conflicts[0].stages.ours, await bare('conflict', ['rev-parse', `${main}:shared.txt`]));
      assert.equal(conflicts[0].stages.theirs, await bare('conflict', ['rev-parse', `${feature}:shared.txt`]));
      assert.equal(conflicts[0].hunks.length, 1);
      assert.deepEqual(conflicts[0].hunks[0], { startLine: 2, ours: ['MAIN'], theirs: ['FEATURE'] });
      assert.equal((await refs('conflict'))['refs/heads/main'], mainTip);
      assert.equal(await bare('conflict', ['count-objects', '-v']), objectsBefore, 'no merge objects were written');

      const preview = await call('POST', 'conflict', '/merges/preview', { base: 'main', head: 'feature', strategy: 'merge' });
      assertError(preview, 409, 'merge_conflict');
      assert.deepEqual(preview.json.error.details, answer.json.error.details);
      const squash = await call('POST', 'conflict', '/merges', { base: 'main', head: 'feature', strategy: 'squash' });
      assertError(squash, 409, 'merge_conflict');
      assert.equal((await refs('conflict'))['refs/heads/main'], mainTip);

      await assert.rejects(grove.sdk.merges.merge('acme', 'conflict', { base: 'main', head: 'feature' }), (error: unknown) => {
        assert.ok(error instanceof GroveApiError);
        assert.equal(error.status, 409);
        assert.equal(error.code, 'merge_conflict');
        assert.equal((error.details as any).conflicts[0].path, 'shared.txt');
        return true;
      });
    });

    it('previews a merge with 200 and the same tree, without moving base or keeping the commit', async () => {
      const { main } = await diverged('preview');
      const preview = await call('POST', 'preview', '/merges/preview', { base: 'main', head: 'feature', strategy: 'merge' });
      assert.equal(preview.status, 200, preview.text);
      assert.equal(preview.json.parents.length, 2);
      assert.equal(preview.json.fastForward, false);
      assert.equal((await refs('preview'))['refs/heads/main'], main);
      const dir = await gitDir('preview');
      assert.notEqual((await git(['cat-file', '-e', preview.json.sha], { cwd: dir })).code, 0, 'the previewed commit is not in the repository');
      const ffPreview = await grove.sdk.merges.preview('acme', 'preview', { base: 'feature', head: 'main', strategy: 'fast-forward' }).catch((e: GroveApiError) => e);
      assert.ok(ffPreview instanceof GroveApiError && ffPreview.status === 422);

      const merged = await call('POST', 'preview', '/merges', { base: 'main', head: 'feature', strategy: 'merge' });
      assert.equal(merged.status, 201, merged.text);
      assert.equal(merged.json.tree, preview.json.tree);
      assert.deepEqual(merged.json.parents, preview.json.parents);
      const afterPreview = await call('POST', 'preview', '/merges/preview', { base: 'main', head: 'feature' });
      assertError(afterPreview, 422, 'unprocessable');
    });

    it('refuses a merge whose expectedBase is stale with 409 stale_ref and moves nothing', async () => {
      const { base, main } = await diverged('expected');
      const stale = await call('POST', 'expected', '/merges', { base: 'main', head: 'feature', expectedBase: base });
      assertError(stale, 409, 'stale_ref');
      assert.deepEqual(stale.json.error.details, { ref: 'refs/heads/main', current: main });
      assert.equal((await refs('expected'))['refs/heads/main'], main);
      const ok = await call('POST', 'expected', '/merges', { base: 'main', head: 'feature', expectedBase: main });
      assert.equal(ok.status, 201, ok.text);
    });

    it('replays a merge retried with the same Idempotency-Key', async () => {
      await diverged('merge-idem');
      const first = await api(grove, 'POST', '/repos/acme/merge-idem/merges', { body: { base: 'main', head: 'feature' }, headers: { 'idempotency-key': 'merge-1' } });
      assert.equal(first.status, 201, first.text);
      const retry = await api(grove, 'POST', '/repos/acme/merge-idem/merges', { body: { base: 'main', head: 'feature' }, headers: { 'idempotency-key': 'merge-1' } });
      assert.equal(retry.status, 201, retry.text);
      assert.equal(retry.headers.get('idempotent-replayed'), 'true');
      assert.equal(retry.json.sha, first.json.sha);
      assert.equal((await refs('merge-idem'))['refs/heads/main'], first.json.sha);
    });

    it('lets a read key preview a merge but not merge (403)', async () => {
      const { main } = await diverged('merge-read');
      const reader = (await grove.sdk.apiKeys.create({ scope: 'read', resources: [{ org: 'acme', repo: 'merge-read' }] })).token;
      const preview = await call('POST', 'merge-read', '/merges/preview', { base: 'main', head: 'feature' }, reader);
      assert.equal(preview.status, 200, preview.text);
      const merge = await call('POST', 'merge-read', '/merges', { base: 'main', head: 'feature' }, reader);
      assertError(merge, 403, 'forbidden');
      assert.equal(merge.json.error.message, 'this key has scope read; write access is needed');
      const agent = (await grove.sdk.apiKeys.create({ scope: 'write', resources: [{ org: 'acme', repo: 'merge-read', branches: ['feature'] }] })).token;
      const scoped = await call('POST', 'merge-read', '/merges', { base: 'main', head: 'feature' }, agent);
      assertError(scoped, 403, 'forbidden');
      assert.equal(scoped.json.error.message, 'this key may only push to branches matching feature');
      await grove.sdk.policies.set('acme', 'merge-read', [{ pattern: 'main', protected: true }]);
      const writer = (await grove.sdk.apiKeys.create({ scope: 'write', resources: [{ org: 'acme', repo: 'merge-read' }] })).token;
      assertError(await call('POST', 'merge-read', '/merges', { base: 'main', head: 'feature' }, writer), 403, 'forbidden');
      assert.equal((await refs('merge-read'))['refs/heads/main'], main);
    });
  });
});
