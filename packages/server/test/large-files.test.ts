import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import http from 'node:http';
import { Grove, GroveApiError } from '@grove/sdk';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';
import { assertCatalogueError, pushAll, rawGet, read, revParse } from './helpers/read-api.ts';
import { noise, withEdits } from './helpers/big-files.ts';
import { GROVE_BIN } from './helpers/cli.ts';
import { daemonEnv, startDaemon, stopDaemon } from './helpers/daemon.ts';
import { execFile } from 'node:child_process';
import { BIG_BLOB_BYTES } from '../src/repo/big-blob.ts';

/** 3 MiB of bytes that do not compress: big enough to span many stream chunks. */
function patterned(size: number): Buffer {
  const buffer = Buffer.alloc(size);
  for (let i = 0; i + 4 <= buffer.length; i += 4) buffer.writeUInt32LE((i * 2654435761) >>> 0, i);
  return buffer;
}

/** A HEAD request (fetch would hide a missing body's Content-Length). */
function head(grove: TestServer, urlPath: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; bytes: number }> {
  const { hostname, port } = new URL(grove.url);
  return new Promise((resolve, reject) => {
    const request = http.request({ host: hostname, port, path: urlPath, method: 'HEAD', headers: { authorization: `Bearer ${grove.token}` } }, (response) => {
      let bytes = 0;
      response.on('data', (chunk: Buffer) => (bytes += chunk.length));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, bytes }));
    });
    request.on('error', reject);
    request.end();
  });
}

