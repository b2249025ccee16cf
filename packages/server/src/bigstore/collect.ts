/**
 * Garbage collection of the chunk store, in the ingest worker (so never beside an ingest):
 *
 *   1. blobs no repository links are deleted (a repository's links go when it is deleted);
 *   2. mark: the chunks every remaining manifest names; sweep: the others are deleted;
 *   3. compaction: a segment under half live (the one being filled: once none of it is) has its
 *      live frames copied to the end of the store, fsynced, the index repointed in one
 *      transaction, and only then its file removed. A reader that had the old place
 *      reopens by the new one (reader.ts).
 */
import { readFile } from 'node:fs/promises';
import type { BigstoreIndex } from './bigstore-index.ts';
import { decodeManifest } from './manifest.ts';
import { segmentPath, type SegmentWriter } from './segments.ts';

export const COMPACT_BELOW_LIVE_FRACTION = 0.5;

export interface CollectReport {
  readonly blobsDeleted: number;
  readonly chunksDeleted: number;
  readonly segmentsCompacted: number;
  /** Segment bytes given back to the disk. */
  readonly bytesFreed: number;
}

export async function collect(index: BigstoreIndex, segments: SegmentWriter, segmentDir: string): Promise<CollectReport> {
  const blobsDeleted = index.deleteUnlinkedBlobs();
  const live = new Set<number>();
  for (const bytes of index.manifests()) for (const id of decodeManifest(bytes).ids) live.add(id);
  const dead: number[] = [];
  const liveBytes = new Map<number, number>();
  for (const chunk of index.allChunks()) {
    if (live.has(chunk.id)) liveBytes.set(chunk.segment, (liveBytes.get(chunk.segment) ?? 0) + chunk.zlen);
    else dead.push(chunk.id);
  }
  index.applySweep(dead, liveBytes);

  let segmentsCompacted = 0;
  let bytesFreed = 0;
  for (const segment of index.segments()) {
    // The segment being filled is compacted only once nothing in it is live.
    const threshold = segment.id === segments.current ? Number.MIN_VALUE : segment.bytes * COMPACT_BELOW_LIVE_FRACTION;
    if (segment.liveBytes >= threshold) continue;
    const chunks = index.chunksOfSegment(segment.id);
    const file = chunks.length === 0 ? null : await readFile(segmentPath(segmentDir, segment.id));
    const moved: Array<{ id: number; segment: number; offset: number }> = [];
    const liveAdded = new Map<number, number>();
    try {
      for (const chunk of chunks) {
        const place = await segments.append(file!.subarray(chunk.offset, chunk.offset + chunk.zlen));
        moved.push({ id: chunk.id, ...place });
        liveAdded.set(place.segment, (liveAdded.get(place.segment) ?? 0) + chunk.zlen);
      }
      const lengths = await segments.sync();
      index.applyCompaction(moved, segment.id, lengths, liveAdded);
      segments.committed(lengths);
    } catch (error) {
      await segments.rollback();
      throw error;
    }
    await segments.remove(segment.id);
    segmentsCompacted++;
    bytesFreed += segment.bytes - segment.liveBytes;
  }
  return { blobsDeleted, chunksDeleted: dead.length, segmentsCompacted, bytesFreed };
}
