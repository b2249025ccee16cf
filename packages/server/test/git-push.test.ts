import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { onClusterOfOne } from './helpers/database.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir, type GitRun } from './helpers/git.ts';

/** `git ls-remote` output as `refname -> oid` (HEAD included). */
function parseLsRemote(stdout: string): Record<string, string> {
  const refs: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const [oid, name] = line.split('\t') as [string, string];
    refs[name] = oid;
  }
  return refs;
}

/** The lines of a push's stderr that report one ref (` * [new branch] …`, ` ! [remote rejected] …`). */
function refLines(result: GitRun): string[] {
  return result.stderr.split('\n').filter((line) => /^ [ *+\-!=] /.test(line));
}

/** A push that failed because a ref was refused, not because the transport broke. */
function assertRejectedCleanly(result: GitRun, message: string): void {
  assert.notEqual(result.code, 0, message);
  assert.match(result.stderr, /! \[(remote )?rejected\]/, `${message}\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /fatal:|hung up|RPC failed|remote failure|bad band/, `${message}\n${result.stderr}`);
}

describe('git push over smart HTTP', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let counter = 0;
  /** Every repository pushed to in this suite, for the final fsck. */
  const pushedUrls: string[] = [];

  const dir = (name: string) => path.join(work.path, `${name}-${++counter}`);
  const push = (cwd: string, args: readonly string[], env: Record<string, string> = {}) =>
    git([...auth(grove.token), 'push', ...args], { cwd, env });

  async function lsRemote(url: string): Promise<Record<string, string>> {
    return parseLsRemote(await gitOk([...auth(grove.token), 'ls-remote', url]));
  }

  async function head(cwd: string, rev = 'HEAD'): Promise<string> {
    return (await gitOk(['rev-parse', rev], { cwd })).trim();
  }

  /** A new server repository and a work repository with `commits` commits on main, pushed to it as origin. */
  async function seeded(name: string, commits = 3): Promise<{ url: string; repo: string }> {
    const url = await grove.createRepo('pushers', name);
    pushedUrls.push(url);
    const repo = dir(name);
    await initWorkRepo(repo);
    for (let i = 1; i <= commits; i++) await commitFile(repo, 'file.txt', `${name} ${i}\n`, `${name} commit ${i}`);
    await gitOk(['remote', 'add', 'origin', url], { cwd: repo });
    await gitOk([...auth(grove.token), 'push', '-q', '-u', 'origin', 'main'], { cwd: repo });
    return { url, repo };
  }

  /** Another work repository on the same history (a local clone), with origin pointing at the server. */
  async function sibling(repo: string, url: string, name: string): Promise<string> {
    const copy = dir(name);
    await gitOk(['clone', '-q', repo, copy]);
    await gitOk(['remote', 'set-url', 'origin', url], { cwd: copy });
    return copy;
  }

  before(async () => {
    grove = await startTestServer();
    work = await tempDir('grove-push-');
  });
  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  it('force-pushes a rewritten branch and moves the ref; a non-fast-forward push without --force is rejected by the client', async () => {
    const { url, repo } = await seeded('force');
    const original = await head(repo);
    await gitOk(['reset', '-q', '--hard', 'HEAD~1'], { cwd: repo });
    const rewritten = await commitFile(repo, 'rewritten.txt', 'rewritten\n', 'rewritten history');

    const refused = await push(repo, ['origin', 'main'], { GIT_TRACE_CURL: '1', GIT_TRACE_CURL_NO_DATA: '1' });
    assertRejectedCleanly(refused, 'a non-fast-forward push without --force');
    assert.match(refused.stderr, /! \[rejected\]\s+main -> main \(non-fast-forward\)/);
    // Refused by the client after the advertisement: only the GET reached the server.
    assert.match(refused.stderr, /=> Send header: GET \S+\/info\/refs\?service=git-receive-pack/);
    assert.doesNotMatch(refused.stderr, /=> Send header: POST/);
    assert.equal((await lsRemote(url))['refs/heads/main'], original);

    const forced = await push(repo, ['--force', 'origin', 'main']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stderr, new RegExp(`\\+ ${original.slice(0, 7)}\\.\\.\\.${rewritten.slice(0, 7)} main -> main \\(forced update\\)`));
    const refs = await lsRemote(url);
    assert.equal(refs['refs/heads/main'], rewritten);
    assert.equal(refs.HEAD, rewritten);
  });

  it('deletes a branch, reports a deleted branch that never existed as deleted, and refuses to delete the default branch', async () => {
    const { url, repo } = await seeded('delete');
    await gitOk([...auth(grove.token), 'push', '-q', 'origin', 'HEAD:refs/heads/feature'], { cwd: repo });
    assert.equal((await lsRemote(url))['refs/heads/feature'], await head(repo));

    const deleted = await push(repo, ['origin', ':feature']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual(refLines(deleted), [' - [deleted]         feature']);
    assert.equal((await lsRemote(url))['refs/heads/feature'], undefined);

    // `0{40} 0{40} refs/heads/never-existed` on the wire.
    const phantom = await push(repo, ['origin', ':refs/heads/never-existed']);
    assert.equal(phantom.code, 0, phantom.stderr);
    assert.deepEqual(refLines(phantom), [' - [deleted]         never-existed']);

    const main = await push(repo, ['origin', ':main']);
    assertRejectedCleanly(main, 'deleting the default branch');
    assert.deepEqual(refLines(main).length, 1);
    assert.match(refLines(main)[0]!, /^ ! \[remote rejected\] main \(.*current branch.*\)$/);
    const refs = await lsRemote(url);
    assert.equal(refs['refs/heads/main'], await head(repo));
    assert.equal(refs.HEAD, await head(repo));
  });

  it('pushes a lightweight and an annotated tag, then deletes both', async () => {
    const { url, repo } = await seeded('tags');
    await gitOk(['tag', 'light', 'HEAD~1'], { cwd: repo });
    await gitOk(['tag', '-a', 'v1.0', '-m', 'release 1.0'], { cwd: repo });
    const pushed = await push(repo, ['origin', 'light', 'v1.0']);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.deepEqual(refLines(pushed).sort(), [' * [new tag]         light -> light', ' * [new tag]         v1.0 -> v1.0']);
    const [lightOid, tagOid, commit] = (await gitOk(['rev-parse', 'HEAD~1', 'v1.0', 'HEAD'], { cwd: repo })).trim().split('\n');
    assert.notEqual(tagOid, commit, 'v1.0 is a tag object');
    let refs = await lsRemote(url);
    assert.equal(refs['refs/tags/light'], lightOid);
    assert.equal(refs['refs/tags/v1.0'], tagOid);
    assert.equal(refs['refs/tags/v1.0^{}'], commit);

    const deleted = await push(repo, ['--delete', 'origin', 'light', 'refs/tags/v1.0']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual(refLines(deleted).sort(), [' - [deleted]         light', ' - [deleted]         v1.0']);
    refs = await lsRemote(url);
    assert.deepEqual(Object.keys(refs).filter((name) => name.startsWith('refs/tags/')), []);
  });

  it('rejects a whole --atomic push when the server refuses one of its ref names, and nothing moves', async () => {
    const { url, repo } = await seeded('atomic-name');
    const before = await lsRemote(url);
    await commitFile(repo, 'atomic.txt', 'atomic\n', 'atomic change');
    const result = await push(repo, ['--atomic', 'origin', 'HEAD:main', 'HEAD:refs/heads/atomic-new', 'HEAD:refs/foo']);
    assertRejectedCleanly(result, 'an atomic push with a refused ref');
    assert.deepEqual(refLines(result).sort(), [
      ' ! [remote rejected] HEAD -> atomic-new (atomic push failure)',
      ' ! [remote rejected] HEAD -> main (atomic push failure)',
      ' ! [remote rejected] HEAD -> refs/foo (funny refname)',
    ]);
    assert.deepEqual(await lsRemote(url), before);
  });

  it('rejects a whole --atomic push when its ref transaction fails on the server, and nothing moves; without --atomic the other ref applies', async () => {
    const { url, repo } = await seeded('atomic-transaction');
    await gitOk([...auth(grove.token), 'push', '-q', 'origin', 'HEAD:refs/heads/dir'], { cwd: repo });
    const before = await lsRemote(url);
    const tip = await commitFile(repo, 'atomic.txt', 'atomic\n', 'atomic change');
    // refs/heads/dir/sub cannot exist beside refs/heads/dir: the client does not know, the transaction does.
    const atomic = await push(repo, ['--atomic', 'origin', 'HEAD:main', 'HEAD:refs/heads/dir/sub']);
    assertRejectedCleanly(atomic, 'an atomic push whose transaction fails');
    const lines = refLines(atomic);
    assert.equal(lines.length, 2, atomic.stderr);
    assert.ok(lines.every((line) => line.startsWith(' ! [remote rejected] ')), atomic.stderr);
    assert.deepEqual(await lsRemote(url), before);

    const separate = await push(repo, ['origin', 'HEAD:main', 'HEAD:refs/heads/dir/sub']);
    assert.notEqual(separate.code, 0);
    assert.match(separate.stderr, /! \[remote rejected\] HEAD -> dir\/sub \(.+\)/);
    assert.match(separate.stderr, new RegExp(`${before['refs/heads/main']!.slice(0, 7)}\\.\\.${tip.slice(0, 7)}\\s+HEAD -> main`));
    const after = await lsRemote(url);
    assert.equal(after['refs/heads/main'], tip);
    assert.equal(after['refs/heads/dir/sub'], undefined);
    assert.equal(after['refs/heads/dir'], before['refs/heads/dir']);
  });

  it('pushes 2,000 branches in one push, then deletes them all in one delete-only push', async () => {
    const { url, repo } = await seeded('bulk');
    const tip = await head(repo);
    const names = Array.from({ length: 2000 }, (_, i) => `refs/heads/bulk/b${String(i).padStart(4, '0')}`);
    // `<oid>:<ref>` refspecs: 2,000 creates without 2,000 local refs (the git client matches every
    // refspec against every local ref, which costs seconds at this size).
    const created = await push(repo, ['origin', ...names.map((name) => `${tip}:${name}`)]);
    assert.equal(created.code, 0, created.stderr.slice(-2000));
    assert.equal(refLines(created).filter((line) => line.startsWith(' * [new branch]')).length, 2000);
    let refs = await lsRemote(url);
    const bulk = Object.entries(refs).filter(([name]) => name.startsWith('refs/heads/bulk/'));
    assert.deepEqual(bulk.map(([name]) => name).sort(), names);
    assert.ok(bulk.every(([, oid]) => oid === tip));

    // No local bulk/* branches, so --prune deletes every remote one: 2,000 deletes and nothing else.
    const deleted = await push(repo, ['--prune', 'origin', 'refs/heads/bulk/*:refs/heads/bulk/*'], { GIT_TRACE: '1' });
    assert.equal(deleted.code, 0, deleted.stderr.slice(-2000));
    assert.equal(refLines(deleted).filter((line) => line.startsWith(' - [deleted]')).length, 2000);
    assert.match(deleted.stderr, /run_command: git send-pack /);
    assert.doesNotMatch(deleted.stderr, /run_command: git pack-objects/, 'a delete-only push sends no pack');
    refs = await lsRemote(url);
    assert.deepEqual(refs, { HEAD: tip, 'refs/heads/main': tip });
  });

  it('pushes more than 1 MiB through the 0000 probe and a chunked body, and clones it back', async () => {
    const { url, repo } = await seeded('large');
    const content = randomBytes(3 * 1024 * 1024);
    const tip = await commitFile(repo, 'random.bin', content, 'three incompressible MiB');
    const result = await push(repo, ['origin', 'main'], { GIT_TRACE_CURL: '1', GIT_TRACE_CURL_NO_DATA: '1' });
    assert.equal(result.code, 0, result.stderr.split('\n').filter((line) => !/http\.c|pkt-line\.c/.test(line)).join('\n'));
    const posts = result.stderr.split('\n').filter((line) => line.includes('=> Send header: POST ') && line.includes('/git-receive-pack'));
    assert.equal(posts.length, 2, 'the probe and the real request');
    assert.match(result.stderr, /=> Send header: Content-Length: 4\n/);
    assert.match(result.stderr, /=> Send header: Transfer-Encoding: chunked/);
    assert.equal((await lsRemote(url))['refs/heads/main'], tip);

    const clone = dir('large-clone');
    await gitOk([...auth(grove.token), 'clone', '-q', url, clone]);
    assert.equal(await head(clone), tip);
    assert.ok((await readFile(path.join(clone, 'random.bin'))).equals(content));
  });

  it('accepts a push with push options', async () => {
    const { url, repo } = await seeded('options');
    const tip = await commitFile(repo, 'options.txt', 'options\n', 'pushed with options');
    const result = await push(repo, ['-o', 'ci.skip', '-o', 'reviewer=bob', 'origin', 'HEAD:refs/heads/with-options'], { GIT_TRACE_PACKET: '1' });
    assert.equal(result.code, 0, result.stderr);
    // The options really went over the wire (git sends them only when the server advertises push-options).
    assert.match(result.stderr, /packet:\s+git> ci\.skip\n/);
    assert.match(result.stderr, /packet:\s+git> reviewer=bob\n/);
    assert.match(result.stderr, /\* \[new branch\]\s+HEAD -> with-options/);
    assert.equal((await lsRemote(url))['refs/heads/with-options'], tip);
  });

  it('shows remote: progress lines from Grove with --progress', async () => {
    const { url, repo } = await seeded('progress');
    const tip = await commitFile(repo, 'progress.txt', 'progress\n', 'progress');
    const result = await push(repo, ['--progress', 'origin', 'main']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /^remote: grove: receiving \d+ objects?\s*$/m);
    assert.match(result.stderr, /^remote: grove: updated 1 ref\s*$/m);
    assert.equal((await lsRemote(url))['refs/heads/main'], tip);
  });

  it('creates a branch at a commit the server already has (an empty pack)', async () => {
    const { url, repo } = await seeded('empty-pack');
    const older = await head(repo, 'HEAD~1');
    const result = await push(repo, ['--progress', 'origin', 'HEAD~1:refs/heads/older']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Total 0 \(delta 0\)/, 'the client sent a pack with no objects');
    assert.doesNotMatch(result.stderr, /remote: grove: receiving/);
    assert.deepEqual(refLines(result), [' * [new branch]      HEAD~1 -> older']);
    const refs = await lsRemote(url);
    assert.equal(refs['refs/heads/older'], older);
    assert.equal(refs['refs/heads/main'], await head(repo));
  });

  it('rejects refused ref names with [remote rejected] and a reason, and applies the rest of a non-atomic push', async () => {
    const { url, repo } = await seeded('ref-names');
    const tip = await head(repo);
    const result = await push(repo, ['origin', 'HEAD:refs/heads/HEAD', 'HEAD:refs/foo', 'HEAD:refs/heads/fine']);
    assertRejectedCleanly(result, 'a push with refused ref names');
    assert.deepEqual(refLines(result).sort(), [
      ' ! [remote rejected] HEAD -> HEAD (funny refname (refs/heads/HEAD is reserved))',
      ' ! [remote rejected] HEAD -> refs/foo (funny refname)',
      ' * [new branch]      HEAD -> fine',
    ]);
    assert.deepEqual(await lsRemote(url), { HEAD: tip, 'refs/heads/fine': tip, 'refs/heads/main': tip });
  });

  it('accepts a push from a --depth 1 clone on top of history the server has', async () => {
    const { url, repo } = await seeded('shallow-push', 5);
    const shallow = dir('shallow-clone');
    await gitOk([...auth(grove.token), 'clone', '-q', '--depth', '1', url, shallow]);
    assert.equal((await gitOk(['rev-list', '--count', 'HEAD'], { cwd: shallow })).trim(), '1');
    const tip = await commitFile(shallow, 'from-shallow.txt', 'shallow\n', 'pushed from a shallow clone');
    const result = await push(shallow, ['origin', 'main']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await lsRemote(url))['refs/heads/main'], tip);
    assert.equal(await head(shallow, 'HEAD~1'), await head(repo));
  });

  // git's receive-pack passes the client's shallow lines to index-pack (`--shallow-file`); without them
  // index-pack --strict dies with "did not receive expected object <parent>" and the ref gets "unpacker error".
  it('refuses a push from a --depth 1 clone into an empty repository with "shallow update not allowed"', async () => {
    const { url } = await seeded('shallow-source', 5);
    const shallow = dir('shallow-seed');
    await gitOk([...auth(grove.token), 'clone', '-q', '--depth', '1', url, shallow]);
    const empty = await grove.createRepo('pushers', 'shallow-target');
    pushedUrls.push(empty);
    const result = await push(shallow, [empty, 'main']);
    assertRejectedCleanly(result, 'a shallow push into an empty repository');
    assert.deepEqual(refLines(result), [' ! [remote rejected] main -> main (shallow update not allowed)']);
    assert.doesNotMatch(result.stderr, /remote unpack failed/);
    assert.deepEqual(await lsRemote(empty), {});
  });

  it('lets exactly one of 8 concurrent pushes to the same branch win; the others are rejected and the server keeps answering', async () => {
    const { url, repo } = await seeded('race');
    const base = await head(repo);
    const clients: string[] = [];
    const tips: string[] = [];
    for (let i = 0; i < 8; i++) {
      const client = await sibling(repo, url, `race-client-${i}`);
      tips.push(await commitFile(client, `client-${i}.txt`, `client ${i}\n`, `client ${i}`));
      clients.push(client);
    }
    const results = await Promise.all(clients.map((client) => push(client, ['origin', 'main'])));
    const winners = results.flatMap((result, index) => (result.code === 0 ? [index] : []));
    assert.equal(winners.length, 1, results.map((r, i) => `client ${i}: ${r.code}\n${r.stderr}`).join('\n'));
    results.forEach((result, index) => {
      if (index !== winners[0]) assertRejectedCleanly(result, `client ${index}`);
    });
    const refs = await lsRemote(url);
    assert.equal(refs['refs/heads/main'], tips[winners[0]!]);
    assert.notEqual(refs['refs/heads/main'], base);

    // Everyone pushing a branch of its own at once all succeed.
    const own = await Promise.all(clients.map((client, i) => push(client, ['origin', `HEAD:refs/heads/client-${i}`])));
    own.forEach((result, i) => assert.equal(result.code, 0, `client ${i}: ${result.stderr}`));
    const after = await lsRemote(url);
    tips.forEach((tip, i) => assert.equal(after[`refs/heads/client-${i}`], tip, `client-${i}`));
    assert.equal(after['refs/heads/main'], tips[winners[0]!]);
  });

  it('leaves every repository pushed to fsck-clean in a mirror clone, with no quarantine or .keep file left behind', async () => {
    assert.ok(pushedUrls.length >= 10, `only ${pushedUrls.length} repositories were pushed to`);
    for (const url of pushedUrls) {
      const mirror = dir('mirror');
      await gitOk([...auth(grove.token), 'clone', '-q', '--mirror', url, mirror]);
      const fsck = await git(['fsck', '--strict', '--no-dangling'], { cwd: mirror });
      assert.equal(fsck.code, 0, `${url}\n${fsck.stdout}${fsck.stderr}`);
      assert.deepEqual(parseLsRemote(await gitOk(['ls-remote', mirror])), await lsRemote(url), url);
    }
    const shards = await readdir(path.join(grove.dataDir, 'repos'));
    let repositories = 0;
    for (const shard of shards) {
      for (const name of await readdir(path.join(grove.dataDir, 'repos', shard))) {
        const gitDir = path.join(grove.dataDir, 'repos', shard, name);
        repositories++;
        const objects = await readdir(path.join(gitDir, 'objects'));
        assert.deepEqual(objects.filter((entry) => entry.startsWith('incoming-')), [], gitDir);
        const packs = await readdir(path.join(gitDir, 'objects', 'pack')).catch(() => [] as string[]);
        // A cluster node keeps the packs that are in the object store (.keep): they are its cache.
        if (!onClusterOfOne) assert.deepEqual(packs.filter((entry) => entry.endsWith('.keep')), [], gitDir);
        const fsck = await git(['--git-dir', gitDir, 'fsck', '--strict', '--no-dangling']);
        assert.equal(fsck.code, 0, `${gitDir}\n${fsck.stdout}${fsck.stderr}`);
      }
    }
    assert.equal(repositories, pushedUrls.length);
  });
});
