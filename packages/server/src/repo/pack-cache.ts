/**
 * The pack cache (architecture §6): identical fetch requests against the same refs
 * share one `git upload-pack` run (single flight), and later ones are served from
 * disk. What is cached is the whole upload-pack response — section headers,
 * side-band pack data and progress — so it replays exactly.
 *
 * - Key: the repository, a digest of its refs, the protocol version and the request
 *   with the client's `agent` removed. A ref change gives a new key, so a moved
 *   branch or a new tag is never served from a stale entry (include-tag, v0 "our ref"
 *   checks and HEAD all depend on refs; the pack for given wants does not otherwise).
 * - Only requests without `have`s that end negotiation (`done`) are cached: clones,
 *   shallow clones and partial clones, the swarm case. Incremental fetches pass through.
 * - The producer writes to a file that every reader (the first client included)
 *   streams from as it grows, so a client that disconnects does not affect the others.
 *   When the last reader leaves before the response is complete, the producer is
 *   stopped and the entry dropped.
 * - Bounded in bytes, evicted least-recently-used, and by age. A repository whose packs
 *   exceed the budget is not cached at all (`admits`): its clones stream from git.
 * - Responses small enough are also kept in memory, as the chunks git wrote, for as long
 *   as they stay in the cache (within their own, smaller budget): a thousand agents
 *   cloning one commit then share one copy of the bytes, which go to every socket without
 *   being read or copied again. Bigger responses stream from the file, each chunk read
 *   into a buffer of its own (no copy).
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { packetText, parsePackets } from '../git/pkt-line.ts';
import type { V2Request } from '../git/v2-request.ts';

export interface PackCacheOptions {
  readonly dir: string;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
  /** Memory for responses kept in memory too; 0 keeps none. */
  readonly memoryBytes?: number;
}

/** Produces a response into `sink`; resolves with git's exit code. */
export type Producer = (sink: Writable, signal: AbortSignal) => Promise<number>;

interface Entry {
  readonly key: string;
  readonly file: string;
  /** Settles once the file exists (readers open it after). */
  readonly created: Promise<void>;
  readonly events: EventEmitter;
  readonly abort: AbortController;
  size: number;
  done: boolean;
  failed: boolean;
  readers: number;
  lastUsed: number;
  readonly createdAt: number;
  /** The response as the chunks git wrote, while it fits the memory budget; null once it does not. */
  chunks: Buffer[] | null;
}

export interface CacheStats {
  /** Served from a complete entry. */
  hits: number;
  /** Produced anew. */
  misses: number;
  /** Joined a response still being produced (single flight). */
  joined: number;
  evictions: number;
}

/** Bytes read from a cache file per read, into a buffer of their own. */
const READ_CHUNK = 64 * 1024;

/** Where a reader's response goes: `start` is called once, with the length when it is known. */
export interface CacheOutput {
  readonly start: (contentLength?: number) => Writable;
}

/**
 * The cache key for a fetch request, or null when it should not be cached (it
 * carries `have`s or does not end negotiation).
 */
export function fetchCacheKey(repoKey: string, refsDigest: string, version: 0 | 1 | 2, body: Buffer, v2: V2Request | null): string | null {
  let lines: string[];
  if (version === 2) {
    if (v2 === null || v2.command !== 'fetch') return null;
    if (!v2.args.includes('done') || v2.args.some((arg) => arg.startsWith('have '))) return null;
    lines = ['fetch', ...v2.serverOptions.map((o) => `server-option=${o}`), ...v2.args];
  } else {
    try {
      lines = parsePackets(body).map((p) => (p.kind === 'data' ? packetText(p.payload).replace(/ agent=\S+/, '') : `<${p.kind}>`));
    } catch {
      return null;
    }
    if (!lines.includes('done') || lines.some((line) => line.startsWith('have '))) return null;
  }
  const hash = createHash('sha256');
  hash.update(`${repoKey}\0${refsDigest}\0v${version}\0`);
  for (const line of lines) hash.update(`${line}\n`);
  return hash.digest('hex');
}

export class PackCache {
  readonly #options: PackCacheOptions;
  readonly #entries = new Map<string, Entry>();
  readonly stats: CacheStats = { hits: 0, misses: 0, joined: 0, evictions: 0 };
  readonly #memoryBudget: number;
  /** An entry bigger than this is never kept in memory. */
  readonly #memoryMaxEntry: number;
  /** Bytes of chunks held in memory. */
  #memoryUsed = 0;