describe('blobs by object id', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const data = patterned(3 * 1024 * 1024 + 17);
  let dataOid: string;
  let readmeOid: string;
  let treeOid: string;
  let commitOid: string;

  before(async () => {
    grove = await startTestServer();
    work = await tempDir();
    await initWorkRepo(work.path);
    await commitFile(work.path, 'README.md', 'hello\n', 'readme');
    await commitFile(work.path, 'data.bin', data, 'data');
    dataOid = await revParse(work.path, 'HEAD:data.bin');
    readmeOid = await revParse(work.path, 'HEAD:README.md');
    treeOid = await revParse(work.path, 'HEAD^{tree}');
    commitOid = await revParse(work.path, 'HEAD');
    await pushAll(grove, await grove.createRepo('blobs', 'app'), work.path);
    await grove.createRepo('blobs', 'other');
  });

  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  it('answers a blob with its bytes, octet-stream, the oid as ETag, immutable caching and Accept-Ranges', async () => {
    const response = await read(grove, 'blobs/app', `blobs/${dataOid}`);
    assert.equal(response.status, 200);
    assert.ok(response.body.equals(data));
    assert.equal(response.headers.get('content-type'), 'application/octet-stream');
    assert.equal(response.headers.get('etag'), `"${dataOid}"`);
    assert.equal(response.headers.get('cache-control'), 'private, max-age=31536000, immutable');
    assert.equal(response.headers.get('accept-ranges'), 'bytes');
    assert.equal(response.headers.get('content-length'), String(data.length));
  });

  it('answers one byte range with 206 and Content-Range, a suffix range, and an open-ended range', async () => {
    const middle = await read(grove, 'blobs/app', `blobs/${dataOid}`, { headers: { range: 'bytes=1048576-2097151' } });
    assert.equal(middle.status, 206);
    assert.equal(middle.headers.get('content-range'), `bytes 1048576-2097151/${data.length}`);
    assert.ok(middle.body.equals(data.subarray(1048576, 2097152)));
    const last = await read(grove, 'blobs/app', `blobs/${dataOid}`, { headers: { range: 'bytes=-5' } });
    // Once seen failing in a CI pass and never reproduced (400 tries): say what came back if it does again.
    assert.ok(last.body.equals(data.subarray(data.length - 5)), `HTTP ${last.status}, ${last.body.length} bytes, content-range ${last.headers.get('content-range')}: ${last.text.slice(0, 300)}`);
    const tail = await read(grove, 'blobs/app', `blobs/${dataOid}`, { headers: { range: `bytes=${data.length - 100}-` } });
    assert.equal(tail.status, 206);
    assert.ok(tail.body.equals(data.subarray(data.length - 100)));
  });

  it('answers 304 to If-None-Match with the ETag, and 416 with Content-Range for a range past the end', async () => {
    const again = await read(grove, 'blobs/app', `blobs/${dataOid}`, { headers: { 'if-none-match': `"${dataOid}"` } });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    const past = await read(grove, 'blobs/app', `blobs/${dataOid}`, { headers: { range: `bytes=${data.length}-` } });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), `bytes */${data.length}`);
    assert.equal(JSON.parse(past.body.toString()).error.code, 'range_not_satisfiable');
  });

  it('answers HEAD with the size and the ETag and no bytes', async () => {
    const response = await head(grove, `/api/v1/repos/blobs/app/blobs/${dataOid}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-length'], String(data.length));
    assert.equal(response.headers.etag, `"${dataOid}"`);
    assert.equal(response.bytes, 0);
  });

  it('answers 404 for an unknown id, a tree and a commit, and 400 for an id that is not 40 hex digits', async () => {
    assertCatalogueError(await rawGet(grove, `/api/v1/repos/blobs/app/blobs/${'0'.repeat(40)}`), 404, 'not_found');
    assertCatalogueError(await rawGet(grove, `/api/v1/repos/blobs/app/blobs/${treeOid}`), 404, 'not_found');
    assertCatalogueError(await rawGet(grove, `/api/v1/repos/blobs/app/blobs/${commitOid}`), 404, 'not_found');
    assertCatalogueError(await rawGet(grove, `/api/v1/repos/blobs/app/blobs/${dataOid.slice(0, 12)}`), 400, 'invalid_request');
    assertCatalogueError(await rawGet(grove, `/api/v1/repos/blobs/app/blobs/${dataOid.toUpperCase()}`), 400, 'invalid_request');
  });

  it("does not serve another repository's blob by its id, and a key limited to one repository sees only that one", async () => {
    assertCatalogueError(await rawGet(grove, `/api/v1/repos/blobs/other/blobs/${readmeOid}`), 404, 'not_found');
    const key = await grove.sdk.apiKeys.create({ scope: 'read', resources: [{ org: 'blobs', repo: 'other' }] });
    const limited = new Grove({ baseUrl: grove.url, token: key.token });
    await assert.rejects(limited.blobs.read('blobs', 'app', readmeOid), (error: unknown) => error instanceof GroveApiError && error.status === 404);
  });

  it('reads a blob and a range of it with grove.blobs.read, and its size with grove.blobs.stat', async () => {
    const whole = await grove.sdk.blobs.read('blobs', 'app', readmeOid);
    assert.equal(new TextDecoder().decode(whole.bytes), 'hello\n');
    assert.equal(whole.etag, `"${readmeOid}"`);
    const part = await grove.sdk.blobs.read('blobs', 'app', dataOid, { range: { start: 10, end: 19 } });
    assert.equal(part.status, 206);
    assert.deepEqual(part.range, { start: 10, end: 19 });
    assert.equal(part.size, data.length);
    assert.ok(Buffer.from(part.bytes).equals(data.subarray(10, 20)));
    assert.deepEqual(await grove.sdk.blobs.stat('blobs', 'app', dataOid), { oid: dataOid, size: data.length, etag: `"${dataOid}"` });
    assert.equal((await grove.sdk.blobs.read('blobs', 'app', dataOid, { ifNoneMatch: `"${dataOid}"` })).notModified, true);
    await assert.rejects(grove.sdk.blobs.stat('blobs', 'app', '0'.repeat(40)), (error: unknown) => error instanceof GroveApiError && error.status === 404);
    await assert.rejects(grove.sdk.blobs.read('blobs', 'app', 'not-an-id'), (error: unknown) => error instanceof GroveApiError && error.status === 400 && error.code === 'invalid_request');
  });

  it('downloads a blob whole with grove.blobs.download, and resumes one from an offset', async () => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of grove.sdk.blobs.download('blobs', 'app', dataOid)) chunks.push(chunk);
    assert.ok(Buffer.concat(chunks).equals(data));
    const rest: Uint8Array[] = [];
    for await (const chunk of grove.sdk.blobs.download('blobs', 'app', dataOid, { start: 2_000_000 })) rest.push(chunk);
    assert.ok(Buffer.concat(rest).equals(data.subarray(2_000_000)));
    const none: Uint8Array[] = [];
    for await (const chunk of grove.sdk.blobs.download('blobs', 'app', dataOid, { start: data.length })) none.push(chunk);
    assert.equal(none.length, 0, 'a download that already has every byte gets nothing more');
    await assert.rejects(async () => {
      for await (const chunk of grove.sdk.blobs.download('blobs', 'app', dataOid, { start: data.length + 1 })) void chunk;
    }, (error: unknown) => error instanceof GroveApiError && error.status === 416);
  });

  it('is described in the OpenAPI document with its 206, 304 and 416 answers', async () => {
    const doc = (await (await fetch(`${grove.url}/api/v1/openapi.json`)).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    const route = doc.paths['/api/v1/repos/{org}/{repo}/blobs/{oid}'];
    assert.ok(route?.get, 'GET blobs/{oid} is documented');
    for (const status of ['200', '206', '304', '404', '416']) assert.ok(status in route.get.responses, `answer ${status} is documented`);
  });

  it('resumes a download whose connection drops, yielding every byte once', async () => {
    // A proxy that cuts the first answer after 1 MiB, then passes the rest through.
    const { hostname, port } = new URL(grove.url);
    let cut = false;
    const ranges: string[] = [];
    const proxy = http.createServer((request, response) => {
      ranges.push(String(request.headers.range));
      const upstream = http.request({ host: hostname, port, path: request.url, method: request.method, headers: request.headers }, (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (!cut && sent + chunk.length > 1024 * 1024) {
            cut = true;
            answer.destroy();
            response.write(chunk.subarray(0, 1024 * 1024 - sent), () => response.destroy());
            return;
          }
          sent += chunk.length;
          response.write(chunk);
        });
        answer.on('end', () => response.end());
      });
      request.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const address = proxy.address() as { port: number };
      const client = new Grove({ baseUrl: `http://127.0.0.1:${address.port}`, token: grove.token });
      const chunks: Uint8Array[] = [];
      for await (const chunk of client.blobs.download('blobs', 'app', dataOid)) chunks.push(chunk);
      assert.ok(Buffer.concat(chunks).equals(data), 'the bytes after the resume match');
      assert.equal(ranges.length, 2, `one reconnection: ${ranges.join(', ')}`);
      assert.equal(ranges[0], 'bytes=0-');
      const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1]!)?.[1]);
      assert.ok(resumedAt > 0 && resumedAt <= 1024 * 1024, `resumed after the bytes it had (${ranges[1]})`);
    } finally {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});

