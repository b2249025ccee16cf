/**
 * Import: a big blob the cluster's catalogue holds (cluster/big-blob-catalogue.ts), taken
 * into this node's own store from segment objects already downloaded to disk. Every chunk
 * read from a download is inflated and must hash (SHA-256) to its name; chunks this store
 * already has are referenced, not copied; the whole must hash to the oid
 * (`sha1("blob <size>\0" + bytes)`) before one index transaction, after an fsync of the new
 * frames, makes it readable — as an ingest. Runs in the ingest worker.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { BigstoreIndex, NewChunk } from './bigstore-index.ts';
import { adler32 } from './adler32.ts';
import { decodeFrame } from './frames.ts';
import { encodeManifest } from './manifest.ts';
import type { IngestOutcome } from './ingest.ts';
import type { SegmentReader, SegmentWriter } from './segments.ts';

/** Where a chunk's frame is in a downloaded segment object. */
export interface DownloadedFrame {
  readonly file: string;
  readonly offset: number;
  readonly zlen: number;
}

export interface ImportJob {
  readonly repoId: string;
  readonly oid: string;
  readonly size: number;
  /** The blob's chunks in order (SHA-256 hex, length). */
  readonly chunks: ReadonlyArray<{ readonly hash: string; readonly length: number }>;
  /** The frames of the chunks this store may lack, by hash. */
  readonly frames: Readonly<Record<string, DownloadedFrame>>;
}

export class ImportVerificationError extends Error {
  override name = 'ImportVerificationError';
}

export interface ImportDeps {
  readonly index: BigstoreIndex;
  readonly segments: SegmentWriter;
  /** Reads this store's own committed frames (the chunks it already has). */
  readonly local: SegmentReader;
}

export async function importBlob(deps: ImportDeps, job: ImportJob): Promise<Extract<IngestOutcome, { kind: 'stored' | 'linked' }>> {
  const { index, segments, local } = deps;
  if (index.hasBlob(job.oid)) {
    index.link(job.repoId, job.oid);
    return { kind: 'linked', oid: job.oid };
  }
  const sha1 = createHash('sha1').update(`blob ${job.size}\0`);
  const newChunks: NewChunk[] = [];
  const appended = new Map<string, number>();
  const entries: Array<{ ref: number; length: number }> = [];
  const files = new Map<string, FileHandle>();
  let total = 0;
  const download = async (hash: string, length: number): Promise<{ frame: Buffer; bytes: Buffer }> => {
    const place = job.frames[hash];
    if (place === undefined) throw new ImportVerificationError(`chunk ${hash} of ${job.oid} was not downloaded`);
    let handle = files.get(place.file);
    if (handle === undefined) {
      handle = await open(place.file, 'r');
      files.set(place.file, handle);
    }
    const frame = Buffer.allocUnsafe(place.zlen);
    const { bytesRead } = await handle.read(frame, 0, place.zlen, place.offset);
    if (bytesRead !== place.zlen) throw new ImportVerificationError(`the segment holding chunk ${hash} ends early`);
    const bytes = await decodeFrame(frame, length);
    if (createHash('sha256').update(bytes).digest('hex') !== hash) throw new ImportVerificationError(`chunk ${hash} of ${job.oid} is damaged in the object store`);
    return { frame, bytes };
  };
  try {
    for (const chunk of job.chunks) {
      const hash = Buffer.from(chunk.hash, 'hex');
      let ref = index.chunkIdByHash(hash) ?? appended.get(chunk.hash) ?? null;
      let bytes: Buffer;
      if (ref !== null && ref > 0) {
        const location = index.chunk(ref)!;
        if (location.ulen !== chunk.length) throw new ImportVerificationError(`chunk ${chunk.hash} holds ${location.ulen} bytes here, the catalogue says ${chunk.length}`);
        bytes = await decodeFrame(await local.read(location, location.zlen), chunk.length);
      } else {
        const downloaded = await download(chunk.hash, chunk.length);
        bytes = downloaded.bytes;
        if (ref === null) {
          const place = await segments.append(downloaded.frame);
          newChunks.push({ hash, segment: place.segment, offset: place.offset, zlen: downloaded.frame.length, ulen: bytes.length, adler32: adler32(bytes) });
          ref = -newChunks.length;
          appended.set(chunk.hash, ref);
        }
      }
      sha1.update(bytes);
      total += bytes.length;
      entries.push({ ref, length: chunk.length });
    }
    if (total !== job.size) throw new ImportVerificationError(`the catalogue's manifest of ${job.oid} covers ${total} bytes, not ${job.size}`);
    const oid = sha1.digest('hex');
    if (oid !== job.oid) throw new ImportVerificationError(`blob ${job.oid}: the catalogue's chunks hash to ${oid}`);
    const segmentLengths = await segments.sync();
    index.commitBlob({ oid, size: job.size, repoId: job.repoId, newChunks, entries, segmentLengths }, encodeManifest);
    segments.committed(segmentLengths);
    return { kind: 'stored', oid, size: job.size, chunks: entries.length, newChunks: newChunks.length, storedBytes: newChunks.reduce((sum, c) => sum + c.zlen, 0) };
  } catch (error) {
    await segments.rollback();
    throw error;
  } finally {
    for (const handle of files.values()) await handle.close();
  }
}
