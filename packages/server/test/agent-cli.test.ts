/**
 * The agent commands of the grove CLI (`commit`, `branch`, `tag`, `merge`,
 * `repo fork`) as a separate process against a real server, checked with the real
 * git CLI on clones. Errors exit 1 with `grove: <code>: <message>` on stderr.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { grove, json, silent } from './helpers/cli.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, gitOk, tempDir } from './helpers/git.ts';

describe('grove commit, branch, tag, merge and repo fork', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let counter = 0;
  const dir = (name: string) => path.join(work.path, `${name}-${++counter}`);
  const run = (...args: string[]) => grove(args, env);

  before(async () => {
    server = await startTestServer();
    env = { GROVE_URL: server.url, GROVE_TOKEN: server.token };
    work = await tempDir('grove-agent-cli-');
    await server.createRepo('acme', 'app');
  });
  after(async () => {
    await server.close();
    await work[Symbol.asyncDispose]();
  });

  async function tip(repo: string, branch: string): Promise<string | undefined> {
    const out = await gitOk([...auth(server.token), 'ls-remote', `${server.url}/acme/${repo}.git`, `refs/heads/${branch}`]);
    return out.split('\t')[0] || undefined;
  }

  async function clone(repo: string, branch = 'main'): Promise<string> {
    const target = dir(`clone-${repo}`);
    await gitOk([...auth(server.token), 'clone', '-q', '-b', branch, `${server.url}/acme/${repo}.git`, target]);
    return target;
  }

  it('commits local files with `grove commit --file`, then deletes and moves with --delete and --move', async () => {
    const text = path.join(work.path, 'a.txt');
    const binary = path.join(work.path, 'logo.bin');
    const bytes = randomBytes(100_000);
    await writeFile(text, 'hello from the CLI\n');
    await writeFile(binary, bytes);
    const first = json(await run('commit', 'acme/app', '--branch', 'main', '-m', 'first by CLI', '--file', `a.txt=${text}`, '--file', `assets/logo.bin=${binary}`, '--file', `old/name.txt=${text}`));
    assert.equal(first.branch, 'main');
    assert.deepEqual(first.parents, []);
    assert.equal(await tip('app', 'main'), first.sha);

    const second = json(await run('commit', 'acme/app', '--branch', 'main', '-m', 'tidy up', '--expected-head', first.sha, '--delete', 'assets/logo.bin', '--move', 'old/name.txt=new/name.txt'));
    assert.deepEqual(second.parents, [first.sha]);

    const cloned = await clone('app');
    assert.equal((await gitOk(['log', '--format=%H %s'], { cwd: cloned })).trim(), `${second.sha} tidy up\n${first.sha} first by CLI`);
    assert.equal(await readFile(path.join(cloned, 'a.txt'), 'utf8'), 'hello from the CLI\n');
    assert.equal(await readFile(path.join(cloned, 'new/name.txt'), 'utf8'), 'hello from the CLI\n');
    assert.equal(await gitOk(['ls-tree', '-r', '--name-only', 'HEAD'], { cwd: cloned }), 'a.txt\nnew/name.txt\n');
    assert.equal((await gitOk(['cat-file', '-s', `${first.sha}:assets/logo.bin`], { cwd: cloned })).trim(), String(bytes.length));
  });

  it('creates, lists, moves and deletes branches with `grove branch`', async () => {
    const main = (await tip('app', 'main'))!;
    const created = json(await run('branch', 'create', 'acme/app', 'agent-7/task', 'main'));
    assert.deepEqual(created, { name: 'agent-7/task', sha: main, expiresAt: null });
    const expiring = json(await run('branch', 'create', 'acme/app', 'agent-7/scratch', main, '--ttl', '1h'));
    assert.ok(Date.parse(expiring.expiresAt) > Date.now() + 3500_000);

    const listed = json(await run('branch', 'list', 'acme/app', '--prefix', 'agent-7/'));
    assert.deepEqual(listed.items.map((b: { name: string }) => b.name), ['agent-7/scratch', 'agent-7/task']);
    const paged = json(await run('branch', 'list', 'acme/app', '--limit', '1'));
    assert.equal(paged.items.length, 1);
    assert.equal(typeof paged.nextCursor, 'string');
    const rest = json(await run('branch', 'list', 'acme/app', '--limit', '5', '--cursor', paged.nextCursor));
    assert.deepEqual([...paged.items, ...rest.items].map((b: { name: string }) => b.name), ['agent-7/scratch', 'agent-7/task', 'main']);

    const work2 = json(await run('commit', 'acme/app', '--branch', 'agent-7/task', '-m', 'agent work', '--file', `task.txt=${path.join(work.path, 'a.txt')}`));
    const moved = json(await run('branch', 'move', 'acme/app', 'agent-7/scratch', work2.sha, '--expected-sha', main));
    assert.equal(moved.sha, work2.sha);
    assert.equal(await tip('app', 'agent-7/scratch'), work2.sha);

    silent(await run('branch', 'delete', 'acme/app', 'agent-7/scratch', '--expected-sha', work2.sha));
    assert.equal(await tip('app', 'agent-7/scratch'), undefined);
  });

  it('creates a lightweight and an annotated tag with `grove tag create`', async () => {
    const main = (await tip('app', 'main'))!;
    const light = json(await run('tag', 'create', 'acme/app', 'light', 'main'));
    assert.deepEqual(light, { name: 'light', sha: main, target: main, annotated: false });
    const annotated = json(await run('tag', 'create', 'acme/app', 'v1.0', main, '-m', 'Release 1.0 from the CLI'));
    assert.equal(annotated.annotated, true);
    assert.equal(annotated.target, main);
    const cloned = await clone('app');
    assert.equal((await gitOk(['cat-file', '-t', 'refs/tags/v1.0'], { cwd: cloned })).trim(), 'tag');
    assert.match(await gitOk(['cat-file', '-p', 'refs/tags/v1.0'], { cwd: cloned }), /\n\nRelease 1\.0 from the CLI\n$/);
    const listed = json(await run('tag', 'list', 'acme/app'));
    assert.deepEqual(listed.items.map((t: { name: string }) => t.name), ['light', 'v1.0']);
  });

  it('previews a merge with `grove merge --preview` without moving anything, then merges', async () => {
    const main = (await tip('app', 'main'))!;
    const feature = json(await run('commit', 'acme/app', '--branch', 'feature', '--start-from', 'main', '-m', 'feature work', '--file', `feature.txt=${path.join(work.path, 'a.txt')}`));
    json(await run('commit', 'acme/app', '--branch', 'main', '-m', 'main work', '--file', `main.txt=${path.join(work.path, 'a.txt')}`));
    const mainNow = (await tip('app', 'main'))!;
    assert.notEqual(mainNow, main);

    const preview = json(await run('merge', 'acme/app', '--base', 'main', '--head', 'feature', '--preview'));
    assert.deepEqual(preview.parents, [mainNow, feature.sha]);
    assert.equal(preview.fastForward, false);
    assert.equal(await tip('app', 'main'), mainNow, 'a preview moves nothing');

    const merged = json(await run('merge', 'acme/app', '--base', 'main', '--head', 'feature', '-m', 'Merge feature (CLI)', '--expected-base', mainNow));
    assert.equal(merged.tree, preview.tree);
    assert.equal(await tip('app', 'main'), merged.sha);
    const cloned = await clone('app');
    assert.equal((await gitOk(['log', '-1', '--format=%P %s'], { cwd: cloned })).trim(), `${mainNow} ${feature.sha} Merge feature (CLI)`);
    assert.equal(await gitOk(['ls-tree', '--name-only', 'HEAD'], { cwd: cloned }), 'a.txt\nfeature.txt\nmain.txt\nnew\n');

    const ff = json(await run('commit', 'acme/app', '--branch', 'ff', '--start-from', 'main', '-m', 'ff work', '--file', `ff.txt=${path.join(work.path, 'a.txt')}`));
    const fastForward = json(await run('merge', 'acme/app', '--base', 'main', '--head', 'ff', '--strategy', 'fast-forward'));
    assert.equal(fastForward.sha, ff.sha);
    assert.equal(await tip('app', 'main'), ff.sha);
  });

  it('forks with `grove repo fork` and the fork clones like its source', async () => {
    const fork = json(await run('repo', 'fork', 'acme/app', 'app-fork'));
    assert.equal(fork.name, 'app-fork');
    assert.equal(fork.forkOf, (await server.sdk.repos.get('acme', 'app')).id);
    assert.equal(await tip('app-fork', 'main'), await tip('app', 'main'));
    const snap = json(await run('repo', 'fork', 'acme/app', 'app-snap', '--snapshot', '--ttl', '1h'));
    assert.notEqual(snap.expiresAt, null);
    const cloned = await clone('app-snap');
    assert.equal((await gitOk(['rev-list', '--count', 'HEAD'], { cwd: cloned })).trim(), '1');
  });

  it('exits 1 with `grove: <code>: <message>` on stderr when the API refuses', async () => {
    const main = (await tip('app', 'main'))!;
    const stale = await run('branch', 'move', 'acme/app', 'feature', main, '--expected-sha', '0'.repeat(39) + '1');
    assert.equal(stale.code, 1);
    assert.equal(stale.stdout, '');
    assert.equal(stale.stderr, `grove: stale_ref: refs/heads/feature is at ${await tip('app', 'feature')}, not at the expected ${'0'.repeat(39)}1\n`);

    const missing = await run('commit', 'acme/app', '--branch', 'nowhere', '-m', 'x', '--file', `x.txt=${path.join(work.path, 'a.txt')}`);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'grove: unprocessable: branch nowhere does not exist; pass startFrom to create it\n');

    const exists = await run('branch', 'create', 'acme/app', 'feature', 'main');
    assert.equal(exists.code, 1);
    assert.equal(exists.stderr, 'grove: already_exists: branch feature already exists\n');

    const forkExists = await run('repo', 'fork', 'acme/app', 'app-fork');
    assert.equal(forkExists.code, 1);
    assert.equal(forkExists.stderr, 'grove: already_exists: repository acme/app-fork already exists\n');

    // A conflict: both sides change a.txt.
    const local = path.join(work.path, 'conflict.txt');
    await writeFile(local, 'ours\n');
    json(await run('commit', 'acme/app', '--branch', 'theirs', '--start-from', 'main', '-m', 'theirs', '--file', `a.txt=${local}`));
    await writeFile(local, 'mine\n');
    json(await run('commit', 'acme/app', '--branch', 'main', '-m', 'mine', '--file', `a.txt=${local}`));
    const before = await tip('app', 'main');
    const conflict = await run('merge', 'acme/app', '--base', 'main', '--head', 'theirs');
    assert.equal(conflict.code, 1);
    assert.equal(conflict.stderr, 'grove: merge_conflict: merging theirs into main conflicts in 1 path(s); nothing was changed\n');
    assert.equal(await tip('app', 'main'), before);

    const usage = await run('merge', 'acme/app', '--base', 'main', '--head', 'theirs', '--strategy', 'octopus');
    assert.equal(usage.code, 1);
    assert.equal(usage.stderr, 'grove: --strategy must be fast-forward, merge, squash or rebase\n');
  });
});