describe('big blobs (50 MiB or more) in the read API', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const size = 50 * 1024 * 1024 + 1;
  let oid: string;
  let added: string;
  let renamed: string;
  let edited: string;

  before(async () => {
    grove = await startTestServer();
    work = await tempDir();
    await initWorkRepo(work.path);
    const lines = Buffer.alloc(size, 'x\n');
    await commitFile(work.path, 'huge.txt', lines, 'huge');
    oid = await revParse(work.path, 'HEAD:huge.txt');
    added = await revParse(work.path, 'HEAD');
    await gitOk(['mv', 'huge.txt', 'moved.txt'], { cwd: work.path });
    await gitOk(['commit', '-q', '-m', 'rename'], { cwd: work.path });
    renamed = await revParse(work.path, 'HEAD');
    await gitOk(['mv', 'moved.txt', 'edited.txt'], { cwd: work.path });
    await writeFile(path.join(work.path, 'edited.txt'), Buffer.concat([Buffer.from('y\n'), lines.subarray(2)]));
    await gitOk(['commit', '-q', '-am', 'rename and edit'], { cwd: work.path });
    edited = await revParse(work.path, 'HEAD');
    // Two branches from `added` that change the big file in different places (a clean textual merge).
    for (const [branch, at] of [['left', 0], ['right', size - 2]] as const) {
      await gitOk(['checkout', '-q', '-b', branch, added], { cwd: work.path });
      const changed = Buffer.from(lines);
      changed.write('z', at);
      await writeFile(path.join(work.path, 'huge.txt'), changed);
      await gitOk(['commit', '-q', '-am', `${branch} edit`], { cwd: work.path });
    }
    await gitOk(['checkout', '-q', 'main'], { cwd: work.path });
    await pushAll(grove, await grove.createRepo('big', 'app'), work.path);
  });

  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  it('lists a big file in a commit as binary with its sizes, finds its exact rename, and does not score an edited one as a rename (that would read it whole)', async () => {
    const first = await grove.sdk.contents.commit('big', 'app', added);
    assert.deepEqual(first.files.map((f) => [f.path, f.status, f.binary, f.oldSize, f.newSize]), [['huge.txt', 'added', true, undefined, size]]);
    const rename = await grove.sdk.contents.commit('big', 'app', renamed);
    assert.deepEqual(rename.files.map((f) => [f.previousPath, f.path, f.status]), [['huge.txt', 'moved.txt', 'renamed']]);
    const edit = await grove.sdk.contents.commit('big', 'app', edited);
    assert.deepEqual(edit.files.map((f) => [f.path, f.status, f.binary, f.oldSize, f.newSize]).sort(), [['edited.txt', 'added', true, undefined, size], ['moved.txt', 'deleted', true, size, undefined]]);
    const comparison = await grove.sdk.diffs.compare('big', 'app', added, edited);
    assert.deepEqual(comparison.files.map((f) => [f.path, f.status, f.oldSize, f.newSize]).sort(), [['edited.txt', 'added', undefined, size], ['huge.txt', 'deleted', size, undefined]]);
  });

  it('serves a partial clone that leaves big files out (--filter=blob:limit=50m), then the blob a checkout asks for lazily', async () => {
    const target = path.join(work.path, 'partial');
    const url = `${grove.url}/big/app.git`;
    await gitOk([...auth(grove.token), 'clone', '-q', '--no-checkout', '--filter=blob:limit=50m', url, target]);
    const missing = await gitOk(['rev-list', '--objects', '--missing=print', 'HEAD'], { cwd: target });
    assert.ok(missing.split('\n').some((line) => line.startsWith('?')), 'the big blob was left out of the clone');
    await gitOk([...auth(grove.token), 'checkout', '-q', 'main'], { cwd: target });
    const { size: checkedOut } = await stat(path.join(target, 'edited.txt'));
    assert.equal(checkedOut, size);
    await gitOk(['fsck', '--strict'], { cwd: target });
  });

  it('reports a big file changed on both sides as a binary conflict (no hunks) instead of merging it as text, for merge and rebase, and changes nothing', async () => {
    const before = await grove.sdk.branches.get('big', 'app', 'left');
    for (const strategy of ['merge', 'squash', 'rebase'] as const) {
      await assert.rejects(grove.sdk.merges.merge('big', 'app', { base: 'left', head: 'right', strategy }), (error: unknown) => {
        assert.ok(error instanceof GroveApiError, String(error));
        assert.equal(error.status, 409, `${strategy}: ${error.message}`);
        assert.equal(error.code, 'merge_conflict');
        const conflicts = (error.details as { conflicts: { path: string; hunks: unknown[]; stages: Record<string, string> }[] }).conflicts;
        assert.deepEqual(conflicts.map((c) => [c.path, c.hunks.length, Object.keys(c.stages).sort()]), [['huge.txt', 0, ['base', 'ours', 'theirs']]]);
        return true;
      });
    }
    assert.deepEqual(await grove.sdk.branches.get('big', 'app', 'left'), before);
  });

  it('refuses to blame a big file with 422 naming its size, and still serves ranges of it by path and by id', async () => {
    assertCatalogueError(await rawGet(grove, '/api/v1/repos/big/app/blame/edited.txt'), 422, 'unprocessable');
    const byPath = await read(grove, 'big/app', `contents/huge.txt?ref=${added}`, { headers: { range: `bytes=${size - 4}-` } });
    assert.equal(byPath.status, 206);
    assert.equal(byPath.body.toString(), '\nx\nx');
    const byId = await grove.sdk.blobs.read('big', 'app', oid, { range: { start: 40 * 1024 * 1024, end: 40 * 1024 * 1024 + 3 } });
    assert.equal(new TextDecoder().decode(byId.bytes), 'x\nx\n');
  });
});

