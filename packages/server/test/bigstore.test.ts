import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, stat, writeFile, appendFile } from 'node:fs/promises';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { buffer } from 'node:stream/consumers';
import { Bigstore } from '../src/bigstore/bigstore.ts';
import { BIG_BLOB_BYTES } from '../src/repo/big-blob.ts';
import { gitOk, tempDir } from './helpers/git.ts';
import { noise, withEdits } from './helpers/big-files.ts';

const quiet = { warn: () => undefined, info: () => undefined, debug: () => undefined };

/** Writes `bytes` into the bare repository as a loose blob; returns its oid. */
async function addBlob(gitDir: string, dir: string, bytes: Buffer): Promise<string> {
  const file = path.join(dir, `blob-${Math.random().toString(36).slice(2)}`);
  await writeFile(file, bytes);
  return (await gitOk(['--git-dir', gitDir, 'hash-object', '-w', file])).trim();
}

async function readAll(store: Bigstore, oid: string, range: { start: number; end: number } | null = null): Promise<Buffer> {
  return buffer(store.open(oid, range));
}

describe('the chunk store of big blobs', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let gitDir: string;
  let store: Bigstore;
  const size = BIG_BLOB_BYTES + 3 * 1024 * 1024 + 5;
  // Half noise, half text: both frame kinds (stored and deflated) in one blob.
  const version1 = Buffer.concat([noise(size / 2 + 0.5 - 0.5 - ((size % 2) / 2), 1), Buffer.alloc(size - Math.floor(size / 2), 'row,42,hello\n')]);
  const version2 = withEdits(version1, 16);
  let oid1: string;
  let oid2: string;

  before(async () => {
    work = await tempDir();
    gitDir = path.join(work.path, 'repo.git');
    await gitOk(['init', '-q', '--bare', gitDir]);
    oid1 = await addBlob(gitDir, work.path, version1);
    oid2 = await addBlob(gitDir, work.path, version2);
    store = new Bigstore(path.join(work.path, 'store'), path.join(work.path, 'home'), quiet);
  });

  after(async () => {
    await store.close();
    await work[Symbol.asyncDispose]();
  });

  it('stores a big blob and reads it back whole and at any range, byte for byte', async () => {
    const outcome = await store.ingest('repo-a', gitDir, oid1);
    assert.equal(outcome.kind, 'stored');
    assert.equal(store.has(oid1), true);
    assert.ok((await readAll(store, oid1)).equals(version1));
    for (const [start, end] of [[0, 0], [12_345, 1_060_000], [size - 1, size - 1], [size / 2 - 70_000, size / 2 + 70_000], [size - 1_000_000, size - 1]]) {
      const s = Math.floor(start!);
      const e = Math.floor(end!);
      assert.ok((await readAll(store, oid1, { start: s, end: e })).equals(version1.subarray(s, e + 1)), `range ${s}-${e}`);
    }
  });

  it('compresses what compresses: the text half of the blob takes a small part of its size', async () => {
    const totals = store.stats;
    assert.ok(totals.storedBytes < size * 0.6, `stored ${totals.storedBytes} of ${size}`);
  });

  it('stores a second version with 16 small rewrites in a few new chunks, not a second copy', async () => {
    const outcome = await store.ingest('repo-a', gitDir, oid2);
    assert.equal(outcome.kind, 'stored');
    if (outcome.kind !== 'stored') return;
    assert.ok(outcome.newChunks <= 16 * 3, `${outcome.newChunks} new chunks of ${outcome.chunks}`);
    assert.ok(outcome.storedBytes < 16 * 3 * 128 * 1024, `stored ${outcome.storedBytes} bytes`);
    assert.ok((await readAll(store, oid2)).equals(version2));
  });

  it('links a blob it already holds to another repository without storing it again', async () => {
    assert.deepEqual(await store.ingest('repo-b', gitDir, oid1), { kind: 'linked', oid: oid1 });
  });

  it('stores an uploaded file under the oid of its bytes, and links one it already holds without keeping new frames', async () => {
    const file = path.join(work.path, 'upload-v1');
    await writeFile(file, version1);
    const before = store.totals()!;
    assert.deepEqual(await store.ingestFile('repo-upload', file), { oid: oid1, size });
    assert.deepEqual(store.totals(), before, 'nothing new was stored');
    assert.notEqual(store.heldFor('repo-upload', oid1), null);
    await writeFile(file, 'small');
    await assert.rejects(store.ingestFile('repo-upload', file), /not big/);
    await store.forgetRepository('repo-upload');
  });

  it('does not link a blob it holds to a repository whose git does not hold it', async () => {
    const empty = path.join(work.path, 'empty.git');
    await gitOk(['init', '-q', '--bare', empty]);
    assert.equal((await store.ingest('repo-c', empty, oid1)).kind, 'skipped');
    assert.equal(store.heldFor('repo-c', oid1), null);
    assert.notEqual(store.heldFor('repo-b', oid1), null);
  });

  it('lists a blob as chunks that cover it exactly, each named by the SHA-256 of its bytes', () => {
    const listing = store.chunkListing(oid2)!;
    assert.equal(listing.size, size);
    let offset = 0;
    for (const chunk of listing.chunks) {
      assert.equal(chunk.offset, offset);
      assert.equal(chunk.hash, createHash('sha256').update(version2.subarray(offset, offset + chunk.length)).digest('hex'));
      offset += chunk.length;
    }
    assert.equal(offset, size);
  });

  it('skips a blob under 50 MiB and an id that is not a blob of the repository', async () => {
    const small = await addBlob(gitDir, work.path, Buffer.from('small'));
    assert.equal((await store.ingest('repo-a', gitDir, small)).kind, 'skipped');
    assert.equal((await store.ingest('repo-a', gitDir, 'f'.repeat(40))).kind, 'skipped');
    assert.equal(store.has(small), false);
  });

  it('refuses bytes that do not hash to the oid (a damaged object) and stores nothing of them', async () => {
    // A loose object whose file holds other bytes than its name says: git reads it without checking.
    const honest = noise(BIG_BLOB_BYTES + 10, 77);
    const oid = await addBlob(gitDir, work.path, honest);
    const forged = withEdits(honest, 1);
    const file = path.join(gitDir, 'objects', oid.slice(0, 2), oid.slice(2));
    await writeFile(file, deflateSync(Buffer.concat([Buffer.from(`blob ${forged.length}\0`), forged])));
    const before = (await readdir(path.join(store.dir, 'segments'))).length;
    const sizeBefore = await segmentBytes(store.dir);
    await assert.rejects(store.ingest('repo-a', gitDir, oid), /hash to/);
    assert.equal(store.has(oid), false);
    assert.equal((await readdir(path.join(store.dir, 'segments'))).length, before);
    assert.equal(await segmentBytes(store.dir), sizeBefore, 'the frames of the refused blob were cut off');
  });

  it('collects a deleted repository\'s blobs, keeps those another repository links, and compacts emptied segments', async () => {
    await store.forgetRepository('repo-b');
    assert.deepEqual(await store.collect(), { blobsDeleted: 0, chunksDeleted: 0, segmentsCompacted: 0, bytesFreed: 0 });
    await store.forgetRepository('repo-a');
    const report = await store.collect();
    assert.equal(report.blobsDeleted, 2);
    assert.ok(report.chunksDeleted > 300, `${report.chunksDeleted} chunks deleted`);
    assert.equal(store.has(oid1), false);
    assert.equal(await segmentBytes(store.dir), 0, 'no segment bytes are left');
  });
});

