/**
 * Reads big blobs from the chunk store on the request path: a byte range costs a binary
 * search of the manifest and the frames that hold it (~17 per MiB), whatever its offset.
 * Frames are read and inflated a few ahead of the consumer, off the event loop.
 */
import { Readable } from 'node:stream';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { READY_MARKER } from './worker-protocol.ts';
import { BigstoreIndex } from './bigstore-index.ts';
import { decodeFrame } from './frames.ts';
import { chunkStart, chunksForRange, decodeManifest, manifestSize, type Manifest } from './manifest.ts';
import { SegmentReader } from './segments.ts';

/** Frames read ahead of the one being sent. */
const READ_AHEAD = 4;
const MANIFEST_CACHE_ENTRIES = 64;

export interface ChunkListing {
  readonly oid: string;
  readonly size: number;
  readonly chunks: ReadonlyArray<{ readonly hash: string; readonly offset: number; readonly length: number }>;
}

export interface RawFrame {
  /** One chunk's frame: a raw-deflate stream ended by a sync flush. */
  readonly bytes: Buffer;
  /** The chunk's length once inflated. */
  readonly length: number;
  /** Its Adler-32; null for chunks stored before checksums were kept. */
  readonly adler32: number | null;
}

export interface BigstoreTotals {
  readonly blobs: number;
  readonly chunks: number;
  readonly logicalBytes: number;
  readonly storedBytes: number;
  readonly segmentBytes: number;
}

export class BigstoreReader {
  readonly #indexFile: string;
  readonly #segments: SegmentReader;
  #index: BigstoreIndex | null = null;
  readonly #manifests = new Map<string, Manifest>();

  constructor(indexFile: string, segmentDir: string) {
    this.#indexFile = indexFile;
    this.#segments = new SegmentReader(segmentDir);
  }

  /** Null until the store has been written once. */
  #openIndex(): BigstoreIndex | null {
    // Not before the writer has created the schema (its marker): a half-made file has no tables.
    if (this.#index === null && existsSync(path.join(path.dirname(this.#indexFile), READY_MARKER))) this.#index = BigstoreIndex.openReader(this.#indexFile);
    return this.#index;
  }