describe('the chunk store behind the read API', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const version1 = noise(BIG_BLOB_BYTES + 2 * 1024 * 1024 + 3, 21);
  const version2 = withEdits(version1, 8);
  let oid1: string;
  let oid2: string;
  let smallOid: string;
  let commit1: string;

  before(async () => {
    grove = await startTestServer();
    work = await tempDir();
    await initWorkRepo(work.path);
    await commitFile(work.path, 'README.md', 'weights\n', 'readme');
    smallOid = await revParse(work.path, 'HEAD:README.md');
    commit1 = await commitFile(work.path, 'model.bin', version1, 'model v1');
    oid1 = await revParse(work.path, 'HEAD:model.bin');
    await pushAll(grove, await grove.createRepo('store', 'models'), work.path);
    // Version 1 in the store first: the second push is a small delta, scanned because the repository is known to hold big blobs.
    await grove.server.bigstore.idle();
    await writeFile(path.join(work.path, 'model.bin'), version2);
    await gitOk(['commit', '-q', '-am', 'model v2'], { cwd: work.path });
    oid2 = await revParse(work.path, 'HEAD:model.bin');
    await pushAll(grove, `${grove.url}/store/models.git`, work.path);
    await grove.server.bigstore.idle();
  });

  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  it('takes in the big blobs a push brings, before anyone reads them, and the second version adds only its changed chunks', () => {
    assert.equal(grove.server.bigstore.has(oid1), true);
    assert.equal(grove.server.bigstore.has(oid2), true);
    assert.equal(grove.server.bigstore.stats.ingested, 2);
    assert.ok(grove.server.bigstore.stats.storedBytes < version1.length + 8 * 3 * 128 * 1024, `${grove.server.bigstore.stats.storedBytes} bytes stored for two versions`);
  });

  it('serves ranges of a big blob by id and by path from the store, byte for byte', async () => {
    const reads = grove.server.bigstore.stats.rangeReads;
    for (const start of [0, 1_234_567, version2.length - 10]) {
      const end = Math.min(version2.length - 1, start + 1024 * 1024);
      const byId = await grove.sdk.blobs.read('store', 'models', oid2, { range: { start, end } });
      assert.ok(Buffer.from(byId.bytes).equals(version2.subarray(start, end + 1)), `by id at ${start}`);
    }
    const byPath = await read(grove, 'store/models', `contents/model.bin?ref=${commit1}`, { headers: { range: 'bytes=50000000-50000099' } });
    assert.equal(byPath.status, 206);
    assert.ok(byPath.body.equals(version1.subarray(50_000_000, 50_000_100)));
    const whole = await read(grove, 'store/models', `blobs/${oid1}`);
    assert.ok(whole.body.equals(version1));
    assert.equal(grove.server.bigstore.stats.rangeReads, reads + 5, 'every read came from the chunk store');
  });

  it('lists a big blob\'s chunks, and answers 422 for a small blob, 404 for an unknown one and 400 for a malformed id', async () => {
    const listing = await grove.sdk.blobs.chunks('store', 'models', oid2);
    assert.equal(listing.size, version2.length);
    assert.equal(listing.chunks.reduce((sum, c) => sum + c.length, 0), version2.length);
    assertCatalogueError(await rawGet(grove, `/api/v1/repos/store/models/blobs/${smallOid}/chunks`), 422, 'unprocessable');
    assertCatalogueError(await rawGet(grove, `/api/v1/repos/store/models/blobs/${'0'.repeat(40)}/chunks`), 404, 'not_found');
    assertCatalogueError(await rawGet(grove, '/api/v1/repos/store/models/blobs/HEAD/chunks'), 400, 'invalid_request');
  });

  it('does not serve a big blob the store holds to another repository that does not hold it, by id, range or chunk listing', async () => {
    await grove.createRepo('store', 'stranger');
    assertCatalogueError(await rawGet(grove, `/api/v1/repos/store/stranger/blobs/${oid1}`), 404, 'not_found');
    assertCatalogueError(await rawGet(grove, `/api/v1/repos/store/stranger/blobs/${oid1}/chunks`), 404, 'not_found');
    const range = await read(grove, 'store/stranger', `blobs/${oid1}`, { headers: { range: 'bytes=0-99' } });
    assert.equal(range.status, 404);
    assert.equal(grove.server.bigstore.has(oid1), true, 'the store does hold it');
  });

  it('downloads a new version with grove.blobs.downloadReusing, fetching only the chunks the old version lacks', async () => {
    const previous = { size: version1.length, read: async (offset: number, length: number) => version1.subarray(offset, offset + length) };
    const parts: Buffer[] = [];
    let downloaded = 0;
    for await (const piece of grove.sdk.blobs.downloadReusing('store', 'models', oid2, previous)) {
      parts.push(Buffer.from(piece.bytes));
      if (!piece.reused) downloaded += piece.bytes.length;
    }
    assert.ok(Buffer.concat(parts).equals(version2));
    assert.ok(downloaded > 0 && downloaded <= 8 * 3 * 128 * 1024, `${downloaded} bytes downloaded of ${version2.length}`);
  });

  it('downloads every chunk, each checked against its hash, when the previous version shares none', async () => {
    const unrelated = noise(1024 * 1024, 99);
    const previous = { size: unrelated.length, read: async (offset: number, length: number) => unrelated.subarray(offset, offset + length) };
    const parts: Buffer[] = [];
    for await (const piece of grove.sdk.blobs.downloadReusing('store', 'models', oid1, previous)) {
      assert.equal(piece.reused, false);
      parts.push(Buffer.from(piece.bytes));
    }
    assert.ok(Buffer.concat(parts).equals(version1));
  });

  it('reports what the store holds and did on /metrics', async () => {
    const text = await (await fetch(`${grove.url}/metrics`)).text();
    const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
    assert.ok(value('grove_bigstore_ingests{result="stored"}') >= 2, text);
    assert.ok(value('grove_bigstore_reads') >= 5);
    assert.ok(value('grove_bigstore_bytes{kind="logical"}') > 0);
  });

  it('is described in the OpenAPI document with the chunk listing', async () => {
    const document = (await (await fetch(`${grove.url}/api/v1/openapi.json`)).json()) as { paths: Record<string, { get?: { responses: Record<string, unknown> } }> };
    const listing = document.paths['/api/v1/repos/{org}/{repo}/blobs/{oid}/chunks'];
    assert.ok(listing?.get, 'the chunk listing is documented');
    assert.deepEqual(['200', '400', '404', '422', '503'].filter((status) => listing.get!.responses[status] === undefined), []);
  });

  it('links a fork to its source\'s big blobs, so they outlive the source in the store, and collects them with the last repository', async () => {
    await grove.sdk.repos.fork('store', 'fork', 'store/models');
    const range = await grove.sdk.blobs.read('store', 'fork', oid1, { range: { start: 10, end: 19 } });
    assert.ok(Buffer.from(range.bytes).equals(version1.subarray(10, 20)));
    await grove.sdk.repos.delete('store', 'models');
    await grove.server.sweep();
    assert.equal(grove.server.bigstore.has(oid1), true, 'the fork keeps version 1');
    assert.equal(grove.server.bigstore.has(oid2), true, 'and version 2');
    const whole = await read(grove, 'store/fork', `blobs/${oid2}`);
    assert.ok(whole.body.equals(version2), 'the fork reads it after its source is gone');
    await grove.sdk.repos.delete('store', 'fork');
    await grove.server.sweep();
    assert.equal(grove.server.bigstore.has(oid1), false, 'nothing keeps version 1 now');
    assert.equal(grove.server.bigstore.has(oid2), false);
  });
});

