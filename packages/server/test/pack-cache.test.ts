/**
 * The pack cache: identical clones share one upload-pack run and later ones replay
 * from disk; a moved ref is never served from a stale entry; a leader that hangs up
 * does not hurt the followers; the cache stays within its byte budget.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

function pkt(line: string): string {
  return (line.length + 4).toString(16).padStart(4, '0') + line;
}

function cloneRequest(tip: string): string {
  return `${pkt('command=fetch\n')}${pkt('object-format=sha1\n')}0001${pkt('ofs-delta\n')}${pkt('no-progress\n')}${pkt(`want ${tip}\n`)}${pkt('done\n')}0000`;
}

async function fetchPack(grove: TestServer, repoPath: string, body: string): Promise<Buffer> {
  const response = await fetch(`${grove.url}/${repoPath}/git-upload-pack`, {
    method: 'POST',
    headers: { authorization: `Bearer ${grove.token}`, 'content-type': 'application/x-git-upload-pack-request', 'git-protocol': 'version=2' },
    body,
  });
  assert.equal(response.status, 200);
  return Buffer.from(await response.arrayBuffer());
}

async function cacheCounts(grove: TestServer): Promise<{ hit: number; joined: number; miss: number; bytes: number }> {
  const text = await (await fetch(`${grove.url}/metrics`)).text();
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
  return {
    hit: value(/grove_pack_cache_requests\{result="hit"\} (\d+)/),
    joined: value(/grove_pack_cache_requests\{result="joined"\} (\d+)/),
    miss: value(/grove_pack_cache_requests\{result="miss"\} (\d+)/),
    bytes: value(/grove_pack_cache_bytes (\d+)/),
  };
}

describe('pack cache', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let source: string;
  let url: string;

  before(async () => {
    grove = await startTestServer({ GROVE_PACK_CACHE_BYTES: String(64 * 1024 * 1024) });
    work = await tempDir();
    source = path.join(work.path, 'src');
    await initWorkRepo(source);
    // Big enough that a response takes a while to produce and stream.
    await commitFile(source, 'big.bin', randomBytes(6 * 1024 * 1024), 'a big incompressible file');
    url = await grove.createRepo('cache', 'swarm');
    await gitOk([...auth(grove.token), 'push', '-q', url, 'main'], { cwd: source });
  });

  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  it('serves 8 simultaneous identical clones with one pack generation, all byte-identical', async () => {
    const tip = (await gitOk(['rev-parse', 'HEAD'], { cwd: source })).trim();
    const before = await cacheCounts(grove);
    const bodies = await Promise.all(Array.from({ length: 8 }, () => fetchPack(grove, 'cache/swarm.git', cloneRequest(tip))));
    const after = await cacheCounts(grove);
    assert.equal(after.miss - before.miss, 1, 'more than one pack generation');
    assert.equal(after.hit + after.joined - before.hit - before.joined, 7);
    for (const body of bodies) assert.ok(body.equals(bodies[0]!), 'responses differ');
    assert.ok(bodies[0]!.length > 6 * 1024 * 1024);
    assert.ok(bodies[0]!.subarray(-4).toString() === '0000', 'response does not end with a flush');
  });

  it('replays a cached clone to the git CLI, and the clone is complete', async () => {
    const target = path.join(work.path, `clone-${Date.now()}`);
    const before = await cacheCounts(grove);
    await gitOk([...auth(grove.token), 'clone', '-q', url, target]);
    await gitOk([...auth(grove.token), 'clone', '-q', url, `${target}-2`]);
    const after = await cacheCounts(grove);
    assert.ok(after.hit - before.hit >= 1, 'the second clone was not a cache hit');
    await gitOk(['fsck', '--strict'], { cwd: `${target}-2` });
    assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: `${target}-2` })).trim(), (await gitOk(['rev-parse', 'HEAD'], { cwd: source })).trim());
  });

  it('never serves a new commit from a stale entry after the branch moves', async () => {
    const first = path.join(work.path, `stale-a-${Date.now()}`);
    await gitOk([...auth(grove.token), 'clone', '-q', url, first]);
    const tip = await commitFile(source, 'next.txt', 'next\n', 'a new commit');
    await gitOk([...auth(grove.token), 'push', '-q', url, 'main'], { cwd: source });
    const second = path.join(work.path, `stale-b-${Date.now()}`);
    await gitOk([...auth(grove.token), 'clone', '-q', url, second]);
    assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: second })).trim(), tip);
  });

  it('keeps producing for the followers when the first client hangs up', async () => {
    // A new tip, so the entry does not exist yet.
    const tip = await commitFile(source, `leader-${Date.now()}.bin`, randomBytes(4 * 1024 * 1024), 'another big file');
    await gitOk([...auth(grove.token), 'push', '-q', url, 'main'], { cwd: source });
    const target = new URL(`${grove.url}/cache/swarm.git/git-upload-pack`);
    const leaderGone = new Promise<void>((resolve) => {
      const request = http.request(target, {
        method: 'POST',
        headers: { authorization: `Bearer ${grove.token}`, 'content-type': 'application/x-git-upload-pack-request', 'git-protocol': 'version=2' },
      });
      request.on('response', (response) => {
        response.once('data', () => {
          request.destroy(); // the leader hangs up after its first bytes
          resolve();
        });
      });
      request.on('error', () => resolve());
      request.end(cloneRequest(tip));
    });
    const followers = Promise.all(Array.from({ length: 3 }, () => fetchPack(grove, 'cache/swarm.git', cloneRequest(tip))));
    await leaderGone;
    const bodies = await followers;
    for (const body of bodies) {
      assert.ok(body.equals(bodies[0]!));
      assert.ok(body.length > 4 * 1024 * 1024);
      assert.equal(body.subarray(-4).toString(), '0000');
    }
  });

  it('stays within a small byte budget by evicting older entries', async () => {
    // 9 MiB: the repository's packs (4 MiB; 8 on a cluster node before compaction) fit it, so it is cached; its four clones (1+2+3+4 MiB) do not fit it all.
    const small = await startTestServer({ GROVE_PACK_CACHE_BYTES: String(9 * 1024 * 1024) });
    try {
      await using scratch = await tempDir();
      const repo = path.join(scratch.path, 'r');
      await initWorkRepo(repo);
      const cloneUrl = await small.createRepo('cache', 'evict');
      const tips: string[] = [];
      for (let i = 0; i < 4; i++) {
        tips.push(await commitFile(repo, `f${i}.bin`, randomBytes(1024 * 1024), `file ${i}`));
        await gitOk([...auth(small.token), 'push', '-q', cloneUrl, `HEAD:refs/heads/b${i}`], { cwd: repo });
      }
      for (const tip of tips) await fetchPack(small, 'cache/evict.git', cloneRequest(tip));
      const counts = await cacheCounts(small);
      assert.ok(counts.bytes <= 9 * 1024 * 1024, `cache holds ${counts.bytes} bytes`);
      // The oldest entry was evicted: asking again produces it anew, and correctly.
      const missesBefore = counts.miss;
      const again = await fetchPack(small, 'cache/evict.git', cloneRequest(tips[0]!));
      assert.equal((await cacheCounts(small)).miss, missesBefore + 1);
      assert.equal(again.subarray(-4).toString(), '0000');
    } finally {
      await small.close();
    }
  });

  it('passes incremental fetches (with haves) through without caching them', async () => {
    const clone = path.join(work.path, `incremental-${Date.now()}`);
    await gitOk([...auth(grove.token), 'clone', '-q', url, clone]);
    await commitFile(source, `inc-${Date.now()}.txt`, 'x\n', 'incremental');
    await gitOk([...auth(grove.token), 'push', '-q', url, 'main'], { cwd: source });
    const before = await cacheCounts(grove);
    const result = await git([...auth(grove.token), 'fetch', '-q', 'origin'], { cwd: clone });
    assert.equal(result.code, 0, result.stderr);
    const after = await cacheCounts(grove);
    assert.equal(after.miss + after.hit + after.joined, before.miss + before.hit + before.joined);
  });
});

describe('pack cache and a repository bigger than its budget', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    grove = await startTestServer({ GROVE_PACK_CACHE_BYTES: String(4 * 1024 * 1024) });
    work = await tempDir();
  });

  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  it('streams its clones straight from git, writing no cache entry, and the clones are complete', async () => {
    const source = path.join(work.path, 'src');
    await initWorkRepo(source);
    const tip = await commitFile(source, 'big.bin', randomBytes(5 * 1024 * 1024), 'more than the whole cache');
    const url = await grove.createRepo('cache', 'large');
    await gitOk([...auth(grove.token), 'push', '-q', url, 'main'], { cwd: source });
    const before = await cacheCounts(grove);
    const bodies = await Promise.all(Array.from({ length: 3 }, () => fetchPack(grove, 'cache/large.git', cloneRequest(tip))));
    const after = await cacheCounts(grove);
    assert.deepEqual(after, before, 'no miss, hit or join: the cache was not used');
    for (const body of bodies) assert.ok(body.length > 5 * 1024 * 1024 && body.subarray(-4).toString() === '0000');
    const target = path.join(work.path, 'clone');
    await gitOk([...auth(grove.token), 'clone', '-q', url, target]);
    await gitOk(['fsck', '--strict'], { cwd: target });
  });
});