describe('the chunk store after a crash', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    work = await tempDir();
  });

  after(async () => {
    await work[Symbol.asyncDispose]();
  });

  it('holds a blob killed (SIGKILL) mid-ingest either whole or not at all, and stores it whole on the next try', async () => {
    const gitDir = path.join(work.path, 'repo.git');
    await gitOk(['init', '-q', '--bare', gitDir]);
    const bytes = noise(BIG_BLOB_BYTES * 2, 5);
    const oid = await addBlob(gitDir, work.path, bytes);
    const storeDir = path.join(work.path, 'store');
    await mkdir(storeDir, { recursive: true });
    const script = path.join(work.path, 'ingest.ts');
    await writeFile(script, `
      import { Bigstore } from ${JSON.stringify(path.resolve('packages/server/src/bigstore/bigstore.ts'))};
      const store = new Bigstore(${JSON.stringify(storeDir)}, ${JSON.stringify(path.join(work.path, 'home'))}, { warn() {}, info() {}, debug() {} });
      process.stdout.write('started\\n');
      await store.ingest('repo', ${JSON.stringify(gitDir)}, ${JSON.stringify(oid)});
    `);
    const child = spawn(process.execPath, ['--conditions=grove-source', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    // Until the first frames are on disk, then kill it mid-blob.
    const segments = path.join(storeDir, 'segments');
    for (let i = 0; i < 500 && (await segmentBytes(storeDir).catch(() => 0)) < 20 * 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.ok((await readdir(segments)).length > 0, 'the ingest had written frames');

    const store = new Bigstore(storeDir, path.join(work.path, 'home'), quiet);
    try {
      assert.equal(store.has(oid), false, 'an uncommitted blob is not readable');
      await store.ingest('repo', gitDir, oid);
      assert.ok((await buffer(store.open(oid, null))).equals(bytes));
      assert.ok(await segmentBytes(storeDir) < bytes.length * 1.01, 'the killed ingest\'s frames were cut off, not kept beside the new ones');
    } finally {
      await store.close();
    }
  });

  it('cuts off bytes past a segment\'s committed length when it opens', async () => {
    const storeDir = path.join(work.path, 'store');
    const file = path.join(storeDir, 'segments', (await readdir(path.join(storeDir, 'segments')))[0]!);
    const committed = (await stat(file)).size;
    await appendFile(file, Buffer.alloc(4096, 9));
    const store = new Bigstore(storeDir, path.join(work.path, 'home'), quiet);
    try {
      await store.ingest('repo', path.join(work.path, 'repo.git'), 'e'.repeat(40)); // any job opens the writer
      assert.equal((await stat(file)).size, committed);
    } finally {
      await store.close();
    }
  });
});

async function segmentBytes(storeDir: string): Promise<number> {
  const dir = path.join(storeDir, 'segments');
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) total += (await stat(path.join(dir, name))).size;
  return total;
}

