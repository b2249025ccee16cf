/**
 * Segment files: frames appended one after another, up to 64 MiB a file (Xet's xorb
 * size), named by number under `segments/`. A segment's committed length lives in the
 * index; bytes past it are an ingest that did not commit (a crash, a failed verification)
 * and are cut off when the writer opens. Frames are fsynced before the index commit that
 * makes them reachable, so the index never points at bytes the disk may not have.
 */
import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fsyncPath } from '../repo/fsync.ts';

export const SEGMENT_TARGET_BYTES = 64 * 1024 * 1024;
/** Appended frames are written in batches of about this much (one write instead of ~60). */
const WRITE_BATCH_BYTES = 4 * 1024 * 1024;

export function segmentPath(dir: string, segment: number): string {
  return path.join(dir, `${String(segment).padStart(8, '0')}.seg`);
}

export interface FramePlace {
  readonly segment: number;
  readonly offset: number;
}

/** Appends frames (one writer: the ingest worker). */
export class SegmentWriter {
  readonly #dir: string;
  #segment = 0;
  #handle: FileHandle | null = null;
  #length = 0;
  /** Committed length of every segment (what the index says). */
  readonly #committed = new Map<number, number>();
  /** Segments written since the last sync, with their length now. */
  readonly #dirty = new Map<number, number>();
  #newFiles = false;
  /** Frames appended to the current segment and not yet written, and where they start. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #pendingAt = 0;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Cuts every segment back to its committed length and removes files the index does not know. */
  async open(committed: ReadonlyArray<{ id: number; bytes: number }>): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    for (const segment of committed) this.#committed.set(segment.id, segment.bytes);
    for (const name of await readdir(this.#dir)) {
      const id = /^(\d+)\.seg$/.exec(name);
      if (id === null) continue;
      const bytes = this.#committed.get(Number(id[1]));
      if (bytes === undefined) {
        await rm(path.join(this.#dir, name), { force: true });
        continue;
      }
      const handle = await open(path.join(this.#dir, name), 'r+');
      try {
        if ((await handle.stat()).size !== bytes) await handle.truncate(bytes);
      } finally {
        await handle.close();
      }
    }
    this.#segment = Math.max(0, ...this.#committed.keys());
    this.#length = this.#committed.get(this.#segment) ?? 0;
  }

  /** The segment being filled (compacted only once nothing in it is live). */
  get current(): number {
    return this.#segment;
  }

  async append(frame: Uint8Array): Promise<FramePlace> {
    await this.#makeRoom(frame.length);
    const place = { segment: this.#segment, offset: this.#length };
    if (this.#pendingBytes === 0) this.#pendingAt = this.#length;
    this.#pending.push(frame);
    this.#pendingBytes += frame.length;
    this.#length += frame.length;
    this.#dirty.set(this.#segment, this.#length);
    if (this.#pendingBytes >= WRITE_BATCH_BYTES) await this.#flush();
    return place;
  }

  /** Writes the batched frames of the current segment. */
  async #flush(): Promise<void> {
    if (this.#pendingBytes === 0) return;
    const batch = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
    const at = this.#pendingAt;
    this.#pending = [];
    this.#pendingBytes = 0;
    let written = 0;
    while (written < batch.length) written += (await this.#handle!.write(batch, written, batch.length - written, at + written)).bytesWritten;
  }

  /** Opens the segment being filled, or starts the next one when this frame would overfill it. */
  async #makeRoom(frameLength: number): Promise<void> {
    if (this.#segment === 0 || (this.#length > 0 && this.#length + frameLength > SEGMENT_TARGET_BYTES)) {
      await this.#flush();
      await this.#handle?.close();
      this.#handle = null;
      this.#segment++;
      this.#length = 0;
      this.#newFiles = true;
      this.#handle = await open(segmentPath(this.#dir, this.#segment), 'w+');
    } else if (this.#handle === null) {
      this.#handle = await open(segmentPath(this.#dir, this.#segment), 'r+');
    }
  }

  /** fsyncs what was appended (and the directory, for new files); returns the lengths to commit. */
  async sync(): Promise<ReadonlyMap<number, number>> {
    await this.#flush();
    const lengths = new Map(this.#dirty);
    if (lengths.size === 0) return lengths;
    for (const segment of lengths.keys()) {
      if (segment === this.#segment && this.#handle !== null) await this.#handle.sync();
      else await fsyncPath(segmentPath(this.#dir, segment));
    }
    if (this.#newFiles) await fsyncPath(this.#dir);
    this.#newFiles = false;
    return lengths;
  }

  /** After the index committed what sync() returned. */
  committed(lengths: ReadonlyMap<number, number>): void {
    for (const [segment, bytes] of lengths) {
      this.#committed.set(segment, bytes);
      if (this.#dirty.get(segment) === bytes) this.#dirty.delete(segment);
    }
  }

  /** Forgets appended bytes the index will not commit: the next append overwrites them. */
  async rollback(): Promise<void> {
    this.#pending = [];
    this.#pendingBytes = 0;
    for (const [segment] of this.#dirty) {
      const bytes = this.#committed.get(segment);
      if (bytes === undefined) {
        // A segment this ingest started: it goes, and filling resumes in the last committed one.
        if (segment === this.#segment) {
          await this.#handle?.close();
          this.#handle = null;
        }
        await rm(segmentPath(this.#dir, segment), { force: true });
        continue;
      }
      if (segment === this.#segment) this.#length = bytes;
      const handle = segment === this.#segment && this.#handle !== null ? this.#handle : await open(segmentPath(this.#dir, segment), 'r+');
      await handle.truncate(bytes);
      if (handle !== this.#handle) await handle.close();
    }
    this.#dirty.clear();
    this.#newFiles = false;
    if (!this.#committed.has(this.#segment)) {
      this.#segment = Math.max(0, ...this.#committed.keys());
      this.#length = this.#committed.get(this.#segment) ?? 0;
      await this.#handle?.close();
      this.#handle = null;
    }
  }

  /** Removes a compacted segment's file (its chunks moved; the index no longer names it). */
  async remove(segment: number): Promise<void> {
    this.#committed.delete(segment);
    if (segment === this.#segment) {
      // The next append starts a new segment.
      await this.#handle?.close();
      this.#handle = null;
      this.#length = SEGMENT_TARGET_BYTES;
    }
    await rm(segmentPath(this.#dir, segment), { force: true });
  }

  async close(): Promise<void> {
    // Unsynced frames are not committed anyway; written or not, the next open cuts them off.
    this.#pending = [];
    this.#pendingBytes = 0;
    await this.#handle?.close();
    this.#handle = null;
  }
}

/** Reads frames (the request path): a small set of open segment files, reopened when compaction removed one. */
export class SegmentReader {
  readonly #dir: string;
  readonly #handles = new Map<number, Promise<FileHandle>>();
  static readonly MAX_OPEN = 32;

  constructor(dir: string) {
    this.#dir = dir;
  }

  async read(place: FramePlace, length: number): Promise<Buffer> {
    const handle = await this.#handle(place.segment);
    const buffer = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(buffer, done, length - done, place.offset + done);
      if (bytesRead === 0) throw new Error(`segment ${place.segment} ends before offset ${place.offset + length}: the store is damaged`);
      done += bytesRead;
    }
    return buffer;
  }

  #handle(segment: number): Promise<FileHandle> {
    let handle = this.#handles.get(segment);
    if (handle === undefined) {
      if (this.#handles.size >= SegmentReader.MAX_OPEN) this.#drop(this.#handles.keys().next().value!);
      handle = open(segmentPath(this.#dir, segment), 'r');
      handle.catch(() => this.#handles.delete(segment));
      this.#handles.set(segment, handle);
    } else {
      this.#handles.delete(segment);
      this.#handles.set(segment, handle);
    }
    return handle;
  }

  /** Forgets an open file (compaction removed it; the next read reopens by the index's new place). */
  #drop(segment: number): void {
    const handle = this.#handles.get(segment);
    this.#handles.delete(segment);
    void handle?.then((h) => h.close()).catch(() => undefined);
  }

  forget(segment: number): void {
    this.#drop(segment);
  }

  async close(): Promise<void> {
    const handles = [...this.#handles.values()];
    this.#handles.clear();
    await Promise.all(handles.map((h) => h.then((x) => x.close()).catch(() => undefined)));
  }
}