  constructor(options: PackCacheOptions) {
    this.#options = options;
    this.#memoryBudget = options.memoryBytes ?? 0;
    this.#memoryMaxEntry = Math.floor(this.#memoryBudget / 4);
  }

  /**
   * Whether a response of about `expectedBytes` can be kept: one larger than the whole
   * budget would be dropped once complete, so it is streamed straight from git instead of
   * being written to disk first. (A cluster node's copy may hold a push's objects twice
   * until compaction, so the estimate errs towards streaming.)
   */
  admits(expectedBytes: number): boolean {
    return expectedBytes <= this.#options.maxBytes;
  }

  /** Bytes of responses held in memory. */
  get memoryBytes(): number {
    return this.#memoryUsed;
  }

  /** Drops every complete entry nobody is reading (the disk is low). */
  shrink(): void {
    for (const entry of [...this.#entries.values()]) {
      if (entry.done && entry.readers === 0) {
        this.stats.evictions++;
        this.#drop(entry);
      }
    }
  }

  /** Empties the cache directory (entries do not survive a restart). */
  async open(): Promise<void> {
    await rm(this.#options.dir, { recursive: true, force: true });
    await mkdir(this.#options.dir, { recursive: true });
  }

  /**
   * Streams the response for `key` to `output`, producing it at most once at a time.
   * Returns the bytes written and git's exit code (0 for a replay).
   */
  async serve(key: string, produce: Producer, output: CacheOutput, signal: AbortSignal): Promise<{ bytes: number; code: number }> {
    this.#expire();
    let entry = this.#entries.get(key);
    if (entry && !entry.failed) {
      if (entry.done) this.stats.hits++;
      else this.stats.joined++;
    } else {
      this.stats.misses++;
      entry = this.#startProducer(key, produce);
    }
    // Move to the back: the map's order is least recently used first.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    entry.lastUsed = Date.now();
    return this.#stream(entry, output, signal);
  }

  /** Registers the entry synchronously (so concurrent identical requests join it), then produces. */
  #startProducer(key: string, produce: Producer): Entry {
    const file = path.join(this.#options.dir, `${key.slice(0, 16)}-${randomBytes(4).toString('hex')}`);
    const opening = open(file, 'wx');
    const entry: Entry = {
      key,
      file,
      created: opening.then(() => undefined),
      events: new EventEmitter(),
      abort: new AbortController(),
      size: 0,
      done: false,
      failed: false,
      readers: 0,
      lastUsed: Date.now(),
      createdAt: Date.now(),
      chunks: this.#memoryMaxEntry > 0 ? [] : null,
    };
    entry.events.setMaxListeners(0);
    this.#entries.set(key, entry);
    void opening.then((handle) => this.#produce(entry, handle, produce), () => {
      entry.failed = true;
      entry.done = true;
      entry.events.emit('grow');
      this.#drop(entry);
    });
    return entry;
  }

  #produce(entry: Entry, handle: FileHandle, produce: Producer): void {
    // Writable calls write() one chunk at a time, so positional writes stay in order.
    const sink = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        handle.write(chunk, 0, chunk.length, entry.size).then(() => {
          entry.size += chunk.length;
          this.#keepInMemory(entry, chunk);
          entry.events.emit('grow');
          callback();
        }, callback);
      },
    });
    void produce(sink, entry.abort.signal)
      .then(async (code) => {
        // Everything the producer wrote must be on disk before readers are told it is done.
        sink.end();
        await finished(sink);
        entry.failed = code !== 0;
      })
      .catch(() => {
        entry.failed = true;
        sink.destroy();
      })
      .finally(async () => {
        entry.done = true;
        await handle.close().catch(() => undefined);
        entry.events.emit('grow');
        if (entry.failed || entry.size > this.#options.maxBytes) this.#drop(entry);
        else this.#evictToFit();
      });
  }

  /** Adds a produced chunk to the entry's memory copy, or gives that copy up when it no longer fits. */
  #keepInMemory(entry: Entry, chunk: Buffer): void {
    if (entry.chunks === null) return;
    if (entry.size > this.#memoryMaxEntry) {
      this.#releaseMemory(entry);
      return;
    }
    if (this.#memoryUsed + chunk.length > this.#memoryBudget) {
      // Make room from complete entries, least recently used first.
      for (const other of this.#entries.values()) {
        if (this.#memoryUsed + chunk.length <= this.#memoryBudget) break;
        if (other !== entry && other.done && other.chunks !== null) this.#releaseMemory(other);
      }
      if (this.#memoryUsed + chunk.length > this.#memoryBudget) {
        this.#releaseMemory(entry);
        return;
      }
    }
    entry.chunks.push(chunk);
    this.#memoryUsed += chunk.length;
  }

  #releaseMemory(entry: Entry): void {
    if (entry.chunks === null) return;
    for (const chunk of entry.chunks) this.#memoryUsed -= chunk.length;
    entry.chunks = null; // readers still holding the array finish from it, then from the file
  }

  async #stream(entry: Entry, output: CacheOutput, signal: AbortSignal): Promise<{ bytes: number; code: number }> {
    entry.readers++;
    let handle: FileHandle | null = null;
    let offset = 0;
    let sink: Writable | null = null;
    // The memory copy as it was when this reader started; it only grows while it is the entry's,
    // and the file always holds at least as much (a chunk is counted once it is written).
    const memory = entry.chunks;
    let chunkIndex = 0;
    const start = () => (sink ??= entry.done && !entry.failed ? output.start(entry.size) : output.start());
    try {
      await entry.created;
      if (entry.failed && entry.size === 0) return { bytes: 0, code: 1 };
      for (;;) {
        if (signal.aborted) throw signal.reason;
        if (offset < entry.size) {
          const out = start();
          if (memory !== null && chunkIndex < memory.length) {
            // Shared chunks, straight to the socket (no read, no copy), until it asks us to wait.
            // (Not corked: an OutgoingMessage corked past its high-water mark may never emit 'drain'.)
            let flowing = true;
            while (flowing && chunkIndex < memory.length && offset < entry.size) {
              const chunk = memory[chunkIndex++]!;
              offset += chunk.length;
              flowing = out.write(chunk);
            }
            if (!flowing) await once(out, 'drain', { signal });
            continue;
          }
          // The memory copy was given up after this reader's last chunk: the rest is in the file.
          handle ??= await open(entry.file, 'r');
          const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, entry.size - offset));
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
          if (bytesRead === 0) continue;
          offset += bytesRead;
          if (!out.write(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead))) await once(out, 'drain', { signal });
          continue;
        }
        if (entry.done) break;
        await once(entry.events, 'grow', { signal });
      }
      return { bytes: offset, code: entry.failed ? 1 : 0 };
    } finally {
      await handle?.close();
      entry.readers--;
      if (entry.readers === 0 && !entry.done) {
        // Nobody is waiting for this response any more: stop producing it.
        entry.abort.abort(new Error('no readers left'));
        this.#drop(entry);
      } else if (entry.readers === 0 && this.#entries.get(entry.key) !== entry) {
        void rm(entry.file, { force: true }); // dropped while this reader was still streaming it
      }
    }
  }

  #drop(entry: Entry): void {
    if (this.#entries.get(entry.key) === entry) this.#entries.delete(entry.key);
    this.#releaseMemory(entry);
    if (entry.readers === 0) void rm(entry.file, { force: true });
  }

  /** Bytes held by the entries now in the cache. */
  get bytes(): number {
    let total = 0;
    for (const entry of this.#entries.values()) total += entry.size;
    return total;
  }

  get entries(): number {
    return this.#entries.size;
  }

  /** Drops least-recently-used complete entries until the total fits the budget. */
  #evictToFit(): void {
    let total = this.bytes;
    for (const entry of this.#entries.values()) {
      if (total <= this.#options.maxBytes) break;
      total -= entry.size;
      if (!entry.done) continue;
      this.stats.evictions++;
      this.#drop(entry);
    }
  }

  #expire(): void {
    const now = Date.now();
    for (const entry of this.#entries.values()) {
      if (entry.done && now - entry.createdAt > this.#options.maxAgeMs) {
        this.stats.evictions++;
        this.#drop(entry);
      }
    }
  }
}
