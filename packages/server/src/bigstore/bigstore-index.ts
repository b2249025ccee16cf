/**
 * The chunk store's index, `bigstore.db` (SQLite, apart from Grove's database: it is
 * rebuilt from git if lost, and it must not share a write lock with the request path).
 *
 *   segment(id, bytes, live_bytes)          segment files and their committed length
 *   chunk(id, hash, segment, offset, zlen, ulen, adler32)   each distinct chunk once (SHA-256);
 *                                           Adler-32 of its bytes, for spliced pack entries
 *   bigblob(oid, size, stored_bytes, manifest)     a big blob: its chunks in order
 *   repo_bigblob(repo_id, oid)               which repositories hold which big blobs
 *
 * Dedup is global (a chunk is stored once whoever pushed it); access is per repository:
 * the API serves a blob only once git confirms the repository holds it, so knowing an oid
 * gives no one another tenant's bytes. One writer (the ingest worker); readers open it
 * read-only in WAL mode.
 */
import SQLite from 'better-sqlite3';

export interface ChunkLocation {
  readonly id: number;
  readonly segment: number;
  readonly offset: number;
  readonly zlen: number;
  readonly ulen: number;
  /** Null for chunks stored before checksums were kept (computed from the bytes then). */
  readonly adler32: number | null;
}

export interface NewChunk {
  readonly hash: Buffer;
  readonly segment: number;
  readonly offset: number;
  readonly zlen: number;
  readonly ulen: number;
  readonly adler32: number;
}

