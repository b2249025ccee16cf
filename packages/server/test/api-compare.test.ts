import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';
import { assertCatalogueError, pushAll, read, revParse } from './helpers/read-api.ts';

const lines = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}`).join('\n') + '\n';

describe('diff API: compare base...head', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let cloneUrl: string;
  let forkPoint: string;
  let mainTip: string;
  let headTip: string;
  let featureCommits: string[];

  before(async () => {
    grove = await startTestServer();
    work = await tempDir();
    const dir = work.path;
    const write = (file: string, content: string | Buffer) => writeFile(path.join(dir, file), content);
    await initWorkRepo(dir);
    await write('keep.txt', 'keep\n');
    await write('modify.txt', lines('line', 10));
    await write('delete.txt', lines('doomed', 3));
    await write('rename-me.txt', lines('stable content', 10));
    await write('bin.dat', Buffer.from([0, 1, 2, 3, 0, 255]));
    await write('typed', 'a regular file\n');
    await gitOk(['add', '-A'], { cwd: dir });
    await gitOk(['commit', '-q', '-m', 'base'], { cwd: dir });
    forkPoint = await revParse(dir, 'HEAD');

    await gitOk(['checkout', '-q', '-b', 'feature/x'], { cwd: dir });
    await write('modify.txt', lines('line', 10).replace('line 5\n', 'line five\n'));
    await write('added.txt', 'brand new\n');
    await rm(path.join(dir, 'delete.txt'));
    await rm(path.join(dir, 'rename-me.txt'));
    await write('renamed.txt', lines('stable content', 10).replace('stable content 10\n', 'changed ten\n'));
    await write('bin.dat', Buffer.from([0, 1, 2, 4, 0, 255, 7]));
    await rm(path.join(dir, 'typed'));
    await symlink('keep.txt', path.join(dir, 'typed'));
    await gitOk(['add', '-A'], { cwd: dir });
    await gitOk(['commit', '-q', '-m', 'feature work'], { cwd: dir });
    await commitFile(dir, 'added.txt', 'brand new\nand more\n', 'more feature work');
    headTip = await revParse(dir, 'HEAD');
    featureCommits = [headTip, await revParse(dir, 'HEAD^')];

    await gitOk(['checkout', '-q', 'main'], { cwd: dir });
    mainTip = await commitFile(dir, 'keep.txt', 'keep, changed on main after the fork\n', 'main moves on');
    await gitOk(['checkout', '-q', '--orphan', 'unrelated'], { cwd: dir });
    await gitOk(['rm', '-rqf', '.'], { cwd: dir });
    await commitFile(dir, 'other.txt', 'other\n', 'unrelated root');
    await gitOk(['checkout', '-q', 'main'], { cwd: dir });
    cloneUrl = await grove.createRepo('acme', 'diffs');
    await pushAll(grove, cloneUrl, dir);
  });

  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  it('answers the merge base, the commits head adds, and every changed file with status, counts and hunks', async () => {
    const response = await read(grove, 'acme/diffs', 'compare/main...feature/x');
    assert.equal(response.status, 200, response.text);
    const body = response.json;
    assert.equal(body.base, mainTip);
    assert.equal(body.head, headTip);
    assert.equal(body.mergeBase, forkPoint);
    assert.deepEqual(body.commits.map((c: { sha: string }) => c.sha), featureCommits);
    assert.equal(body.truncated, false);
    const summary = body.files.map((f: Record<string, unknown>) => [f.path, f.previousPath, f.status, f.additions, f.deletions, f.binary, (f.hunks as unknown[]).length, f.truncated]);
    assert.deepEqual(summary, [
      ['added.txt', undefined, 'added', 2, 0, false, 1, false],
      ['bin.dat', undefined, 'modified', 0, 0, true, 0, false],
      ['delete.txt', undefined, 'deleted', 0, 3, false, 1, false],
      ['modify.txt', undefined, 'modified', 1, 1, false, 1, false],
      ['renamed.txt', 'rename-me.txt', 'renamed', 1, 1, false, 1, false],
      ['typed', undefined, 'typechange', 1, 1, false, 2, false],
    ]);
    const modify = body.files.find((f: { path: string }) => f.path === 'modify.txt');
    assert.deepEqual(modify.hunks[0], {
      oldStart: 2, oldLines: 7, newStart: 2, newLines: 7, header: '@@ -2,7 +2,7 @@ line 1',
      lines: [' line 2', ' line 3', ' line 4', '-line 5', '+line five', ' line 6', ' line 7', ' line 8'],
    });
    const typed = body.files.find((f: { path: string }) => f.path === 'typed');
    assert.deepEqual(typed.hunks.map((h: { lines: string[] }) => h.lines), [['-a regular file'], ['+keep.txt', '\\ No newline at end of file']]);
    assert.ok(!body.files.some((f: { path: string }) => f.path === 'keep.txt'), 'changes on base after the fork are not part of base...head');
  });

  it('sets truncated when the line or file limits are hit, keeping whole hunks only', async () => {
    const fewLines = await read(grove, 'acme/diffs', 'compare/main...feature/x?maxLines=6');
    assert.equal(fewLines.json.truncated, true);
    assert.equal(fewLines.json.files.length, 6);
    const [added, binary, deleted] = fewLines.json.files;
    assert.deepEqual([added.hunks.length, added.truncated], [1, false]);
    assert.deepEqual([binary.hunks.length, binary.truncated], [0, false]);
    assert.deepEqual([deleted.hunks.length, deleted.truncated], [0, true]);
    for (const file of fewLines.json.files.slice(3)) assert.equal(file.truncated, true, file.path);
    const fewFiles = await grove.sdk.diffs.compare('acme', 'diffs', 'main', 'feature/x', { maxFiles: 2 });
    assert.equal(fewFiles.truncated, true);
    assert.deepEqual(fewFiles.files.map((f) => f.path), ['added.txt', 'bin.dat']);
    assertCatalogueError(await read(grove, 'acme/diffs', 'compare/main...feature/x?maxFiles=0'), 400, 'invalid_request');
  });

  it('answers the unified diff with Accept: text/x-diff; it applies to the merge base and gives head\'s tree', async () => {
    const response = await read(grove, 'acme/diffs', 'compare/main...feature/x', { headers: { accept: 'text/x-diff' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/x-diff; charset=utf-8');
    assert.match(response.text, /^diff --git a\/added.txt b\/added.txt$/m);
    assert.match(response.text, /GIT binary patch/);
    assert.equal(await grove.sdk.diffs.patch('acme', 'diffs', 'main', 'feature/x'), response.text);
    await using clone = await tempDir();
    await gitOk([...auth(grove.token), 'clone', '-q', cloneUrl, clone.path]);
    await gitOk(['checkout', '-q', forkPoint], { cwd: clone.path });
    await writeFile(path.join(clone.path, '..', `${path.basename(clone.path)}.diff`), response.body);
    const patchFile = path.join(clone.path, '..', `${path.basename(clone.path)}.diff`);
    try {
      const check = await git(['apply', '--check', '--index', patchFile], { cwd: clone.path });
      assert.equal(check.code, 0, check.stderr);
      await gitOk(['apply', '--index', patchFile], { cwd: clone.path });
      assert.equal((await gitOk(['write-tree'], { cwd: clone.path })).trim(), await revParse(work.path, 'feature/x^{tree}'));
    } finally {
      await rm(patchFile, { force: true });
    }
  });

  it('compares unrelated histories against nothing (mergeBase null), and a ref with itself as empty', async () => {
    const unrelated = await grove.sdk.diffs.compare('acme', 'diffs', 'main', 'unrelated');
    assert.equal(unrelated.mergeBase, null);
    assert.deepEqual(unrelated.files.map((f) => [f.path, f.status]), [['other.txt', 'added']]);
    assert.deepEqual(unrelated.commits.map((c) => c.message), ['unrelated root']);
    const same = await grove.sdk.diffs.compare('acme', 'diffs', 'main', mainTip);
    assert.deepEqual([same.mergeBase, same.commits, same.files, same.truncated], [mainTip, [], [], false]);
    const reverse = await grove.sdk.diffs.compare('acme', 'diffs', 'feature/x', 'main');
    assert.deepEqual(reverse.files.map((f) => f.path), ['keep.txt']);
  });

  it('refuses a spec without three dots or with an unsafe side (400) and answers 404 for an unknown ref', async () => {
    for (const spec of ['main', 'main..feature', 'main...', '...main', `--output=x...main`, 'main....feature', 'main...HEAD~1']) {
      assertCatalogueError(await read(grove, 'acme/diffs', `compare/${spec}`), 400, 'invalid_request');
    }
    assertCatalogueError(await read(grove, 'acme/diffs', 'compare/main...nope'), 404, 'not_found');
    assertCatalogueError(await read(grove, 'acme/diffs', 'compare/nope...main', { headers: { accept: 'text/x-diff' } }), 404, 'not_found');
  });
});
