import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { BigstoreIndex } from './bigstore-index.ts';
import { CompressionPolicy, encodeFrame } from './frames.ts';
import { importBlob, ImportVerificationError, type DownloadedFrame, type ImportJob } from './import.ts';
import { BigstoreReader } from './reader.ts';
import { SegmentReader, SegmentWriter } from './segments.ts';
import { READY_MARKER } from './worker-protocol.ts';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const oidOf = (bytes: Buffer) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');

/** A blob made of `chunks`, and a "downloaded segment object" file holding each distinct chunk's frame once. */
async function published(dir: string, name: string, chunks: readonly Buffer[]): Promise<{ bytes: Buffer; job: Omit<ImportJob, 'repoId'>; file: string }> {
  const file = path.join(dir, `${name}.seg`);
  const frames: Record<string, DownloadedFrame> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  const policy = new CompressionPolicy();
  for (const chunk of chunks) {
    const hash = sha256(chunk);
    if (frames[hash] !== undefined) continue;
    const frame = encodeFrame(chunk, policy).bytes;
    frames[hash] = { file, offset, zlen: frame.length };
    parts.push(frame);
    offset += frame.length;
  }
  await writeFile(file, Buffer.concat(parts));
  const bytes = Buffer.concat(chunks);
  return { bytes, file, job: { oid: oidOf(bytes), size: bytes.length, chunks: chunks.map((c) => ({ hash: sha256(c), length: c.length })), frames } };
}

describe('importing a blob of the cluster catalogue into a node\'s store', () => {
  let dir: string;
  let index: BigstoreIndex;
  let segments: SegmentWriter;
  let local: SegmentReader;
  let reader: BigstoreReader;
  const shared = randomBytes(70_000);
  const a = randomBytes(90_000);
  const prose = Buffer.alloc(50_000, 'a line of text\n');

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'grove-import-'));
    index = BigstoreIndex.openWriter(path.join(dir, 'bigstore.db'));
    segments = new SegmentWriter(path.join(dir, 'segments'));
    await segments.open(index.segments());
    await writeFile(path.join(dir, READY_MARKER), '');
    local = new SegmentReader(path.join(dir, 'segments'));
    reader = new BigstoreReader(path.join(dir, 'bigstore.db'), path.join(dir, 'segments'));
  });

  after(async () => {
    await reader.close();
    await local.close();
    await segments.close();
    index.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores the blob from the downloaded frames, a chunk repeated in it once, and reads it back byte for byte', async () => {
    const { bytes, job } = await published(dir, 'first', [shared, a, shared, prose]);
    const outcome = await importBlob({ index, segments, local }, { repoId: 'repo-a', ...job });
    assert.equal(outcome.kind, 'stored');
    assert.equal(outcome.kind === 'stored' && outcome.newChunks, 3);
    assert.equal(reader.isLinked('repo-a', job.oid), true);
    assert.equal(await text(reader.open(job.oid, null)), bytes.toString());
    assert.ok((await streamBytes(reader.open(job.oid, { start: 100_000, end: 160_000 }))).equals(bytes.subarray(100_000, 160_001)));
  });

  it('copies only the chunks the store lacks: those it has are read from its own segments', async () => {
    const fresh = randomBytes(40_000);
    const { job } = await published(dir, 'second', [a, fresh, shared]);
    // The download holds only the new chunk: the other two must come from the store itself.
    const frames = Object.fromEntries(Object.entries(job.frames).filter(([hash]) => hash === sha256(fresh)));
    const outcome = await importBlob({ index, segments, local }, { repoId: 'repo-a', ...job, frames });
    assert.equal(outcome.kind === 'stored' && outcome.newChunks, 1);
    assert.ok((await streamBytes(reader.open(job.oid, null))).equals(Buffer.concat([a, fresh, shared])));
  });

  it('links a blob the store already has to another repository without reading a download', async () => {
    const { job } = await published(dir, 'third', [shared, a, shared, prose]);
    const outcome = await importBlob({ index, segments, local }, { repoId: 'repo-b', ...job, frames: {} });
    assert.deepEqual(outcome, { kind: 'linked', oid: job.oid });
    assert.equal(reader.isLinked('repo-b', job.oid), true);
  });

  it('refuses a chunk damaged in the object store, and a manifest whose chunks do not make the oid, keeping nothing', async () => {
    const before = index.totals();
    const damaged = await published(dir, 'damaged', [randomBytes(30_000), randomBytes(30_000)]);
    const bytes = await readFile(damaged.file);
    bytes[bytes.length - 100]! ^= 0xff;
    await writeFile(damaged.file, bytes);
    await assert.rejects(importBlob({ index, segments, local }, { repoId: 'repo-a', ...damaged.job }), (error: Error) => error instanceof ImportVerificationError && /damaged in the object store/.test(error.message));
    const wrong = await published(dir, 'wrong', [randomBytes(30_000)]);
    await assert.rejects(importBlob({ index, segments, local }, { repoId: 'repo-a', ...wrong.job, oid: 'f'.repeat(40) }), /hash to/);
    assert.equal(index.hasBlob(damaged.job.oid), false);
    assert.deepEqual(index.totals(), before);
  });
});

async function streamBytes(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}