describe('the chunk store from the command line', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const version1 = noise(BIG_BLOB_BYTES + 1024 * 1024, 31);
  const version2 = withEdits(version1, 4);
  let oid2: string;

  before(async () => {
    grove = await startTestServer();
    work = await tempDir();
    await initWorkRepo(work.path);
    await commitFile(work.path, 'data.bin', version1, 'v1');
    await writeFile(path.join(work.path, 'data.bin'), version2);
    await gitOk(['commit', '-q', '-am', 'v2'], { cwd: work.path });
    oid2 = await revParse(work.path, 'HEAD:data.bin');
    await pushAll(grove, await grove.createRepo('cli', 'data'), work.path);
    await writeFile(path.join(work.path, 'old.bin'), version1);
  });

  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  const run = (args: string[]) => new Promise<{ code: number; stdout: Buffer; stderr: string }>((resolve) => {
    execFile(process.execPath, [GROVE_BIN, ...args], { env: { PATH: process.env.PATH, GROVE_URL: grove.url, GROVE_TOKEN: grove.token }, encoding: 'buffer', maxBuffer: 128 * 1024 * 1024, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr: stderr.toString() });
    });
  });

  it('grove cat --blob --reuse rebuilds a new version from an old file, downloading only what changed', async () => {
    const result = await run(['cat', 'cli/data', oid2, '--blob', '--reuse', path.join(work.path, 'old.bin')]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.stdout.equals(version2));
    const [, reused, downloaded] = /(\d+) bytes reused .*, (\d+) downloaded/.exec(result.stderr) ?? [];
    assert.equal(Number(reused) + Number(downloaded), version2.length);
    assert.ok(Number(downloaded) <= 4 * 3 * 128 * 1024, result.stderr);
  });

  it('grove chunks prints the listing; --reuse without --blob, or with --range, is refused', async () => {
    const listing = JSON.parse((await run(['chunks', 'cli/data', oid2])).stdout.toString()) as { size: number; chunks: unknown[] };
    assert.equal(listing.size, version2.length);
    assert.ok(listing.chunks.length > 100);
    for (const args of [['cat', 'cli/data', 'data.bin', '--reuse', 'x'], ['cat', 'cli/data', oid2, '--blob', '--range', '0-1', '--reuse', 'x']]) {
      const refused = await run(args);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /--reuse needs --blob/);
    }
  });
});

