/**
 * Background maintenance: after pushes accumulate, the repository is repacked
 * geometrically with a multi-pack-index and bitmaps, gets a commit-graph and packed
 * refs — while clones and pushes keep working and nothing is lost.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { onClusterOfOne } from './helpers/database.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

async function packCount(repoDir: string): Promise<number> {
  return (await readdir(path.join(repoDir, 'objects', 'pack'))).filter((f) => f.endsWith('.pack')).length;
}

describe('background maintenance', () => {
  let grove: TestServer;
  before(async () => {
    grove = await startTestServer({ GROVE_MAINTENANCE_PUSHES: '10', GROVE_PACK_CACHE_BYTES: '0' });
  });
  after(async () => {
    await grove.close();
  });

  it('rolls up the packs of many small pushes, with a multi-pack-index, bitmaps and a commit-graph', { skip: onClusterOfOne ? 'a cluster node keeps the object store\'s packs; compaction rolls them up in the store (test/cluster.test.ts)' : false }, async () => {
    const url = await grove.createRepo('maint', 'many-pushes');
    const repo = await grove.sdk.repos.get('maint', 'many-pushes');
    const repoDir = grove.server.repos.gitDir(repo.id);
    await using work = await tempDir();
    const dir = path.join(work.path, 'w');
    await initWorkRepo(dir);
    for (let i = 0; i < 9; i++) {
      await commitFile(dir, `f${i}.txt`, `${i}\n`, `commit ${i}`);
      await gitOk([...auth(grove.token), 'push', '-q', url, 'main'], { cwd: dir });
    }
    assert.equal(await packCount(repoDir), 9, 'each push should have added one pack before maintenance');
    await commitFile(dir, 'f9.txt', '9\n', 'commit 9');
    await gitOk([...auth(grove.token), 'push', '-q', url, 'main'], { cwd: dir });
    await grove.server.repos.maintenance.idle();
    assert.ok((await packCount(repoDir)) <= 2, `still ${await packCount(repoDir)} packs after maintenance`);
    const files = await readdir(path.join(repoDir, 'objects', 'pack'));
    assert.ok(files.includes('multi-pack-index'), 'no multi-pack-index');
    assert.ok(files.some((f) => f.startsWith('multi-pack-index-') && f.endsWith('.bitmap')), 'no multi-pack bitmap');
    const graph = await readdir(path.join(repoDir, 'objects', 'info')).catch(() => [] as string[]);
    assert.ok(graph.includes('commit-graphs') || graph.includes('commit-graph'), 'no commit-graph');
    assert.ok((await readdir(repoDir)).includes('packed-refs'), 'refs were not packed');
    await gitOk(['--git-dir', repoDir, 'fsck', '--strict', '--no-dangling']);
    const clone = path.join(work.path, 'clone');
    await gitOk([...auth(grove.token), 'clone', '-q', url, clone]);
    assert.equal((await gitOk(['rev-list', '--count', 'HEAD'], { cwd: clone })).trim(), '10');
  });

  it('keeps clones and pushes working while it runs', async () => {
    const url = await grove.createRepo('maint', 'busy');
    const repo = await grove.sdk.repos.get('maint', 'busy');
    const repoDir = grove.server.repos.gitDir(repo.id);
    await using work = await tempDir();
    const dir = path.join(work.path, 'w');
    await initWorkRepo(dir);
    for (let i = 0; i < 8; i++) {
      await commitFile(dir, `f${i}.txt`, `${i}\n`.repeat(1000), `commit ${i}`);
      await gitOk([...auth(grove.token), 'push', '-q', url, `HEAD:refs/heads/b${i}`], { cwd: dir });
    }
    const maintenance = grove.server.repos.maintenance.run(repoDir);
    const clones = Array.from({ length: 4 }, (_, i) => git([...auth(grove.token), 'clone', '-q', url, path.join(work.path, `c${i}`)]));
    await commitFile(dir, 'during.txt', 'during\n', 'pushed during maintenance');
    const push = git([...auth(grove.token), 'push', '-q', url, 'HEAD:refs/heads/during'], { cwd: dir });
    assert.equal(await maintenance, true);
    for (const result of await Promise.all(clones)) assert.equal(result.code, 0, result.stderr);
    assert.equal((await push).code, 0);
    await gitOk(['--git-dir', repoDir, 'fsck', '--strict', '--no-dangling']);
    const remote = await gitOk([...auth(grove.token), 'ls-remote', url]);
    assert.equal(remote.trim().split('\n').length, 9); // 8 branches and 'during'; HEAD is unborn (main was never pushed)
  });
});
