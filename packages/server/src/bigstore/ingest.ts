/**
 * Ingest: one big blob into the chunk store, from a repository (`git cat-file blob`) or from
 * an upload spooled to disk. The bytes stream through the content-defined chunker; each chunk is hashed
 * (SHA-256), stored once (a chunk the store has is only referenced), and the whole is
 * verified — `sha1("blob <size>\0" + bytes)` must be the oid — before one index
 * transaction, after an fsync of the new frames, makes it readable. A blob that fails
 * verification leaves nothing behind. Runs in the ingest worker, one blob at a time.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Chunker } from '@grove/sdk';
import type { GitRunner } from '../repo/git-command.ts';
import { exitCode } from '../repo/git-command.ts';
import { isBigBlob } from '../repo/big-blob.ts';
import type { BigstoreIndex, NewChunk } from './bigstore-index.ts';
import { adler32 } from './adler32.ts';
import { CompressionPolicy, encodeFrame } from './frames.ts';
import { encodeManifest } from './manifest.ts';
import type { SegmentWriter } from './segments.ts';

export type IngestOutcome =
  /** Stored now: `storedBytes` is what it added to the segments (0 when every chunk was already there). */
  | { readonly kind: 'stored'; readonly oid: string; readonly size: number; readonly chunks: number; readonly newChunks: number; readonly storedBytes: number }
  /** The store already had the blob; the repository is now linked to it. */
  | { readonly kind: 'linked'; readonly oid: string }
  /** Not a blob of this repository, or not big: nothing to store. */
  | { readonly kind: 'skipped'; readonly reason: string };

export class IngestVerificationError extends Error {
  override name = 'IngestVerificationError';
}

export interface IngestDeps {
  readonly git: GitRunner;
  readonly index: BigstoreIndex;
  readonly segments: SegmentWriter;
}

export async function ingestBlob(deps: IngestDeps, job: { readonly repoId: string; readonly gitDir: string; readonly oid: string }): Promise<IngestOutcome> {
  const { index } = deps;
  if (!/^[0-9a-f]{40}$/.test(job.oid)) return { kind: 'skipped', reason: 'not a full object id' };
  // The repository must hold the blob before it is linked to it, even when the store has the bytes (the tenant rule).
  const header = await deps.git.run(['cat-file', '--batch-check'], { gitDir: job.gitDir, input: `${job.oid}\n` });
  const match = /^[0-9a-f]{40} (\w+) (\d+)$/.exec(header.stdout.toString().trim());
  if (match === null || match[1] !== 'blob') return { kind: 'skipped', reason: `${job.oid} is not a blob of this repository` };
  const size = Number(match[2]);
  if (!isBigBlob(size)) return { kind: 'skipped', reason: `${job.oid} is not big (${size} bytes)` };
  if (index.hasBlob(job.oid)) {
    index.link(job.repoId, job.oid);
    return { kind: 'linked', oid: job.oid };
  }

  const child = await deps.git.spawn(['cat-file', 'blob', job.oid], { gitDir: job.gitDir });
  child.stdin.end();
  child.stderr.resume();
  try {
    return await storeBytes(deps, job.repoId, size, child.stdout as AsyncIterable<Buffer>, async (oid) => {
      const code = await exitCode(child);
      if (code !== 0) throw new Error(`git cat-file blob ${job.oid} exited with ${code}`);
      if (oid !== job.oid) throw new IngestVerificationError(`blob ${job.oid}: the bytes hash to ${oid}`);
    });
  } finally {
    child.kill('SIGKILL');
  }
}

/**
 * Stores a file (a big upload spooled to disk) as a blob: its oid is computed from its bytes
 * as they are chunked, so it is right by construction. Git never holds it.
 */
export async function ingestFile(deps: Omit<IngestDeps, 'git'>, job: { readonly repoId: string; readonly file: string }): Promise<Extract<IngestOutcome, { kind: 'stored' | 'linked' }>> {
  const size = (await stat(job.file)).size;
  if (!isBigBlob(size)) throw new Error(`${job.file} is not big (${size} bytes)`);
  return storeBytes(deps, job.repoId, size, createReadStream(job.file, { highWaterMark: 1024 * 1024 }), async () => undefined);
}

/**
 * The core of an ingest: `size` bytes from `source` chunked, new chunks appended, the oid
 * computed (`sha1("blob <size>\0" + bytes)`) and checked by `verify`, then, after an fsync,
 * one index transaction. A blob the store already has (found only now, when its oid is known)
 * is linked, and the frames appended for it are rolled back.
 */
async function storeBytes(deps: Omit<IngestDeps, 'git'>, repoId: string, size: number, source: AsyncIterable<Buffer>, verify: (oid: string) => Promise<void>): Promise<Extract<IngestOutcome, { kind: 'stored' | 'linked' }>> {
  const { index, segments } = deps;
  const sha1 = createHash('sha1').update(`blob ${size}\0`);
  const chunker = new Chunker();
  const policy = new CompressionPolicy();
  const newChunks: NewChunk[] = [];
  const pending = new Map<string, number>();
  const entries: Array<{ ref: number; length: number }> = [];
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let total = 0;

  const store = async (chunk: Buffer): Promise<void> => {
    const hash = createHash('sha256').update(chunk).digest();
    const key = hash.toString('hex');
    let ref = index.chunkIdByHash(hash) ?? pending.get(key) ?? null;
    if (ref === null) {
      const frame = encodeFrame(chunk, policy);
      const place = await segments.append(frame.bytes);
      newChunks.push({ hash, segment: place.segment, offset: place.offset, zlen: frame.bytes.length, ulen: chunk.length, adler32: adler32(chunk) });
      ref = -newChunks.length;
      pending.set(key, ref);
    }
    entries.push({ ref, length: chunk.length });
  };

  try {
    for await (const piece of source) {
      sha1.update(piece);
      total += piece.length;
      let from = 0;
      for (const cut of chunker.push(piece)) {
        carry.push(piece.subarray(from, cut));
        await store(carryBytes === 0 && carry.length === 1 ? carry[0]! : Buffer.concat(carry));
        carry = [];
        carryBytes = 0;
        from = cut;
      }
      if (from < piece.length) {
        carry.push(piece.subarray(from));
        carryBytes += piece.length - from;
      }
    }
    if (chunker.end()) await store(Buffer.concat(carry));
    if (total !== size) throw new IngestVerificationError(`read ${total} bytes of a ${size}-byte blob`);
    const oid = sha1.digest('hex');
    await verify(oid);
    if (index.hasBlob(oid)) {
      await segments.rollback();
      index.link(repoId, oid);
      return { kind: 'linked', oid };
    }
    const segmentLengths = await segments.sync();
    index.commitBlob({ oid, size, repoId, newChunks, entries, segmentLengths }, encodeManifest);
    segments.committed(segmentLengths);
    return { kind: 'stored', oid, size, chunks: entries.length, newChunks: newChunks.length, storedBytes: newChunks.reduce((sum, c) => sum + c.zlen, 0) };
  } catch (error) {
    await segments.rollback();
    throw error;
  }
}