export interface StoredBlob {
  readonly oid: string;
  readonly size: number;
  readonly storedBytes: number;
  readonly manifest: Buffer;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS segment (id INTEGER PRIMARY KEY, bytes INTEGER NOT NULL, live_bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunk (id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, segment INTEGER NOT NULL, offset INTEGER NOT NULL, zlen INTEGER NOT NULL, ulen INTEGER NOT NULL, adler32 INTEGER);
CREATE INDEX IF NOT EXISTS chunk_segment ON chunk (segment);
CREATE TABLE IF NOT EXISTS bigblob (oid TEXT PRIMARY KEY, size INTEGER NOT NULL, stored_bytes INTEGER NOT NULL, manifest BLOB NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS repo_bigblob (repo_id TEXT NOT NULL, oid TEXT NOT NULL, PRIMARY KEY (repo_id, oid)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS repo_bigblob_oid ON repo_bigblob (oid);
`;

export class BigstoreIndex {
  readonly #db: SQLite.Database;
  readonly #statements = new Map<string, SQLite.Statement>();

  private constructor(db: SQLite.Database) {
    this.#db = db;
  }

  /** The writer: creates the schema; commits are fsynced (synchronous FULL) before they return. */
  static openWriter(file: string): BigstoreIndex {
    const db = new SQLite(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    // Stores made before chunks kept their Adler-32 gain the column (old rows stay null).
    const columns = db.pragma('table_info(chunk)') as Array<{ name: string }>;
    if (!columns.some((c) => c.name === 'adler32')) db.exec('ALTER TABLE chunk ADD COLUMN adler32 INTEGER');
    return new BigstoreIndex(db);
  }

  /** A reader (the request path); the writer must have created the file. */
  static openReader(file: string): BigstoreIndex {
    const db = new SQLite(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    return new BigstoreIndex(db);
  }

  close(): void {
    this.#db.close();
  }

  #statement(sql: string): SQLite.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  blob(oid: string): StoredBlob | null {
    const row = this.#statement('SELECT oid, size, stored_bytes AS storedBytes, manifest FROM bigblob WHERE oid = ?').get(oid) as StoredBlob | undefined;
    return row ?? null;
  }

  hasBlob(oid: string): boolean {
    return this.#statement('SELECT 1 FROM bigblob WHERE oid = ?').get(oid) !== undefined;
  }

  chunk(id: number): ChunkLocation | null {
    const row = this.#statement('SELECT id, segment, offset, zlen, ulen, adler32 FROM chunk WHERE id = ?').get(id) as ChunkLocation | undefined;
    return row ?? null;
  }

  chunkIdByHash(hash: Buffer): number | null {
    const row = this.#statement('SELECT id FROM chunk WHERE hash = ?').get(hash) as { id: number } | undefined;
    return row?.id ?? null;
  }

  chunkHashes(ids: readonly number[]): Map<number, Buffer> {
    const statement = this.#statement('SELECT hash FROM chunk WHERE id = ?');
    const hashes = new Map<number, Buffer>();
    for (const id of ids) {
      const row = statement.get(id) as { hash: Buffer } | undefined;
      if (row !== undefined) hashes.set(id, row.hash);
    }
    return hashes;
  }

  isLinked(repoId: string, oid: string): boolean {
    return this.#statement('SELECT 1 FROM repo_bigblob WHERE repo_id = ? AND oid = ?').get(repoId, oid) !== undefined;
  }

  repositoryHasBigBlobs(repoId: string): boolean {
    return this.#statement('SELECT 1 FROM repo_bigblob WHERE repo_id = ? LIMIT 1').get(repoId) !== undefined;
  }

  segments(): Array<{ id: number; bytes: number; liveBytes: number }> {
    return this.#statement('SELECT id, bytes, live_bytes AS liveBytes FROM segment ORDER BY id').all() as Array<{ id: number; bytes: number; liveBytes: number }>;
  }

  totals(): { blobs: number; chunks: number; logicalBytes: number; storedBytes: number; segmentBytes: number } {
    const blobs = this.#statement('SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM bigblob').get() as { n: number; bytes: number };
    const chunks = this.#statement('SELECT count(*) AS n, coalesce(sum(zlen), 0) AS bytes FROM chunk').get() as { n: number; bytes: number };
    const segments = this.#statement('SELECT coalesce(sum(bytes), 0) AS bytes FROM segment').get() as { bytes: number };
    return { blobs: blobs.n, chunks: chunks.n, logicalBytes: blobs.bytes, storedBytes: chunks.bytes, segmentBytes: segments.bytes };
  }

  /** Links the blob to the repository; 1 if it was not linked before. */
  link(repoId: string, oid: string): number {
    return this.#statement('INSERT OR IGNORE INTO repo_bigblob (repo_id, oid) VALUES (?, ?)').run(repoId, oid).changes;
  }

  /** Gives `toRepoId` every link `fromRepoId` has (a fork borrows its source's objects, evicted ones too). */
  copyLinks(fromRepoId: string, toRepoId: string): number {
    return this.#statement('INSERT OR IGNORE INTO repo_bigblob (repo_id, oid) SELECT ?, oid FROM repo_bigblob WHERE repo_id = ?').run(toRepoId, fromRepoId).changes;
  }

  /** The repositories linked to any big blob. */
  linkedRepositories(): string[] {
    return (this.#statement('SELECT DISTINCT repo_id FROM repo_bigblob').all() as Array<{ repo_id: string }>).map((row) => row.repo_id);
  }

  /** The big blobs linked to a repository. */
  linkedBlobs(repoId: string): string[] {
    return (this.#statement('SELECT oid FROM repo_bigblob WHERE repo_id = ?').all(repoId) as Array<{ oid: string }>).map((row) => row.oid);
  }

  /**
   * Records a verified blob in one transaction: its new chunks (ids assigned here), its
   * manifest, the repository's link and the segments' new committed lengths. The segment
   * bytes must already be fsynced.
   */
  commitBlob(input: {
    readonly oid: string;
    readonly size: number;
    readonly repoId: string;
    readonly newChunks: readonly NewChunk[];
    /** Each entry: an existing chunk id, or the index of a chunk in `newChunks` as -(index + 1). */
    readonly entries: ReadonlyArray<{ readonly ref: number; readonly length: number }>;
    readonly segmentLengths: ReadonlyMap<number, number>;
  }, encode: (entries: ReadonlyArray<{ id: number; length: number }>) => Buffer): void {
    const insertChunk = this.#statement('INSERT INTO chunk (hash, segment, offset, zlen, ulen, adler32) VALUES (?, ?, ?, ?, ?, ?)');
    const upsertSegment = this.#statement('INSERT INTO segment (id, bytes, live_bytes) VALUES (?, ?, 0) ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes');
    const addLive = this.#statement('UPDATE segment SET live_bytes = live_bytes + ? WHERE id = ?');
    this.#db.transaction(() => {
      for (const [segment, bytes] of input.segmentLengths) upsertSegment.run(segment, bytes);
      const ids = input.newChunks.map((chunk) => {
        addLive.run(chunk.zlen, chunk.segment);
        return Number(insertChunk.run(chunk.hash, chunk.segment, chunk.offset, chunk.zlen, chunk.ulen, chunk.adler32).lastInsertRowid);
      });
      const entries = input.entries.map((entry) => ({ id: entry.ref < 0 ? ids[-entry.ref - 1]! : entry.ref, length: entry.length }));
      const storedBytes = input.newChunks.reduce((sum, chunk) => sum + chunk.zlen, 0);
      this.#statement('INSERT INTO bigblob (oid, size, stored_bytes, manifest, created_at) VALUES (?, ?, ?, ?, ?)').run(input.oid, input.size, storedBytes, encode(entries), Date.now());
      this.#statement('INSERT OR IGNORE INTO repo_bigblob (repo_id, oid) VALUES (?, ?)').run(input.repoId, input.oid);
    })();
  }

  /** Drops a repository's links (it was deleted); its blobs go at the next collection if nothing else links them. */
  forgetRepository(repoId: string): number {
    return this.#statement('DELETE FROM repo_bigblob WHERE repo_id = ?').run(repoId).changes;
  }

  /** Blobs no repository links, deleted; returns how many. */
  deleteUnlinkedBlobs(): number {
    return this.#statement('DELETE FROM bigblob WHERE oid NOT IN (SELECT oid FROM repo_bigblob)').run().changes;
  }

  *manifests(): IterableIterator<Buffer> {
    for (const row of this.#statement('SELECT manifest FROM bigblob').iterate() as IterableIterator<{ manifest: Buffer }>) yield row.manifest;
  }

  allChunks(): Array<{ id: number; segment: number; zlen: number }> {
    return this.#statement('SELECT id, segment, zlen FROM chunk').all() as Array<{ id: number; segment: number; zlen: number }>;
  }

  chunksOfSegment(segment: number): ChunkLocation[] {
    return this.#statement('SELECT id, segment, offset, zlen, ulen, adler32 FROM chunk WHERE segment = ? ORDER BY offset').all(segment) as ChunkLocation[];
  }

  /** Deletes chunks and sets each segment's live bytes, in one transaction. */
  applySweep(deadChunks: readonly number[], liveBytes: ReadonlyMap<number, number>): void {
    const deleteChunk = this.#statement('DELETE FROM chunk WHERE id = ?');
    const setLive = this.#statement('UPDATE segment SET live_bytes = ? WHERE id = ?');
    this.#db.transaction(() => {
      for (const id of deadChunks) deleteChunk.run(id);
      for (const segment of this.segments()) setLive.run(liveBytes.get(segment.id) ?? 0, segment.id);
    })();
  }

  /** Points moved chunks at their new places and drops the emptied segment, in one transaction. */
  applyCompaction(moved: ReadonlyArray<{ id: number; segment: number; offset: number }>, emptied: number, segmentLengths: ReadonlyMap<number, number>, liveAdded: ReadonlyMap<number, number>): void {
    const move = this.#statement('UPDATE chunk SET segment = ?, offset = ? WHERE id = ?');
    const upsertSegment = this.#statement('INSERT INTO segment (id, bytes, live_bytes) VALUES (?, ?, 0) ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes');
    const addLive = this.#statement('UPDATE segment SET live_bytes = live_bytes + ? WHERE id = ?');
    this.#db.transaction(() => {
      for (const [segment, bytes] of segmentLengths) upsertSegment.run(segment, bytes);
      for (const [segment, bytes] of liveAdded) addLive.run(bytes, segment);
      for (const chunk of moved) move.run(chunk.segment, chunk.offset, chunk.id);
      this.#statement('DELETE FROM segment WHERE id = ?').run(emptied);
    })();
  }
}