describe('the chunk store in a grove serve process', () => {
  it('takes a pushed big blob in (its worker thread loads the same sources as the server) and lists its chunks', async () => {
    await using work = await tempDir();
    const token = 'grove_test_admin_token_for_bigstore_0123';
    const daemon = await startDaemon({ dataDir: path.join(work.path, 'data'), env: daemonEnv({ GROVE_ADMIN_TOKEN: token }), waitFor: 'grove is listening' });
    try {
      const sdk = new Grove({ baseUrl: daemon.url, token });
      await sdk.orgs.create({ name: 'served' });
      await sdk.repos.create('served', { name: 'data' });
      const repo = path.join(work.path, 'repo');
      await initWorkRepo(repo);
      await commitFile(repo, 'big.bin', noise(BIG_BLOB_BYTES, 41), 'big');
      const oid = await revParse(repo, 'HEAD:big.bin');
      await gitOk([...auth(token), 'push', '-q', `${daemon.url}/served/data.git`, 'main'], { cwd: repo });
      let listing: Awaited<ReturnType<typeof sdk.blobs.chunks>> | null = null;
      for (let attempt = 0; listing === null && attempt < 20; attempt++) {
        listing = await sdk.blobs.chunks('served', 'data', oid).catch((error: unknown) => {
          if (error instanceof GroveApiError && error.status === 503) return null;
          throw error;
        });
      }
      assert.ok(listing !== null, `no chunk listing:\n${daemon.output()}`);
      assert.equal(listing.size, BIG_BLOB_BYTES);
      assert.doesNotMatch(daemon.output(), /chunk store worker failed/);
    } finally {
      await stopDaemon(daemon);
    }
  });
});
