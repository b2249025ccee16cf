import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git as gitCli, gitOk, initWorkRepo } from './helpers/git.ts';

const author = { name: 'Iso Agent', email: 'iso@example.com', timestamp: 1_700_000_000, timezoneOffset: 0 };

describe('isomorphic-git as a second git client', () => {
  let grove: TestServer;
  let work: string;
  let url: string;
  /** The commits the git CLI pushed to main, newest first. */
  let cliCommits: string[];
  /** The commit the annotated tag v0.1 points at. */
  let tagged: string;
  const onAuth = () => ({ username: 'x', password: grove.token });

  before(async () => {
    grove = await startTestServer();
    work = await mkdtemp(path.join(os.tmpdir(), 'grove-iso-'));
    url = await grove.createRepo('acme', 'shared');
    const source = path.join(work, 'cli-source');
    await initWorkRepo(source);
    const first = await commitFile(source, 'README.md', '# shared\n', 'add readme');
    const second = await commitFile(source, 'src/index.js', 'export const answer = 42;\n', 'add index');
    await gitOk(['tag', '-a', 'v0.1', '-m', 'first release'], { cwd: source });
    cliCommits = [second, first];
    tagged = second;
    await gitOk([...auth(grove.token), 'push', url, 'main', 'v0.1'], { cwd: source });
  });
  after(async () => {
    await grove.close();
    await rm(work, { recursive: true, force: true });
  });

  /** The ref's oid on the server according to the git CLI, or null when it does not exist. */
  async function serverRef(ref: string, repoUrl = url): Promise<string | null> {
    const out = await gitOk([...auth(grove.token), 'ls-remote', repoUrl, ref]);
    const line = out.split('\n').find((l) => l.endsWith(`\t${ref}`));
    return line ? line.split('\t')[0]! : null;
  }

  it('clones a repository the git CLI pushed, with its files, log and tags', async () => {
    const dir = path.join(work, 'iso-clone');
    await git.clone({ fs, http, dir, url, onAuth });
    assert.equal(await readFile(path.join(dir, 'README.md'), 'utf8'), '# shared\n');
    assert.equal(await readFile(path.join(dir, 'src/index.js'), 'utf8'), 'export const answer = 42;\n');
    const log = await git.log({ fs, dir });
    assert.deepEqual(log.map((entry) => entry.oid), cliCommits);
    assert.deepEqual(log.map((entry) => entry.commit.message), ['add index\n', 'add readme\n']);
    assert.equal(log[0]!.commit.author.name, 'Agent Seven');
    assert.equal(await git.currentBranch({ fs, dir }), 'main');
    assert.deepEqual(await git.listTags({ fs, dir }), ['v0.1']);
    assert.equal(await git.resolveRef({ fs, dir, ref: 'refs/remotes/origin/main' }), cliCommits[0]);
  });

  it('commits a new file and pushes it with Basic credentials from onAuth; the git CLI sees the commit', async () => {
    const dir = path.join(work, 'iso-push-basic');
    await git.clone({ fs, http, dir, url, onAuth });
    await writeFile(path.join(dir, 'from-iso.txt'), 'written by isomorphic-git\n');
    await git.add({ fs, dir, filepath: 'from-iso.txt' });
    const oid = await git.commit({ fs, dir, message: 'commit from isomorphic-git', author });
    const result = await git.push({ fs, http, dir, remote: 'origin', ref: 'main', onAuth });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.refs['refs/heads/main']?.ok, true, JSON.stringify(result.refs));
    assert.equal(await serverRef('refs/heads/main'), oid);

    const clone = path.join(work, 'cli-after-iso-push');
    await gitOk([...auth(grove.token), 'clone', '-q', url, clone]);
    assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: clone })).trim(), oid);
    assert.equal((await gitOk(['log', '-1', '--format=%s|%an|%P'], { cwd: clone })).trim(), `commit from isomorphic-git|Iso Agent|${cliCommits[0]}`);
    assert.equal(await readFile(path.join(clone, 'from-iso.txt'), 'utf8'), 'written by isomorphic-git\n');
    await gitOk(['fsck', '--strict'], { cwd: clone });
    cliCommits.unshift(oid);
  });

  it('pushes with an Authorization: Bearer header instead of onAuth', async () => {
    const headers = { authorization: `Bearer ${grove.token}` };
    const dir = path.join(work, 'iso-push-bearer');
    await git.clone({ fs, http, dir, url, headers });
    await writeFile(path.join(dir, 'bearer.txt'), 'bearer\n');
    await git.add({ fs, dir, filepath: 'bearer.txt' });
    const oid = await git.commit({ fs, dir, message: 'pushed with a bearer header', author });
    const result = await git.push({ fs, http, dir, remote: 'origin', ref: 'main', headers });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(await serverRef('refs/heads/main'), oid);
    cliCommits.unshift(oid);
  });

  it('pushes a new branch, which the git CLI can then check out', async () => {
    const dir = path.join(work, 'iso-branch');
    await git.clone({ fs, http, dir, url, onAuth });
    await git.branch({ fs, dir, ref: 'iso/feature', checkout: true });
    await writeFile(path.join(dir, 'feature.txt'), 'feature work\n');
    await git.add({ fs, dir, filepath: 'feature.txt' });
    const oid = await git.commit({ fs, dir, message: 'feature from isomorphic-git', author });
    const result = await git.push({ fs, http, dir, remote: 'origin', ref: 'iso/feature', onAuth });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(await serverRef('refs/heads/iso/feature'), oid);
    assert.equal(await serverRef('refs/heads/main'), cliCommits[0]);

    const clone = path.join(work, 'cli-feature');
    await gitOk([...auth(grove.token), 'clone', '-q', '--branch', 'iso/feature', url, clone]);
    assert.equal(await readFile(path.join(clone, 'feature.txt'), 'utf8'), 'feature work\n');
  });

  it('deletes a remote branch with push --delete', async () => {
    const dir = path.join(work, 'iso-delete');
    await git.clone({ fs, http, dir, url, onAuth, noCheckout: true });
    await git.branch({ fs, dir, ref: 'throwaway' });
    assert.equal((await git.push({ fs, http, dir, remote: 'origin', ref: 'throwaway', onAuth })).ok, true);
    assert.equal(await serverRef('refs/heads/throwaway'), cliCommits[0]);
    const result = await git.push({ fs, http, dir, remote: 'origin', remoteRef: 'throwaway', delete: true, onAuth });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(await serverRef('refs/heads/throwaway'), null);
  });

  it('is refused a non-fast-forward push, leaving the branch as it was', async () => {
    const dir = path.join(work, 'iso-stale');
    await git.clone({ fs, http, dir, url, onAuth, depth: 1, singleBranch: true });
    // rewrite main from its parent so that the server's main is not an ancestor
    await writeFile(path.join(dir, 'diverged.txt'), 'diverged\n');
    await git.add({ fs, dir, filepath: 'diverged.txt' });
    await git.commit({ fs, dir, message: 'diverging commit', author, parent: [] });
    await assert.rejects(git.push({ fs, http, dir, remote: 'origin', ref: 'main', onAuth }), /not a simple fast-forward|PushRejectedError/);
    assert.equal(await serverRef('refs/heads/main'), cliCommits[0]);
  });

  it('fetches the commits the git CLI pushed after the clone', async () => {
    const dir = path.join(work, 'iso-fetch');
    await git.clone({ fs, http, dir, url, onAuth });
    const before = await git.resolveRef({ fs, dir, ref: 'refs/remotes/origin/main' });
    assert.equal(before, cliCommits[0]);

    const cli = path.join(work, 'cli-more');
    await gitOk([...auth(grove.token), 'clone', '-q', url, cli]);
    const next = await commitFile(cli, 'more/one.txt', 'one\n', 'more one');
    const last = await commitFile(cli, 'more/two.txt', 'two\n', 'more two');
    await gitOk([...auth(grove.token), 'push', 'origin', 'main'], { cwd: cli });

    const fetched = await git.fetch({ fs, http, dir, remote: 'origin', ref: 'main', singleBranch: true, onAuth });
    assert.equal(fetched.fetchHead, last);
    assert.equal(await git.resolveRef({ fs, dir, ref: 'refs/remotes/origin/main' }), last);
    const log = await git.log({ fs, dir, ref: 'refs/remotes/origin/main', depth: 3 });
    assert.deepEqual(log.map((entry) => entry.oid), [last, next, before]);
    const blob = await git.readBlob({ fs, dir, oid: last, filepath: 'more/two.txt' });
    assert.equal(Buffer.from(blob.blob).toString('utf8'), 'two\n');
    cliCommits.unshift(next);
    cliCommits.unshift(last);
  });

  it('lists the refs with listServerRefs over protocol v2, with HEAD\'s target and peeled tags', async () => {
    const refs = await git.listServerRefs({ http, url, onAuth, protocolVersion: 2, symrefs: true, peelTags: true });
    const byName = new Map(refs.map((r) => [r.ref, r]));
    assert.equal(byName.get('HEAD')?.target, 'refs/heads/main');
    assert.equal(byName.get('HEAD')?.oid, cliCommits[0]);
    assert.equal(byName.get('refs/heads/main')?.oid, cliCommits[0]);
    assert.ok(byName.has('refs/heads/iso/feature'));
    const tag = byName.get('refs/tags/v0.1');
    assert.ok(tag, JSON.stringify(refs));
    assert.notEqual(tag.oid, tag.peeled, 'v0.1 is an annotated tag: its oid is the tag object');
    assert.equal(tag.peeled, tagged, 'v0.1 peels to the commit it tagged');

    const heads = await git.listServerRefs({ http, url, onAuth, protocolVersion: 2, prefix: 'refs/heads/' });
    assert.deepEqual(heads.map((r) => r.ref).sort(), ['refs/heads/iso/feature', 'refs/heads/main']);
  });

  it('lists the same refs with listServerRefs over protocol v1', async () => {
    const v1 = await git.listServerRefs({ http, url, onAuth, protocolVersion: 1 });
    const v2 = await git.listServerRefs({ http, url, onAuth, protocolVersion: 2 });
    const key = (r: { ref: string; oid: string }) => `${r.oid} ${r.ref}`;
    assert.deepEqual(v1.map(key).sort(), v2.map(key).sort());
  });

  it('reports protocol v2 with ls-refs and fetch from getRemoteInfo2, and the refs over v1', async () => {
    const v2 = await git.getRemoteInfo2({ http, url, onAuth, protocolVersion: 2 });
    assert.equal(v2.protocolVersion, 2);
    assert.ok('ls-refs' in v2.capabilities, JSON.stringify(v2.capabilities));
    assert.ok('fetch' in v2.capabilities, JSON.stringify(v2.capabilities));
    const v1 = await git.getRemoteInfo2({ http, url, onAuth, protocolVersion: 1 });
    assert.equal(v1.protocolVersion, 1);
    assert.ok(v1.refs?.some((r) => r.ref === 'refs/heads/main' && r.oid === cliCommits[0]), JSON.stringify(v1.refs));
    const push = await git.getRemoteInfo2({ http, url, onAuth, forPush: true });
    assert.equal(push.protocolVersion, 1);
    assert.ok('report-status' in push.capabilities, JSON.stringify(push.capabilities));
  });

  it('fails with HTTP 401 for a wrong token and 404 for an unknown repository', async () => {
    const httpStatus = (status: number) => (error: { code?: string; data?: { statusCode?: number } }) => {
      assert.equal(error.code, 'HttpError');
      assert.equal(error.data?.statusCode, status);
      return true;
    };
    await assert.rejects(git.getRemoteInfo2({ http, url, headers: { authorization: 'Bearer wrong-token' } }), httpStatus(401));
    await assert.rejects(git.getRemoteInfo2({ http, url, onAuth: () => ({ username: 'x', password: 'wrong-token' }) }), httpStatus(401));
    await assert.rejects(git.listServerRefs({ http, url: `${grove.url}/acme/missing.git`, onAuth, protocolVersion: 2 }), httpStatus(404));
  });

  it('asks onAuth after a 401 challenge and calls onAuthFailure once when the token is refused', async () => {
    let asked = 0;
    let failures = 0;
    await assert.rejects(
      git.getRemoteInfo2({
        http,
        url,
        onAuth: () => {
          asked++;
          return { username: 'x', password: 'wrong-token' };
        },
        onAuthFailure: () => {
          failures++;
          return { cancel: true };
        },
      }),
      { code: 'UserCanceledError' },
    );
    assert.equal(asked, 1);
    assert.equal(failures, 1);
  });

  it('clones an empty repository and pushes its first commit to main', async () => {
    const emptyUrl = await grove.createRepo('acme', 'iso-empty');
    const dir = path.join(work, 'iso-empty');
    await git.clone({ fs, http, dir, url: emptyUrl, onAuth });
    // A v0 advertisement of an empty repository names no HEAD target, so isomorphic-git
    // falls back to its own initial branch; push it to main explicitly.
    const local = await git.currentBranch({ fs, dir });
    assert.ok(local);
    await writeFile(path.join(dir, 'first.txt'), 'first\n');
    await git.add({ fs, dir, filepath: 'first.txt' });
    const oid = await git.commit({ fs, dir, message: 'first commit', author });
    const result = await git.push({ fs, http, dir, url: emptyUrl, ref: local, remoteRef: 'main', onAuth });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(await serverRef('refs/heads/main', emptyUrl), oid);
    const check = await gitCli([...auth(grove.token), 'clone', '-q', emptyUrl, path.join(work, 'cli-empty')]);
    assert.equal(check.code, 0, check.stderr);
    assert.equal(await readFile(path.join(work, 'cli-empty', 'first.txt'), 'utf8'), 'first\n');
  });
});