  /** The blob's manifest, when the store holds it. */
  manifest(oid: string): Manifest | null {
    const cached = this.#manifests.get(oid);
    if (cached !== undefined) {
      this.#manifests.delete(oid);
      this.#manifests.set(oid, cached);
      return cached;
    }
    const row = this.#openIndex()?.blob(oid) ?? null;
    if (row === null) return null;
    const manifest = decodeManifest(row.manifest);
    if (manifestSize(manifest) !== row.size) throw new Error(`the manifest of ${oid} covers ${manifestSize(manifest)} bytes, not ${row.size}: the store is damaged`);
    if (this.#manifests.size >= MANIFEST_CACHE_ENTRIES) this.#manifests.delete(this.#manifests.keys().next().value!);
    this.#manifests.set(oid, manifest);
    return manifest;
  }

  has(oid: string): boolean {
    return this.manifest(oid) !== null;
  }

  /** Whether the store has the chunk (by its SHA-256). */
  hasChunk(hash: Buffer): boolean {
    return (this.#openIndex()?.chunkIdByHash(hash) ?? null) !== null;
  }

  isLinked(repoId: string, oid: string): boolean {
    return this.#openIndex()?.isLinked(repoId, oid) ?? false;
  }

  linkedRepositories(): string[] {
    return this.#openIndex()?.linkedRepositories() ?? [];
  }

  linkedBlobs(repoId: string): string[] {
    return this.#openIndex()?.linkedBlobs(repoId) ?? [];
  }

  repositoryHasBigBlobs(repoId: string): boolean {
    return this.#openIndex()?.repositoryHasBigBlobs(repoId) ?? false;
  }

  /** The blob's bytes, or bytes [start, end] of it. The store must hold the blob (see has). */
  open(oid: string, range: { readonly start: number; readonly end: number } | null): Readable {
    const manifest = this.manifest(oid);
    if (manifest === null) throw new Error(`the chunk store does not hold ${oid}`);
    const size = manifestSize(manifest);
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    if (size === 0 || end < start) return Readable.from([]);
    return Readable.from(this.#frames(manifest, start, end), { objectMode: false });
  }

  async *#frames(manifest: Manifest, start: number, end: number): AsyncGenerator<Buffer> {
    const { first, last, skipFirst, keepLast } = chunksForRange(manifest, start, end);
    const inFlight: Array<Promise<Buffer>> = [];
    let next = first;
    const fill = () => {
      while (next <= last && inFlight.length < READ_AHEAD) {
        const promise = this.#chunk(manifest.ids[next]!, manifest.ends[next]! - chunkStart(manifest, next));
        promise.catch(() => undefined); // awaited in order below; not an unhandled rejection meanwhile
        inFlight.push(promise);
        next++;
      }
    };
    for (let i = first; i <= last; i++) {
      fill();
      let chunk = await inFlight.shift()!;
      if (i === last) chunk = chunk.subarray(0, keepLast);
      if (i === first) chunk = chunk.subarray(skipFirst);
      yield chunk;
    }
  }

  /** One chunk's bytes; a segment that compaction removed meanwhile is looked up again. */
  async #chunk(id: number, length: number): Promise<Buffer> {
    for (let attempt = 0; ; attempt++) {
      const location = this.#openIndex()?.chunk(id) ?? null;
      if (location === null) throw new Error(`chunk ${id} is not in the store`);
      try {
        return await decodeFrame(await this.#segments.read(location, location.zlen), length);
      } catch (error) {
        if (attempt > 0 || (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        this.#segments.forget(location.segment);
      }
    }
  }

  /**
   * The blob's frames as stored (deflate, not inflated), in order, a few read ahead: what a
   * pack entry of the blob is made of. The store must hold the blob.
   */
  async *rawFrames(oid: string): AsyncGenerator<RawFrame> {
    const manifest = this.manifest(oid);
    if (manifest === null) throw new Error(`the chunk store does not hold ${oid}`);
    const inFlight: Array<Promise<RawFrame>> = [];
    let next = 0;
    const count = manifest.ids.length;
    for (let i = 0; i < count; i++) {
      while (next < count && inFlight.length < READ_AHEAD) {
        const promise = this.#rawFrame(manifest.ids[next]!, manifest.ends[next]! - chunkStart(manifest, next));
        promise.catch(() => undefined); // awaited in order below
        inFlight.push(promise);
        next++;
      }
      yield await inFlight.shift()!;
    }
  }

  async #rawFrame(id: number, length: number): Promise<RawFrame> {
    for (let attempt = 0; ; attempt++) {
      const location = this.#openIndex()?.chunk(id) ?? null;
      if (location === null) throw new Error(`chunk ${id} is not in the store`);
      if (location.ulen !== length) throw new Error(`chunk ${id} holds ${location.ulen} bytes, the manifest says ${length}: the store is damaged`);
      try {
        return { bytes: await this.#segments.read(location, location.zlen), length, adler32: location.adler32 };
      } catch (error) {
        if (attempt > 0 || (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        this.#segments.forget(location.segment);
      }
    }
  }

  /** The blob's chunks with their SHA-256 and place: what a client with an older version lacks. */
  chunkListing(oid: string): ChunkListing | null {
    const manifest = this.manifest(oid);
    if (manifest === null) return null;
    const ids = Array.from(manifest.ids);
    const hashes = this.#openIndex()!.chunkHashes(ids);
    return {
      oid,
      size: manifestSize(manifest),
      chunks: ids.map((id, i) => ({ hash: hashes.get(id)!.toString('hex'), offset: chunkStart(manifest, i), length: manifest.ends[i]! - chunkStart(manifest, i) })),
    };
  }

  /** What the store holds (null before its first write). */
  totals(): BigstoreTotals | null {
    return this.#openIndex()?.totals() ?? null;
  }

  /** Forgets cached manifests (a collection deleted blobs). */
  invalidate(): void {
    this.#manifests.clear();
  }

  async close(): Promise<void> {
    this.#index?.close();
    this.#index = null;
    await this.#segments.close();
  }
}
