import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { commitFile, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';
import { assertCatalogueError, pushAll, read, revParse } from './helpers/read-api.ts';

const DATE = (n: number) => `2024-03-0${n}T10:00:00+0200`;

describe('read API: commits and blame', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let cloneUrl: string;
  const shas: string[] = [];

  before(async () => {
    grove = await startTestServer();
    work = await tempDir();
    const dir = work.path;
    await initWorkRepo(dir);
    const commit = async (n: number, file: string, content: string | Buffer, message: string) => {
      await writeFile(path.join(dir, file), content);
      await gitOk(['add', '-A'], { cwd: dir });
      await gitOk(['commit', '-q', '-m', message], { cwd: dir, env: { GIT_AUTHOR_DATE: DATE(n), GIT_COMMITTER_DATE: DATE(n), GIT_AUTHOR_NAME: `Author ${n}`, GIT_AUTHOR_EMAIL: `a${n}@example.com` } });
      shas.push(await revParse(dir, 'HEAD'));
    };
    await commit(1, 'poem.txt', 'roses\nviolets\n', 'first poem\n\nwith a body');
    await commit(2, 'notes.txt', 'notes\n', 'add notes');
    await commit(3, 'poem.txt', 'roses\nviolets\nsugar\n', 'extend the poem');
    await commit(4, 'notes.txt', 'notes\nmore\n', 'more notes');
    await gitOk(['mv', 'notes.txt', 'renamed-notes.txt'], { cwd: dir });
    await rm(path.join(dir, 'poem.txt'));
    await commit(5, 'new.txt', 'new\n', 'rename notes, delete the poem, add new');
    await commit(6, 'bin.dat', Buffer.from([0, 1, 2, 3]), 'binary');
    await commit(7, 'new.txt', 'new\nnewer\n', 'seventh');
    cloneUrl = await grove.createRepo('acme', 'hist');
    await pushAll(grove, cloneUrl, dir);
  });

  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  it('lists commits newest first with parents, tree, message and both signatures', async () => {
    const response = await read(grove, 'acme/hist', 'commits?limit=2');
    assert.equal(response.status, 200);
    assert.deepEqual(response.json.items.map((c: { sha: string }) => c.sha), [shas[6], shas[5]]);
    const [latest] = response.json.items;
    assert.deepEqual(latest, {
      sha: shas[6],
      parents: [shas[5]],
      tree: await revParse(work.path, 'HEAD^{tree}'),
      message: 'seventh',
      author: { name: 'Author 7', email: 'a7@example.com', date: '2024-03-07T10:00:00+02:00' },
      committer: { name: 'Agent Seven', email: 'agent7@example.com', date: '2024-03-07T10:00:00+02:00' },
    });
    assert.equal(typeof response.json.nextCursor, 'string');
  });

  it('pages through every commit with the cursor, and pages stay put when the branch moves', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let first = true;
    do {
      const response = await read(grove, 'acme/hist', `commits?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(response.status, 200, response.text);
      seen.push(...response.json.items.map((c: { sha: string }) => c.sha));
      cursor = response.json.nextCursor;
      if (first) {
        // Someone pushes while we page: the cursor keeps walking from where the first page started.
        await commitFile(work.path, 'later.txt', 'later\n', 'pushed while paging');
        await pushAll(grove, cloneUrl, work.path, ['main']);
        first = false;
      }
    } while (cursor !== null);
    assert.deepEqual(seen, [...shas].reverse());
    assertCatalogueError(await read(grove, 'acme/hist', 'commits?cursor=bogus'), 400, 'invalid_request');
    const forged = Buffer.from(JSON.stringify({ c: 'e'.repeat(40), s: 3 })).toString('base64url');
    assertCatalogueError(await read(grove, 'acme/hist', `commits?cursor=${forged}`), 400, 'invalid_request');
    const all: string[] = [];
    for await (const c of grove.sdk.contents.allCommits('acme', 'hist', { ref: shas[6]!, pageSize: 4 })) all.push(c.sha);
    assert.deepEqual(all, [...shas].reverse());
  });

  it('filters commits by path and reads at other refs', async () => {
    const poem = await read(grove, 'acme/hist', 'commits?path=poem.txt');
    assert.deepEqual(poem.json.items.map((c: { message: string }) => c.message), ['rename notes, delete the poem, add new', 'extend the poem', 'first poem\n\nwith a body']);
    assert.equal(poem.json.nextCursor, null);
    const literal = await read(grove, 'acme/hist', `commits?path=${encodeURIComponent('*.txt')}`);
    assert.deepEqual(literal.json.items, [], 'paths are literal, not globs');
    const old = await read(grove, 'acme/hist', `commits?ref=${shas[1]}`);
    assert.deepEqual(old.json.items.map((c: { sha: string }) => c.sha), [shas[1], shas[0]]);
    assertCatalogueError(await read(grove, 'acme/hist', 'commits?ref=nope'), 404, 'not_found');
  });

  it('gets one commit with the files it changed: renamed, deleted, added, modified, binary; a root commit adds everything', async () => {
    const fifth = await read(grove, 'acme/hist', `commits/${shas[4]}`);
    assert.equal(fifth.status, 200, fifth.text);
    assert.equal(fifth.json.sha, shas[4]);
    assert.equal(fifth.json.truncated, false);
    assert.deepEqual(fifth.json.files, [
      { path: 'new.txt', status: 'added', additions: 1, deletions: 0, binary: false },
      { path: 'poem.txt', status: 'deleted', additions: 0, deletions: 3, binary: false },
      { path: 'renamed-notes.txt', previousPath: 'notes.txt', status: 'renamed', additions: 0, deletions: 0, binary: false },
    ]);
    const binary = await read(grove, 'acme/hist', `commits/${shas[5]!.slice(0, 8)}`);
    assert.deepEqual(binary.json.files, [{ path: 'bin.dat', status: 'added', additions: 0, deletions: 0, binary: true, newSize: 4 }]);
    const root = await grove.sdk.contents.commit('acme', 'hist', shas[0]!);
    assert.deepEqual(root.parents, []);
    assert.deepEqual(root.files, [{ path: 'poem.txt', status: 'added', additions: 2, deletions: 0, binary: false }]);
    const modified = await grove.sdk.contents.commit('acme', 'hist', shas[2]!);
    assert.deepEqual(modified.files, [{ path: 'poem.txt', status: 'modified', additions: 1, deletions: 0, binary: false }]);
    assertCatalogueError(await read(grove, 'acme/hist', `commits/${'e'.repeat(40)}`), 404, 'not_found');
    assertCatalogueError(await read(grove, 'acme/hist', `commits/${await revParse(work.path, `${shas[0]}^{tree}`)}`), 404, 'not_found');
  });

  it('blames a file changed by two commits: each line to the commit that last changed it', async () => {
    const response = await read(grove, 'acme/hist', `blame/poem.txt?ref=${shas[2]}`);
    assert.equal(response.status, 200, response.text);
    assert.equal(response.json.path, 'poem.txt');
    assert.equal(response.json.sha, shas[2]);
    assert.deepEqual(response.json.ranges, [
      { start: 1, lines: 2, commit: { sha: shas[0], author: { name: 'Author 1', email: 'a1@example.com' }, date: '2024-03-01T10:00:00+02:00', summary: 'first poem' } },
      { start: 3, lines: 1, commit: { sha: shas[2], author: { name: 'Author 3', email: 'a3@example.com' }, date: '2024-03-03T10:00:00+02:00', summary: 'extend the poem' } },
    ]);
    const sdk = await grove.sdk.contents.blame('acme', 'hist', 'renamed-notes.txt');
    assert.deepEqual(sdk.ranges.map((r) => [r.start, r.lines, r.commit.sha]), [[1, 1, shas[1]], [2, 1, shas[3]]], 'blame follows the rename');
  });

  it('answers 404 for blaming a deleted or missing file, or no file at all', async () => {
    assertCatalogueError(await read(grove, 'acme/hist', 'blame/poem.txt'), 404, 'not_found');
    assertCatalogueError(await read(grove, 'acme/hist', 'blame/nope.txt'), 404, 'not_found');
    assertCatalogueError(await read(grove, 'acme/hist', 'blame/'), 404, 'not_found');
  });
});
