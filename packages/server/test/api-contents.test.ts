import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GroveApiError } from '@grove/sdk';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { commitFile, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';
import { assertCatalogueError, pushAll, rawGet, read, revParse } from './helpers/read-api.ts';

const BIG = 20 * 1024 * 1024;

function bigContent(): Buffer {
  const buffer = Buffer.alloc(BIG);
  for (let i = 0; i < buffer.length; i += 4) buffer.writeUInt32LE((i * 2654435761) >>> 0, i);
  return buffer;
}

describe('read API: contents, tree and archive', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let first: string;
  let head: string;
  const big = bigContent();

  before(async () => {
    grove = await startTestServer();
    work = await tempDir();
    const dir = work.path;
    await initWorkRepo(dir);
    first = await commitFile(dir, 'README.md', 'hello v1\n', 'first');
    await gitOk(['tag', '-a', 'v1', '-m', 'release 1'], { cwd: dir });
    await mkdir(path.join(dir, 'src/deep'), { recursive: true });
    await mkdir(path.join(dir, 'dir with space'), { recursive: true });
    await writeFile(path.join(dir, 'README.md'), 'hello v2\nsecond line\n');
    await writeFile(path.join(dir, 'src/app.ts'), 'export const x = 1;\n');
    await writeFile(path.join(dir, 'src/deep/x.json'), '{"a":1}\n');
    await writeFile(path.join(dir, 'dir with space/ünï code.txt'), 'unicode\n');
    await writeFile(path.join(dir, 'run.sh'), '#!/bin/sh\necho hi\n');
    await chmod(path.join(dir, 'run.sh'), 0o755);
    await symlink('README.md', path.join(dir, 'link'));
    await writeFile(path.join(dir, 'empty.txt'), '');
    await writeFile(path.join(dir, 'big.bin'), big);
    await gitOk(['add', '-A'], { cwd: dir });
    await gitOk(['commit', '-q', '-m', 'second'], { cwd: dir });
    await gitOk(['branch', 'feature/x', first], { cwd: dir });
    head = await revParse(dir, 'HEAD');
    await pushAll(grove, await grove.createRepo('acme', 'app'), dir);
    await grove.createRepo('acme', 'other');
    await grove.createRepo('acme', 'empty');
  });

  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  it('answers a file with its bytes, a text Content-Type, the blob sha as ETag, the commit, length and Accept-Ranges', async () => {
    const response = await read(grove, 'acme/app', 'contents/README.md');
    assert.equal(response.status, 200);
    assert.equal(response.text, 'hello v2\nsecond line\n');
    assert.equal(response.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(response.headers.get('etag'), `"${await revParse(work.path, 'HEAD:README.md')}"`);
    assert.equal(response.headers.get('x-grove-commit'), head);
    assert.equal(response.headers.get('content-length'), '21');
    assert.equal(response.headers.get('accept-ranges'), 'bytes');
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal((await read(grove, 'acme/app', 'contents/big.bin?ref=main')).headers.get('content-type'), 'application/octet-stream');
    assert.equal((await read(grove, 'acme/app', 'contents/empty.txt')).body.length, 0);
  });

  it('reads at a branch with a slash, an annotated tag, a full or abbreviated sha, a full ref name and HEAD', async () => {
    for (const ref of ['feature/x', 'v1', first, first.slice(0, 10), 'refs/tags/v1', 'refs/heads/feature%2Fx']) {
      const response = await read(grove, 'acme/app', `contents/README.md?ref=${ref}`);
      assert.equal(response.status, 200, `${ref}: ${response.text}`);
      assert.equal(response.text, 'hello v1\n', ref);
      assert.equal(response.headers.get('x-grove-commit'), first, ref);
    }
    assert.equal((await read(grove, 'acme/app', 'contents/README.md?ref=HEAD')).headers.get('x-grove-commit'), head);
  });

  it('answers 304 without a body when If-None-Match holds the ETag (also weak or in a list), 200 otherwise', async () => {
    const etag = (await read(grove, 'acme/app', 'contents/README.md')).headers.get('etag')!;
    for (const header of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const response = await read(grove, 'acme/app', 'contents/README.md', { headers: { 'if-none-match': header } });
      assert.equal(response.status, 304, header);
      assert.equal(response.body.length, 0);
      assert.equal(response.headers.get('etag'), etag);
    }
    assert.equal((await read(grove, 'acme/app', 'contents/README.md', { headers: { 'if-none-match': '"0000"' } })).status, 200);
    // The file changed between v1 and main: the old ETag no longer matches.
    const old = (await read(grove, 'acme/app', 'contents/README.md?ref=v1')).headers.get('etag')!;
    assert.equal((await read(grove, 'acme/app', 'contents/README.md', { headers: { 'if-none-match': old } })).status, 200);
  });

  it('answers one byte range with 206 and Content-Range: first bytes, open-ended and suffix', async () => {
    const cases: Array<[string, string, string]> = [['bytes=0-4', 'hello', 'bytes 0-4/21'], ['bytes=9-', 'second line\n', 'bytes 9-20/21'], ['bytes=-5', 'line\n', 'bytes 16-20/21'], ['bytes=6-1000', 'v2\nsecond line\n', 'bytes 6-20/21']];
    for (const [range, body, contentRange] of cases) {
      const response = await read(grove, 'acme/app', 'contents/README.md', { headers: { range } });
      assert.equal(response.status, 206, range);
      assert.equal(response.text, body, range);
      assert.equal(response.headers.get('content-range'), contentRange);
      assert.equal(response.headers.get('content-length'), String(Buffer.byteLength(body)));
    }
  });

  it('answers 416 range_not_satisfiable with Content-Range bytes */size past the end; ignores a stale If-Range', async () => {
    for (const range of ['bytes=21-', 'bytes=100-200', 'bytes=-0']) {
      const response = await read(grove, 'acme/app', 'contents/README.md', { headers: { range } });
      assertCatalogueError(response, 416, 'range_not_satisfiable');
      assert.equal(response.headers.get('content-range'), 'bytes */21');
    }
    const stale = await read(grove, 'acme/app', 'contents/README.md', { headers: { range: 'bytes=0-4', 'if-range': '"0123"' } });
    assert.equal(stale.status, 200);
    assert.equal(stale.body.length, 21);
    const multi = await read(grove, 'acme/app', 'contents/README.md', { headers: { range: 'bytes=0-1,3-4' } });
    assert.equal(multi.status, 200);
  });

  it('streams a 20 MB file whole and serves a range at its end', async () => {
    const rssBefore = process.memoryUsage().rss;
    const response = await fetch(`${grove.url}/api/v1/repos/acme/app/contents/big.bin`, { headers: { authorization: `Bearer ${grove.token}` } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-length'), String(BIG));
    const hash = createHash('sha256');
    let received = 0;
    for await (const chunk of response.body!) {
      hash.update(chunk);
      received += chunk.length;
    }
    assert.equal(received, BIG);
    assert.equal(hash.digest('hex'), createHash('sha256').update(big).digest('hex'));
    // Server and client share this process: streaming keeps the growth far below a few copies of the file.
    assert.ok(process.memoryUsage().rss - rssBefore < 4 * BIG, `RSS grew by ${process.memoryUsage().rss - rssBefore} bytes`);
    const tail = await read(grove, 'acme/app', 'contents/big.bin', { headers: { range: `bytes=${BIG - 10}-` } });
    assert.equal(tail.status, 206);
    assert.deepEqual(tail.body, big.subarray(BIG - 10));
  });

  it('kills git when the client goes away in the middle of a file', async () => {
    const controller = new AbortController();
    const response = await fetch(`${grove.url}/api/v1/repos/acme/app/contents/big.bin`, { headers: { authorization: `Bearer ${grove.token}` }, signal: controller.signal });
    const reader = response.body!.getReader();
    await reader.read();
    assert.ok(grove.server.repos.git.activeChildren >= 1);
    controller.abort();
    const deadline = Date.now() + 5000;
    while (grove.server.repos.git.activeChildren > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(grove.server.repos.git.activeChildren, 0);
  });

  it('lists a directory as JSON: the commit, entries with types, modes, shas and sizes', async () => {
    const root = await read(grove, 'acme/app', 'contents/');
    assert.equal(root.status, 200);
    assert.match(root.headers.get('content-type')!, /^application\/json/);
    assert.equal(root.json.type, 'dir');
    assert.equal(root.json.path, '');
    assert.equal(root.json.ref, 'main');
    assert.equal(root.json.sha, head);
    assert.equal(root.json.truncated, false);
    const byName = Object.fromEntries(root.json.entries.map((e: { name: string }) => [e.name, e]));
    assert.deepEqual(Object.keys(byName).sort(), ['README.md', 'big.bin', 'dir with space', 'empty.txt', 'link', 'run.sh', 'src']);
    assert.deepEqual(byName['README.md'], { name: 'README.md', path: 'README.md', type: 'file', mode: '100644', sha: await revParse(work.path, 'HEAD:README.md'), size: 21 });
    assert.equal(byName['run.sh'].mode, '100755');
    assert.equal(byName.link.type, 'symlink');
    assert.deepEqual(byName.src, { name: 'src', path: 'src', type: 'dir', mode: '040000', sha: await revParse(work.path, 'HEAD:src') });
    const nested = await read(grove, 'acme/app', `contents/${encodeURIComponent('dir with space')}?ref=main`);
    assert.deepEqual(nested.json.entries.map((e: { path: string }) => e.path), ['dir with space/ünï code.txt']);
    const file = await read(grove, 'acme/app', `contents/dir%20with%20space/${encodeURIComponent('ünï code.txt')}`);
    assert.equal(file.text, 'unicode\n');
    assert.equal((await read(grove, 'acme/app', 'contents')).json.type, 'dir');
  });

  it('answers 404 for a missing path, a path below a file, a missing ref, an empty repository and blaming a directory', async () => {
    assertCatalogueError(await read(grove, 'acme/app', 'contents/nope.txt'), 404, 'not_found');
    assertCatalogueError(await read(grove, 'acme/app', 'contents/README.md/x'), 404, 'not_found');
    assertCatalogueError(await read(grove, 'acme/app', 'contents/README.md?ref=nope'), 404, 'not_found');
    assertCatalogueError(await read(grove, 'acme/app', `contents/README.md?ref=${'f'.repeat(40)}`), 404, 'not_found');
    assertCatalogueError(await read(grove, 'acme/empty', 'contents/'), 404, 'not_found');
    assertCatalogueError(await read(grove, 'acme/nope', 'contents/'), 404, 'not_found');
    assertCatalogueError(await read(grove, 'acme/app', 'blame/src'), 404, 'not_found');
  });

  it('refuses refs that are options, ranges or expressions with 400 (never 500) and git writes no file', async () => {
    const target = path.join(work.path, 'written-by-git');
    for (const ref of [`--output=${target}`, '-n', '..', 'main..feature', 'main...feature', 'HEAD~1', 'main^', 'main:README.md', '@{-1}', 'main@{0}', 'a b', '', '/main']) {
      const response = await read(grove, 'acme/app', `contents/README.md?ref=${encodeURIComponent(ref)}`);
      assert.ok(response.status === 400 || response.status === 404, `${JSON.stringify(ref)}: ${response.status} ${response.text}`);
      assert.ok(response.json.error.code === 'invalid_request' || response.json.error.code === 'not_found', ref);
    }
    for (const rest of [`tree/--output=${encodeURIComponent(target)}`, `archive/--output=${encodeURIComponent(target)}.tar.gz`, `commits/--output=${encodeURIComponent(target)}`, `blame/README.md?ref=--output=${encodeURIComponent(target)}`, `commits?ref=--output=${encodeURIComponent(target)}`]) {
      assertCatalogueError(await read(grove, 'acme/app', rest), 400, 'invalid_request');
    }
    assert.equal(existsSync(target), false);
  });

  it('refuses . and .. and empty path components with 400', async () => {
    for (const rest of ['contents/src/../README.md', 'contents/./README.md', 'contents/src//app.ts', 'contents/%2E%2E/x', 'tree/main?path=..', 'blame/src/%2e%2e/README.md']) {
      assertCatalogueError(await rawGet(grove, `/api/v1/repos/acme/app/${rest}`), 400, 'invalid_request');
    }
  });

  it('lets a read key read, hides the repo from a key for another repo (404) and asks for credentials (401)', async () => {
    const key = await grove.sdk.apiKeys.create({ scope: 'read', resources: [{ org: 'acme', repo: 'app' }] });
    assert.equal((await read(grove, 'acme/app', 'contents/README.md', { token: key.token })).status, 200);
    assert.equal((await read(grove, 'acme/app', 'tree/main', { token: key.token })).status, 200);
    const other = await grove.sdk.apiKeys.create({ scope: 'admin', resources: [{ org: 'acme', repo: 'other' }] });
    for (const rest of ['contents/README.md', 'contents/', 'tree/main', 'archive/main.tar.gz', 'commits', `commits/${head}`, 'blame/README.md', 'compare/v1...main']) {
      assertCatalogueError(await read(grove, 'acme/app', rest, { token: other.token }), 404, 'not_found');
    }
    assertCatalogueError(await read(grove, 'acme/app', 'contents/README.md', { token: null }), 401, 'unauthorized');
  });

  it('lists a tree at a ref, one level or recursively with full paths, and truncates at the limit', async () => {
    const top = await read(grove, 'acme/app', 'tree/main');
    assert.equal(top.status, 200);
    assert.equal(top.json.sha, head);
    assert.equal(top.json.entries.length, 7);
    const src = await read(grove, 'acme/app', 'tree/main?path=src&recursive=true');
    assert.deepEqual(src.json.entries.map((e: { path: string; type: string }) => `${e.type}:${e.path}`), ['file:src/app.ts', 'dir:src/deep', 'file:src/deep/x.json']);
    assert.equal(src.json.truncated, false);
    const limited = await read(grove, 'acme/app', 'tree/main?recursive=true&limit=3');
    assert.equal(limited.json.entries.length, 3);
    assert.equal(limited.json.truncated, true);
    assert.deepEqual((await read(grove, 'acme/app', 'tree/feature/x')).json.entries.map((e: { name: string }) => e.name), ['README.md']);
    assertCatalogueError(await read(grove, 'acme/app', 'tree/main?path=README.md'), 404, 'not_found');
    assertCatalogueError(await read(grove, 'acme/app', 'tree/nope'), 404, 'not_found');
    assertCatalogueError(await read(grove, 'acme/app', 'tree/main?limit=0'), 400, 'invalid_request');
  });

  it('streams a .tar.gz archive of a ref that tar extracts, and a .zip', async () => {
    const response = await read(grove, 'acme/app', 'archive/feature/x.tar.gz');
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/gzip');
    assert.equal(response.headers.get('content-disposition'), 'attachment; filename="app-feature-x.tar.gz"');
    await using out = await tempDir();
    await writeFile(path.join(out.path, 'a.tar.gz'), response.body);
    const { execFileSync } = await import('node:child_process');
    execFileSync('tar', ['-xzf', 'a.tar.gz'], { cwd: out.path });
    assert.equal(await readFile(path.join(out.path, 'app-feature-x', 'README.md'), 'utf8'), 'hello v1\n');
    const zip = await read(grove, 'acme/app', 'archive/v1.zip');
    assert.equal(zip.headers.get('content-type'), 'application/zip');
    assert.equal(zip.body.subarray(0, 2).toString('latin1'), 'PK');
    assertCatalogueError(await read(grove, 'acme/app', 'archive/main.rar'), 404, 'not_found');
    assertCatalogueError(await read(grove, 'acme/app', 'archive/nope.tar.gz'), 404, 'not_found');
  });

  it('reads through the SDK: bytes and text, 304, ranges, streams, listings, and typed errors', async () => {
    const contents = grove.sdk.contents;
    const file = await contents.getFile('acme', 'app', 'README.md');
    assert.equal(new TextDecoder().decode(file.bytes), 'hello v2\nsecond line\n');
    assert.equal(file.commit, head);
    assert.equal(file.size, 21);
    assert.equal(await contents.getText('acme', 'app', 'README.md', { ref: 'v1' }), 'hello v1\n');
    const again = await contents.getFile('acme', 'app', 'README.md', { ifNoneMatch: file.etag! });
    assert.equal(again.notModified, true);
    assert.equal(again.bytes.length, 0);
    const part = await contents.getFile('acme', 'app', 'README.md', { range: { start: 6, end: 7 } });
    assert.deepEqual([part.status, new TextDecoder().decode(part.bytes), part.size, part.range], [206, 'v2', 21, { start: 6, end: 7 }]);
    const suffix = await contents.getFile('acme', 'app', 'big.bin', { range: { suffix: 4 } });
    assert.deepEqual(Buffer.from(suffix.bytes), big.subarray(BIG - 4));
    const stream = await contents.openFile('acme', 'app', 'src/deep/x.json');
    assert.equal(await new Response(stream.body).text(), '{"a":1}\n');
    const listing = await contents.list('acme', 'app', 'src');
    assert.deepEqual(listing.entries.map((e) => e.name), ['app.ts', 'deep']);
    const tree = await contents.tree('acme', 'app', 'main', { recursive: true });
    assert.ok(tree.entries.some((e) => e.path === 'src/deep/x.json'));
    await assert.rejects(contents.getFile('acme', 'app', 'src'), (e: unknown) => e instanceof GroveApiError && e.code === 'not_a_file');
    await assert.rejects(contents.list('acme', 'app', 'README.md'), (e: unknown) => e instanceof GroveApiError && e.code === 'not_a_directory');
    await assert.rejects(contents.getFile('acme', 'app', 'nope'), (e: unknown) => e instanceof GroveApiError && e.status === 404 && e.code === 'not_found');
    await assert.rejects(contents.getFile('acme', 'app', 'README.md', { range: { start: 500 } }), (e: unknown) => e instanceof GroveApiError && e.status === 416);
    const archive = await contents.archive('acme', 'app', 'v1');
    const bytes = Buffer.from(await new Response(archive).arrayBuffer());
    assert.equal(bytes[0], 0x1f);
    assert.equal(bytes[1], 0x8b);
  });

  it('documents the read routes in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${grove.url}/api/v1/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const paths = Object.keys(doc.paths);
    for (const route of ['contents/{*}', 'tree/{*}', 'archive/{*}', 'commits', 'commits/{sha}', 'blame/{*}', 'compare/{*}']) {
      assert.ok(paths.includes(`/api/v1/repos/{org}/{repo}/${route}`), `${route} missing from ${paths.join(', ')}`);
    }
  });
});

describe('read API under load', () => {
  it('answers 503 unavailable with Retry-After when no git process slot frees up in time; a stalled reader is cut off', async () => {
    const grove = await startTestServer({ GROVE_MAX_GIT_PROCESSES: '1', GROVE_QUEUE_TIMEOUT_MS: '300', GROVE_IDLE_TIMEOUT_MS: '1000' });
    await using work = await tempDir();
    try {
      await initWorkRepo(work.path);
      await commitFile(work.path, 'big.bin', Buffer.alloc(16 * 1024 * 1024), 'big (compresses to nothing: a quick push)');
      await pushAll(grove, await grove.createRepo('acme', 'busy'), work.path);
      // An unread 16 MB body keeps its git process (and the only slot) busy.
      const controller = new AbortController();
      const hog = await fetch(`${grove.url}/api/v1/repos/acme/busy/contents/big.bin`, { headers: { authorization: `Bearer ${grove.token}` }, signal: controller.signal });
      assert.equal(hog.status, 200);
      const response = await read(grove, 'acme/busy', 'contents/big.bin');
      assertCatalogueError(response, 503, 'unavailable');
      assert.equal(response.headers.get('retry-after'), '5');
      // The hog never reads: after the idle timeout its connection and its git process are gone.
      const deadline = Date.now() + 10_000;
      while (grove.server.repos.git.activeChildren > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(grove.server.repos.git.activeChildren, 0);
      assert.equal((await read(grove, 'acme/busy', 'contents/big.bin', { headers: { range: 'bytes=0-1' } })).status, 206);
      controller.abort();
    } finally {
      await grove.close();
    }
  });
});
