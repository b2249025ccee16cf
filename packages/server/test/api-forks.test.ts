/**
 * Repo lifecycle for fleets: forks (`POST /orgs/{org}/repos` with `from`, SDK
 * `repos.fork`) that share objects with their source, snapshots, ephemeral repos
 * deleted by the sweeper, deleting a source that forks borrow from, and the claim
 * that forking a ~100 MB repository costs the same as forking an empty one.
 * Checked with the real git CLI on clones and on the server's bare repositories.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { GroveApiError } from '@grove/sdk';
import { onClusterOfOne } from './helpers/database.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, generateHistory, git, gitOk, tempDir } from './helpers/git.ts';

interface ApiAnswer {
  readonly status: number;
  readonly text: string;
  readonly json: any;
}

async function api(grove: TestServer, method: string, apiPath: string, body?: unknown, token?: string): Promise<ApiAnswer> {
  const headers: Record<string, string> = { authorization: `Bearer ${token ?? grove.token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${grove.url}/api/v1${apiPath}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await response.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}

function assertError(answer: ApiAnswer, status: number, code: string): void {
  assert.equal(answer.status, status, answer.text);
  assert.equal(answer.json?.error?.code, code, answer.text);
}

/** Total bytes of the regular files under a directory. */
async function duBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe('forks, snapshots and ephemeral repositories', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let counter = 0;
  const dir = (name: string) => path.join(work.path, `${name}-${++counter}`);

  before(async () => {
    // The background sweeper stays out of the way: tests sweep explicitly.
    grove = await startTestServer({ GROVE_SWEEP_INTERVAL_MS: String(3600_000) });
    work = await tempDir('grove-api-forks-');
    await grove.sdk.orgs.create({ name: 'acme' });
    await grove.sdk.orgs.create({ name: 'beta' });
  });
  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  const urlOf = (org: string, repo: string) => `${grove.url}/${org}/${repo}.git`;

  async function gitDirOf(org: string, repo: string): Promise<string> {
    return grove.server.repos.gitDir((await grove.sdk.repos.get(org, repo)).id);
  }

  async function lsRemote(org: string, repo: string): Promise<string> {
    return gitOk([...auth(grove.token), 'ls-remote', urlOf(org, repo)]);
  }

  async function head(org: string, repo: string, branch = 'main'): Promise<string | undefined> {
    const line = (await lsRemote(org, repo)).split('\n').find((l) => l.endsWith(`\trefs/heads/${branch}`));
    return line?.split('\t')[0];
  }

  /** A source repository with a generated history (branches, merges, tags, a binary file), pushed by git. */
  async function historySource(name: string): Promise<string> {
    const url = await grove.createRepo('acme', name);
    const local = dir(`${name}-src`);
    await generateHistory(local, 10);
    await gitOk([...auth(grove.token), 'push', '-q', url, '--all'], { cwd: local });
    await gitOk([...auth(grove.token), 'push', '-q', url, '--tags'], { cwd: local });
    return local;
  }

  /** Every object reachable from any ref of a mirror clone, sorted: "the same repository". */
  async function objectsOf(mirror: string): Promise<string> {
    return (await gitOk(['rev-list', '--all', '--objects'], { cwd: mirror })).split('\n').sort().join('\n');
  }

  it('forks with repos.fork and with POST from: the same refs, HEAD and objects, sharing the source\'s objects', async () => {
    await historySource('app');
    const source = await grove.sdk.repos.get('acme', 'app');
    const fork = await grove.sdk.repos.fork('acme', 'app-fork', 'acme/app');
    assert.equal(fork.forkOf, source.id);
    assert.equal(fork.defaultBranch, 'main');
    assert.equal(fork.expiresAt, null);
    assert.equal(fork.cloneUrl, urlOf('acme', 'app-fork'));
    const raw = await api(grove, 'POST', '/orgs/acme/repos', { name: 'app-fork-2', from: 'acme/app', description: 'a raw fork' });
    assert.equal(raw.status, 201, raw.text);
    assert.equal(raw.json.forkOf, source.id);
    assert.equal(raw.json.description, 'a raw fork');

    const sourceRefs = await lsRemote('acme', 'app');
    assert.match(sourceRefs, /refs\/tags\/v1\.0\^\{\}/, 'the source has a peeled annotated tag');
    assert.equal(await lsRemote('acme', 'app-fork'), sourceRefs);
    assert.equal(await lsRemote('acme', 'app-fork-2'), sourceRefs);

    const sourceMirror = dir('app-mirror');
    const forkMirror = dir('fork-mirror');
    await gitOk([...auth(grove.token), 'clone', '-q', '--mirror', urlOf('acme', 'app'), sourceMirror]);
    await gitOk([...auth(grove.token), 'clone', '-q', '--mirror', urlOf('acme', 'app-fork'), forkMirror]);
    assert.equal(await objectsOf(forkMirror), await objectsOf(sourceMirror));
    await gitOk(['fsck', '--strict'], { cwd: forkMirror });

    // Shared, not copied: the fork's bare repository names the source's objects and holds none of its own.
    const forkDir = await gitDirOf('acme', 'app-fork');
    const alternates = await readFile(path.join(forkDir, 'objects/info/alternates'), 'utf8');
    assert.equal(alternates.trim(), path.join(await gitDirOf('acme', 'app'), 'objects'));
    // (A cluster node's fork publishes a complete pack of its own to the object store: docs/scale-out.md.)
    if (!onClusterOfOne) assert.equal((await gitOk(['count-objects', '-v'], { cwd: forkDir })).match(/^size-pack: (\d+)/m)?.[1], '0');
    assert.equal((await gitOk(['symbolic-ref', 'HEAD'], { cwd: forkDir })).trim(), 'refs/heads/main');
  });

  it('forks a source whose default branch is not main, keeping that default branch', async () => {
    const url = await grove.createRepo('acme', 'trunk-src', 'trunk');
    const local = dir('trunk-src');
    await gitOk(['init', '-q', '-b', 'trunk', local]);
    await commitFile(local, 'a.txt', 'a\n', 'on trunk');
    await gitOk([...auth(grove.token), 'push', '-q', url, 'trunk'], { cwd: local });
    const fork = await grove.sdk.repos.fork('acme', 'trunk-fork', 'acme/trunk-src');
    assert.equal(fork.defaultBranch, 'trunk');
    const cloned = dir('trunk-clone');
    await gitOk([...auth(grove.token), 'clone', '-q', fork.cloneUrl, cloned]);
    assert.equal((await gitOk(['symbolic-ref', 'HEAD'], { cwd: cloned })).trim(), 'refs/heads/trunk');
    assert.equal(await readFile(path.join(cloned, 'a.txt'), 'utf8'), 'a\n');
  });

  it('keeps a fork and its source independent: pushes, API commits and merges on one do not change the other', async () => {
    const local = await historySource('indep');
    const fork = await grove.sdk.repos.fork('acme', 'indep-fork', 'acme/indep');
    const sourceMain = (await head('acme', 'indep'))!;

    // A git push to the fork.
    const forkPushed = await commitFile(local, 'fork-only.txt', 'fork\n', 'on the fork');
    await gitOk([...auth(grove.token), 'push', '-q', fork.cloneUrl, 'HEAD:main'], { cwd: local });
    assert.equal(await head('acme', 'indep-fork'), forkPushed);
    assert.equal(await head('acme', 'indep'), sourceMain, 'the source did not move');

    // A git push to the source.
    await gitOk(['reset', '-q', '--hard', sourceMain], { cwd: local });
    const sourcePushed = await commitFile(local, 'source-only.txt', 'source\n', 'on the source');
    await gitOk([...auth(grove.token), 'push', '-q', urlOf('acme', 'indep'), 'HEAD:main'], { cwd: local });
    assert.equal(await head('acme', 'indep'), sourcePushed);
    assert.equal(await head('acme', 'indep-fork'), forkPushed, 'the fork did not move');

    // Commits and merges by API on the fork (objects built over the borrowed ones).
    const commit = await grove.sdk.commits.create('acme', 'indep-fork', { branch: 'agent', startFrom: 'main', message: 'api on fork', files: [{ path: 'api.txt', content: 'api\n' }] });
    const merged = await grove.sdk.merges.merge('acme', 'indep-fork', { base: 'main', head: 'agent', strategy: 'fast-forward' });
    assert.equal(merged.sha, commit.sha);
    assert.equal(await head('acme', 'indep-fork'), commit.sha);
    assert.equal(await head('acme', 'indep'), sourcePushed);
    assert.equal(await head('acme', 'indep', 'agent'), undefined);

    const forkClone = dir('indep-fork-clone');
    await gitOk([...auth(grove.token), 'clone', '-q', fork.cloneUrl, forkClone]);
    assert.ok(existsSync(path.join(forkClone, 'fork-only.txt')));
    assert.ok(existsSync(path.join(forkClone, 'api.txt')));
    assert.ok(!existsSync(path.join(forkClone, 'source-only.txt')));
    await gitOk(['fsck', '--strict'], { cwd: forkClone });
    const sourceClone = dir('indep-clone');
    await gitOk([...auth(grove.token), 'clone', '-q', urlOf('acme', 'indep'), sourceClone]);
    assert.ok(existsSync(path.join(sourceClone, 'source-only.txt')));
    assert.ok(!existsSync(path.join(sourceClone, 'fork-only.txt')));
    assert.ok(!existsSync(path.join(sourceClone, 'api.txt')));
    // The source cannot see the fork's objects.
    assert.notEqual((await git(['cat-file', '-e', commit.sha], { cwd: await gitDirOf('acme', 'indep') })).code, 0);
  });

  it('refuses a fork across orgs with 422, hides a source the key cannot read with 404, and checks the request', async () => {
    await grove.createRepo('acme', 'guarded');
    const cross = await api(grove, 'POST', '/orgs/beta/repos', { name: 'stolen', from: 'acme/guarded' });
    assertError(cross, 422, 'unprocessable');
    assert.match(cross.json.error.message, /within one org/);

    const betaAdmin = (await grove.sdk.apiKeys.create({ scope: 'admin', resources: [{ org: 'beta' }] })).token;
    const hidden = await api(grove, 'POST', '/orgs/beta/repos', { name: 'stolen', from: 'acme/guarded' }, betaAdmin);
    assertError(hidden, 404, 'not_found');
    assert.equal(hidden.json.error.message, 'repository acme/guarded not found');
    const missing = await api(grove, 'POST', '/orgs/beta/repos', { name: 'stolen', from: 'acme/does-not-exist' }, betaAdmin);
    assert.deepEqual(missing.json, { error: { code: 'not_found', message: 'repository acme/does-not-exist not found' } }, 'a hidden repository and a missing one look the same');
    const readsBoth = (await grove.sdk.apiKeys.create({ scope: 'admin', resources: [{ org: 'beta' }, { org: 'acme', repo: 'guarded' }] })).token;
    assertError(await api(grove, 'POST', '/orgs/beta/repos', { name: 'stolen', from: 'acme/guarded' }, readsBoth), 422, 'unprocessable');

    const acmeWriter = (await grove.sdk.apiKeys.create({ scope: 'write', resources: [{ org: 'acme' }] })).token;
    assertError(await api(grove, 'POST', '/orgs/acme/repos', { name: 'w-fork', from: 'acme/guarded' }, acmeWriter), 403, 'forbidden');
    assertError(await api(grove, 'POST', '/orgs/acme/repos', { name: 'x-fork', from: 'acme/nope' }), 404, 'not_found');
    assertError(await api(grove, 'POST', '/orgs/acme/repos', { name: 'x-fork', from: 'guarded' }), 400, 'invalid_request');
    assertError(await api(grove, 'POST', '/orgs/acme/repos', { name: 'x-fork', snapshot: true }), 400, 'invalid_request');
    assertError(await api(grove, 'POST', '/orgs/acme/repos', { name: 'guarded', from: 'acme/guarded' }), 409, 'already_exists');
    await assert.rejects(grove.sdk.repos.fork('beta', 'stolen', 'acme/guarded'), (error: unknown) => error instanceof GroveApiError && error.status === 422);
    const betaRepos = await grove.sdk.repos.list('beta');
    assert.deepEqual(betaRepos.items.map((r) => r.name), []);
    const acmeAdmin = (await grove.sdk.apiKeys.create({ scope: 'admin', resources: [{ org: 'acme' }] })).token;
    const ok = await api(grove, 'POST', '/orgs/acme/repos', { name: 'admin-fork', from: 'acme/guarded' }, acmeAdmin);
    assert.equal(ok.status, 201, ok.text);
  });

  it('makes a snapshot: one root commit whose tree is the source HEAD tree, and no other refs', async () => {
    await historySource('snap-src');
    const snap = await grove.sdk.repos.fork('acme', 'snap', 'acme/snap-src', { snapshot: true });
    const sourceHead = (await head('acme', 'snap-src'))!;
    const sourceDir = await gitDirOf('acme', 'snap-src');
    const sourceTree = (await gitOk(['rev-parse', `${sourceHead}^{tree}`], { cwd: sourceDir })).trim();

    const refs = (await lsRemote('acme', 'snap')).trim().split('\n').map((l) => l.split('\t')[1]);
    assert.deepEqual(refs, ['HEAD', 'refs/heads/main']);
    const cloned = dir('snap-clone');
    await gitOk([...auth(grove.token), 'clone', '-q', snap.cloneUrl, cloned]);
    assert.equal((await gitOk(['rev-list', '--count', 'HEAD'], { cwd: cloned })).trim(), '1');
    assert.equal((await gitOk(['log', '-1', '--format=%P'], { cwd: cloned })).trim(), '', 'a root commit');
    assert.equal((await gitOk(['rev-parse', 'HEAD^{tree}'], { cwd: cloned })).trim(), sourceTree);
    assert.notEqual((await gitOk(['rev-parse', 'HEAD'], { cwd: cloned })).trim(), sourceHead);
    await gitOk(['fsck', '--strict'], { cwd: cloned });

    // An empty source gives an empty snapshot.
    await grove.createRepo('acme', 'empty-src');
    const emptySnap = await grove.sdk.repos.fork('acme', 'empty-snap', 'acme/empty-src', { snapshot: true });
    assert.equal((await lsRemote('acme', 'empty-snap')).trim(), '');
    assert.equal(emptySnap.defaultBranch, 'main');
  });

  it('deletes a repository with a ttl (and an ephemeral fork) on the first sweep after expiry: 404, and its directory is gone', async () => {
    await historySource('ttl-src');
    const ephemeral = await grove.sdk.repos.create('acme', { name: 'ephemeral', ttl: '1s' });
    const ephemeralFork = await grove.sdk.repos.fork('acme', 'ephemeral-fork', 'acme/ttl-src', { ttl: 1 });
    const lasting = await grove.sdk.repos.create('acme', { name: 'lasting', ttl: '1h' });
    for (const repo of [ephemeral, ephemeralFork]) {
      assert.ok(repo.expiresAt !== null);
      assert.ok(Math.abs(Date.parse(repo.expiresAt) - (Date.now() + 1000)) < 1500, repo.expiresAt);
    }
    const dirs = [grove.server.repos.gitDir(ephemeral.id), grove.server.repos.gitDir(ephemeralFork.id)];
    await grove.server.sweep();
    assert.equal((await api(grove, 'GET', '/repos/acme/ephemeral')).status, 200, 'not expired yet');
    assert.ok(dirs.every((d) => existsSync(d)));

    await delay(Math.max(Date.parse(ephemeral.expiresAt!), Date.parse(ephemeralFork.expiresAt!)) - Date.now() + 100);
    await grove.server.sweep();
    assertError(await api(grove, 'GET', '/repos/acme/ephemeral'), 404, 'not_found');
    assertError(await api(grove, 'GET', '/repos/acme/ephemeral-fork'), 404, 'not_found');
    for (const d of dirs) assert.equal(existsSync(d), false, `${d} still exists`);
    const result = await git([...auth(grove.token), 'ls-remote', urlOf('acme', 'ephemeral')]);
    assert.notEqual(result.code, 0);
    assert.equal((await api(grove, 'GET', '/repos/acme/lasting')).status, 200);
    assert.ok(existsSync(grove.server.repos.gitDir(lasting.id)));
    // The source of the expired fork is untouched.
    await gitOk(['fsck', '--strict'], { cwd: await gitDirOf('acme', 'ttl-src') });
    assertError(await api(grove, 'POST', '/orgs/acme/repos', { name: 'bad-ttl', ttl: 'soon' }), 400, 'invalid_request');
  });

  it('deletes expired repositories and branches with the background sweeper, without an explicit sweep', async () => {
    const busy = await startTestServer({ GROVE_SWEEP_INTERVAL_MS: '200' });
    try {
      await busy.createRepo('acme', 'keeper');
      const root = await busy.sdk.commits.create('acme', 'keeper', { branch: 'main', message: 'root', files: [{ path: 'a.txt', content: 'a\n' }] });
      await busy.sdk.branches.create('acme', 'keeper', { name: 'short-lived', sha: root.sha, ttl: 1 });
      const ephemeral = await busy.sdk.repos.create('acme', { name: 'short-lived', ttl: 1 });
      const deadline = Date.now() + 10_000;
      let repoGone = false;
      let branchGone = false;
      while (Date.now() < deadline && !(repoGone && branchGone)) {
        await delay(200);
        repoGone = (await api(busy, 'GET', '/repos/acme/short-lived')).status === 404;
        branchGone = (await api(busy, 'GET', '/repos/acme/keeper/branches/short-lived')).status === 404;
      }
      assert.ok(repoGone, 'the expired repository is still there after 10 s');
      assert.ok(branchGone, 'the expired branch is still there after 10 s');
      assert.equal(existsSync(busy.server.repos.gitDir(ephemeral.id)), false);
      assert.equal((await busy.sdk.branches.get('acme', 'keeper', 'main')).sha, root.sha);
    } finally {
      await busy.close();
    }
  });

  it('keeps a fork whole when its source is deleted: fsck is clean and objects/info/alternates is gone', async () => {
    const local = await historySource('doomed');
    const fork = await grove.sdk.repos.fork('acme', 'survivor', 'acme/doomed');
    const snapshot = await grove.sdk.repos.fork('acme', 'survivor-snap', 'acme/doomed', { snapshot: true });
    const extra = await commitFile(local, 'after-fork.txt', 'after\n', 'pushed to the fork after forking');
    await gitOk([...auth(grove.token), 'push', '-q', fork.cloneUrl, 'HEAD:refs/heads/after'], { cwd: local });
    const refsBefore = await lsRemote('acme', 'survivor');
    const snapBefore = await lsRemote('acme', 'survivor-snap');

    await grove.sdk.repos.delete('acme', 'doomed');
    assertError(await api(grove, 'GET', '/repos/acme/doomed'), 404, 'not_found');

    for (const [name, repo] of [['survivor', fork], ['survivor-snap', snapshot]] as const) {
      const forkDir = grove.server.repos.gitDir(repo.id);
      assert.equal(existsSync(path.join(forkDir, 'objects/info/alternates')), false, `${name}: alternates still there`);
      const fsck = await git(['fsck', '--strict', '--full'], { cwd: forkDir });
      assert.equal(fsck.code, 0, `${name}: ${fsck.stderr}`);
      assert.doesNotMatch(fsck.stdout + fsck.stderr, /missing|broken|error/i, name);
      assert.equal((await grove.sdk.repos.get('acme', name)).forkOf, null);
    }
    assert.equal(await lsRemote('acme', 'survivor'), refsBefore);
    assert.equal(await lsRemote('acme', 'survivor-snap'), snapBefore);
    const cloned = dir('survivor-clone');
    await gitOk([...auth(grove.token), 'clone', '-q', '--mirror', fork.cloneUrl, cloned]);
    await gitOk(['fsck', '--strict'], { cwd: cloned });
    assert.equal((await gitOk(['rev-parse', 'refs/heads/after'], { cwd: cloned })).trim(), extra);
    // The survivor still takes writes.
    const more = await grove.sdk.commits.create('acme', 'survivor', { branch: 'main', message: 'still alive', files: [{ path: 'alive.txt', content: 'yes\n' }] });
    assert.equal(await head('acme', 'survivor'), more.sha);
  });

  // Regression: deleting a source used to dissociate only its direct forks, with `git repack -a -d`,
  // which drops the fork's own packed objects that its refs no longer reach; a fork of that fork
  // still borrowing them through objects/info/alternates was left with missing objects.
  it('keeps a fork of a fork whole when the middle fork had deleted a branch the outer fork still has', async () => {
    const local = await historySource('chain-a');
    const b = await grove.sdk.repos.fork('acme', 'chain-b', 'acme/chain-a');
    const side = await commitFile(local, 'side.txt', randomBytes(2048).toString('hex'), 'only on chain-b');
    await gitOk([...auth(grove.token), 'push', '-q', b.cloneUrl, 'HEAD:refs/heads/side'], { cwd: local });
    const c = await grove.sdk.repos.fork('acme', 'chain-c', 'acme/chain-b');
    assert.equal(await head('acme', 'chain-c', 'side'), side);
    await grove.sdk.branches.delete('acme', 'chain-b', 'side');
    const before = await git(['fsck', '--strict'], { cwd: grove.server.repos.gitDir(c.id) });
    assert.equal(before.code, 0, `chain-c is whole before chain-a is deleted: ${before.stderr}`);

    await grove.sdk.repos.delete('acme', 'chain-a');
    const fsckB = await git(['fsck', '--strict'], { cwd: grove.server.repos.gitDir(b.id) });
    assert.equal(fsckB.code, 0, `chain-b: ${fsckB.stderr}`);
    const fsckC = await git(['fsck', '--strict'], { cwd: grove.server.repos.gitDir(c.id) });
    assert.equal(fsckC.code, 0, `chain-c is broken:\n${fsckC.stdout}${fsckC.stderr}`);
    const cloned = dir('chain-c-clone');
    const result = await git([...auth(grove.token), 'clone', '-q', '--mirror', c.cloneUrl, cloned]);
    assert.equal(result.code, 0, result.stderr);
  });

  // Regression: maintenance with --write-midx --write-bitmap-index used to fail on every fork (its
  // packs lack closure: git 2.39.5 could not write the bitmap, or crashed with no packs of its own).
  it('maintains a fork like any repository: its push packs are rolled up and it stays whole', async () => {
    const local = await historySource('maint-src');
    const fork = await grove.sdk.repos.fork('acme', 'maint-fork', 'acme/maint-src');
    const forkDir = grove.server.repos.gitDir(fork.id);
    const untouched = await grove.server.repos.maintenance.run(forkDir);
    for (let i = 0; i < 4; i++) {
      await commitFile(local, `push-${i}.bin`, randomBytes(64 * 1024), `push ${i} to the fork`);
      await gitOk([...auth(grove.token), 'push', '-q', fork.cloneUrl, 'HEAD:main'], { cwd: local });
    }
    const packs = async () => (await readdir(path.join(forkDir, 'objects/pack'))).filter((f) => f.endsWith('.pack')).length;
    const before = await packs();
    const failuresBefore = grove.server.repos.maintenance.stats.failures;
    const pushed = await grove.server.repos.maintenance.run(forkDir);
    const fsck = await git(['fsck', '--strict', '--no-dangling'], { cwd: forkDir });
    assert.equal(fsck.code, 0, fsck.stderr);
    const cloned = dir('maint-fork-clone');
    await gitOk([...auth(grove.token), 'clone', '-q', fork.cloneUrl, cloned]);
    assert.ok(existsSync(path.join(cloned, 'push-3.bin')));
    const problems: string[] = [];
    if (!untouched) problems.push('maintenance of a fork with no packs of its own failed');
    if (!pushed) problems.push(`maintenance of a fork with ${before} push packs failed (failures: ${failuresBefore} -> ${grove.server.repos.maintenance.stats.failures})`);
    if ((await packs()) >= before) problems.push(`still ${await packs()} packs (was ${before})`);
    const files = await readdir(path.join(forkDir, 'objects/pack'));
    if (!files.includes('multi-pack-index')) problems.push(`no multi-pack-index: [${files.join(', ')}]`);
    assert.deepEqual(problems, []);
  });

  describe('fork time does not depend on the size of the source', { skip: onClusterOfOne ? 'a cluster fork publishes a copy of the objects, so its time grows with the source (docs/scale-out.md, "left")' : false }, () => {
    const SIZE = 100 * 1024 * 1024;
    const FILES = 4;

    before(async () => {
      // ~100 MB of incompressible blobs, written as one pack by git fast-import, then pushed. The
      // options keep it to a few seconds: no zlib effort, no delta search between big blobs
      // (bigFileThreshold), and a pack rather than loose objects (unpackLimit).
      const local = dir('big-src');
      await gitOk(['init', '-q', '-b', 'main', local]);
      const chunks: Buffer[] = [];
      for (let i = 0; i < FILES; i++) {
        const data = randomBytes(SIZE / FILES);
        chunks.push(Buffer.from(`blob\nmark :${i + 1}\ndata ${data.length}\n`), data, Buffer.from('\n'));
      }
      const message = 'about 100 MB of random data';
      chunks.push(Buffer.from(`commit refs/heads/main\ncommitter Agent Seven <agent7@example.com> 1700000000 +0000\ndata ${message.length}\n${message}\n`));
      for (let i = 0; i < FILES; i++) chunks.push(Buffer.from(`M 100644 :${i + 1} big/${i}.bin\n`));
      chunks.push(Buffer.from('\n'));
      await gitOk(['-c', 'core.compression=0', '-c', 'pack.compression=0', '-c', 'core.bigFileThreshold=1m', '-c', 'fastimport.unpackLimit=1', 'fast-import', '--quiet'], { cwd: local, input: Buffer.concat(chunks) });
      const url = await grove.createRepo('acme', 'big');
      await gitOk([...auth(grove.token), '-c', 'pack.compression=0', 'push', '-q', url, 'main'], { cwd: local });
      await grove.createRepo('acme', 'tiny');
    });

    it('forks a ~100 MB repository in about the time it takes to fork an empty one', { timeout: 90_000 }, async () => {
      const bigDir = await gitDirOf('acme', 'big');
      assert.ok(await duBytes(bigDir) >= SIZE, 'the source really holds ~100 MB');

      const time = async (source: string, name: string) => {
        const start = performance.now();
        const answer = await api(grove, 'POST', '/orgs/acme/repos', { name, from: `acme/${source}` });
        const elapsed = performance.now() - start;
        assert.equal(answer.status, 201, answer.text);
        return elapsed;
      };
      // Warm-up, then interleaved rounds so drift in machine load hits both series alike.
      await time('tiny', 'tiny-warm');
      await time('big', 'big-warm');
      const tiny: number[] = [];
      const big: number[] = [];
      for (let i = 0; i < 5; i++) {
        tiny.push(await time('tiny', `tiny-fork-${i}`));
        big.push(await time('big', `big-fork-${i}`));
      }
      // Not an absolute timing assertion: a ratio of medians, with slack (3x + 50 ms) for a noisy
      // 2-core machine. Copying 100 MB would take far longer than that on any disk.
      const message = `big ${big.map((t) => t.toFixed(1)).join(', ')} ms; empty ${tiny.map((t) => t.toFixed(1)).join(', ')} ms`;
      assert.ok(median(big) < 3 * median(tiny) + 50, message);

      // The fork is complete and shares the objects instead of copying them.
      const forkDir = await gitDirOf('acme', 'big-fork-0');
      assert.ok(await duBytes(forkDir) < 1024 * 1024, `the fork holds ${await duBytes(forkDir)} bytes`);
      assert.equal(await lsRemote('acme', 'big-fork-0'), await lsRemote('acme', 'big'));
      for (let i = 0; i < FILES; i++) {
        assert.equal((await gitOk(['cat-file', '-s', `main:big/${i}.bin`], { cwd: forkDir })).trim(), String(SIZE / FILES));
      }
      await gitOk(['fsck', '--connectivity-only'], { cwd: forkDir });
    });
  });
});