describe('compaction of the chunk store', () => {
  it('moves the live chunks out of a segment a deleted repository left mostly empty, and the blobs still read whole', async () => {
    await using work = await tempDir();
    const gitDir = path.join(work.path, 'repo.git');
    await gitOk(['init', '-q', '--bare', gitDir]);
    const gone = noise(BIG_BLOB_BYTES + 5 * 1024 * 1024, 11);
    const kept = noise(BIG_BLOB_BYTES + 5 * 1024 * 1024, 12);
    const goneOid = await addBlob(gitDir, work.path, gone);
    const keptOid = await addBlob(gitDir, work.path, kept);
    const store = new Bigstore(path.join(work.path, 'store'), path.join(work.path, 'home'), quiet);
    try {
      await store.ingest('deleted', gitDir, goneOid);
      await store.ingest('alive', gitDir, keptOid); // starts in the first segment, ends in the second
      const before = await segmentBytes(store.dir);
      await store.forgetRepository('deleted');
      const report = await store.collect();
      assert.equal(report.segmentsCompacted, 1);
      assert.ok(report.bytesFreed >= gone.length, `${report.bytesFreed} bytes freed`);
      assert.ok(await segmentBytes(store.dir) <= before - gone.length);
      assert.ok((await buffer(store.open(keptOid, null))).equals(kept));
      assert.equal(store.has(goneOid), false);
    } finally {
      await store.close();
    }
  });
});
