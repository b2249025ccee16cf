/**
 * The chunk store in a cluster (docs/large-files.md, "In a cluster"): PostgreSQL keeps the
 * catalogue — segments, chunks by SHA-256, each big blob's manifest, which repositories may
 * read it — and the object store keeps the segments, immutable objects `bigstore/<uuid>.seg`.
 * Each node's own store (bigstore.ts) is its cache of the catalogue: reads, splices and
 * thin-push bases are served from it as on one node.
 *
 * - *Publish* (after a node has stored a blob): the frames of the chunks the catalogue lacks
 *   are sealed into new segment objects and uploaded, then one transaction records the
 *   segments, the chunks, the manifest and the repository's link. Objects before rows, as
 *   a push's packs before its refs: a row never names bytes the store may not have. Only
 *   then may the cluster's packs lose the blob (compaction.ts).
 * - *Import* (when a node syncs a repository): a blob linked to it that the node's store
 *   lacks is copied in from the segments, each chunk checked against its hash and the whole
 *   against the oid (import.ts).
 * - *Collection* (the sweeper, under its lease): links of deleted repositories, blobs no
 *   repository links, chunks no blob names, then segment objects no chunk names once the
 *   grace period has passed (an import may be downloading one), and orphans.
 *
 * Publishes and a collection exclude each other through an advisory lock (shared by
 * publishes, exclusive for the collection): a collection computing which chunks are live
 * must not miss the manifest of a blob being published beside it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import type { Bigstore } from '../bigstore/bigstore.ts';
import { adler32 } from '../bigstore/adler32.ts';
import { decodeFrame } from '../bigstore/frames.ts';
import type { DownloadedFrame } from '../bigstore/import.ts';
import { SEGMENT_TARGET_BYTES } from '../bigstore/segments.ts';
import type { ObjectStore, StoredObject } from '../storage/object-store.ts';
import { chunksToUpload, decodeSharedManifest, encodeSharedManifest, type SharedChunk } from './shared-manifest.ts';
import { MIN_ORPHAN_AGE_MS } from './store-sweep.ts';

/** Where segment objects live in the object store. */
export const SEGMENT_PREFIX = 'bigstore/';
const SEGMENT_KEY = /^bigstore\/[0-9a-f-]{36}\.seg$/;
/** The advisory lock publishes share and a collection takes alone ('GROV', 'BIGS'). */
const LOCK_KEYS = [0x47524f56, 0x42494753] as const;
/** Rows per INSERT or IN list (PostgreSQL allows 65,535 parameters a statement). */
const BATCH = 1000;
/** A link whose repository has no row is a fork's being made until this old. */
const UNBORN_LINK_MS = 3600_000;
/** A publish that raced a collection (a chunk it counted on was collected) tries again this often. */
const PUBLISH_ATTEMPTS = 3;

export interface CatalogueOptions {
  /** How long a segment no chunk names stays before it is deleted (GROVE_PACK_GRACE_MS). */
  readonly graceMs: number;
  /** Where publishes seal and imports download segments: a directory of the node's data. */
  readonly scratchDir: string;
}

export interface CatalogueStats {
  blobsPublished: number;
  segmentsUploaded: number;
  bytesUploaded: number;
  blobsImported: number;
  bytesDownloaded: number;
  blobsCollected: number;
  chunksCollected: number;
  segmentsDeleted: number;
}

export interface CatalogueCollectReport {
  readonly links: number;
  readonly blobs: number;
  readonly chunks: number;
  readonly segments: number;
  readonly orphans: number;
}

class RacedCollection extends Error {
  override name = 'RacedCollection';
}

export class BigBlobCatalogue {
  readonly #db: Db;
  readonly #store: ObjectStore;
  readonly #bigstore: Bigstore;
  readonly #options: CatalogueOptions;
  #lastOrphanPass = Number.NEGATIVE_INFINITY;
  readonly stats: CatalogueStats = { blobsPublished: 0, segmentsUploaded: 0, bytesUploaded: 0, blobsImported: 0, bytesDownloaded: 0, blobsCollected: 0, chunksCollected: 0, segmentsDeleted: 0 };

  constructor(db: Db, store: ObjectStore, bigstore: Bigstore, options: CatalogueOptions) {
    this.#db = db;
    this.#store = store;
    this.#bigstore = bigstore;
    this.#options = options;
  }

  /** The big blobs the catalogue holds for the repository: the cluster's packs need not. */
  async linkedBlobs(repoId: string): Promise<Set<string>> {
    const rows = await this.#db.selectFrom('bigstore_links').select('oid').where('repo_id', '=', repoId).execute();
    return new Set(rows.map((row) => row.oid));
  }

  /**
   * Publishes blobs this node's store holds for the repository; resolves with those the
   * catalogue now holds for it (committed). A blob the node's store does not link to the
   * repository is not published: the link there means git confirmed the repository has it.
   */
  async publish(repoId: string, oids: readonly string[]): Promise<string[]> {
    const held: string[] = [];
    for (const oid of new Set(oids)) {
      if (!this.#bigstore.isLinked(repoId, oid)) continue;
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#publishOne(repoId, oid);
          held.push(oid);
          break;
        } catch (error) {
          if (!(error instanceof RacedCollection) || attempt === PUBLISH_ATTEMPTS) throw error;
        }
      }
    }
    return held;
  }

  /** Links blobs the catalogue holds to more repositories (forks borrowing the objects); only blobs it holds. */
  async link(repoIds: readonly string[], oids: readonly string[]): Promise<void> {
    if (repoIds.length === 0 || oids.length === 0) return;
    const now = new Date().toISOString();
    await this.#sharing(async (trx) => {
      const present = (await trx.selectFrom('bigstore_blobs').select('oid').where('oid', 'in', [...oids]).execute()).map((row) => row.oid);
      if (present.length === 0) return;
      await trx.insertInto('bigstore_links').values(repoIds.flatMap((repoId) => present.map((oid) => ({ repo_id: repoId, oid, created_at: now }))))
        .onConflict((oc) => oc.columns(['repo_id', 'oid']).doNothing()).execute();
    });
  }

  /** A new fork or snapshot borrows its source's objects: it gets the source's links too. */
  async copyLinks(fromRepoId: string, toRepoId: string): Promise<void> {
    const now = new Date().toISOString();
    await this.#sharing(async (trx) => {
      await trx.insertInto('bigstore_links')
        .columns(['repo_id', 'oid', 'created_at'])
        .expression((eb) => eb.selectFrom('bigstore_links').select([eb.val(toRepoId).as('repo_id'), 'oid', eb.val(now).as('created_at')]).where('repo_id', '=', fromRepoId))
        .onConflict((oc) => oc.columns(['repo_id', 'oid']).doNothing())
        .execute();
    });
  }

  async #publishOne(repoId: string, oid: string): Promise<void> {
    const listing = this.#bigstore.chunkListing(oid);
    if (listing === null) throw new Error(`the chunk store does not hold ${oid}`);
    const now = new Date().toISOString();
    // Already in the catalogue (another node published it, or a fork's source did): a link.
    const linked = await this.#sharing(async (trx) => {
      if ((await trx.selectFrom('bigstore_blobs').select('oid').where('oid', '=', oid).executeTakeFirst()) === undefined) return false;
      await trx.insertInto('bigstore_links').values({ repo_id: repoId, oid, created_at: now }).onConflict((oc) => oc.columns(['repo_id', 'oid']).doNothing()).execute();
      return true;
    });
    if (linked) return;
    const chunks: SharedChunk[] = listing.chunks.map((chunk) => ({ hash: chunk.hash, length: chunk.length }));
    const distinct = [...new Set(chunks.map((chunk) => chunk.hash))];
    const present = new Set<string>();
    for (let i = 0; i < distinct.length; i += BATCH) {
      for (const row of await this.#db.selectFrom('bigstore_chunks').select('hash').where('hash', 'in', distinct.slice(i, i + BATCH)).execute()) present.add(row.hash);
    }
    const sealed = await this.#seal(oid, chunks, new Set(chunksToUpload(chunks, present)));
    try {
      for (const segment of sealed.segments) {
        await this.#store.put(segment.key, segment.file);
        this.stats.segmentsUploaded++;
        this.stats.bytesUploaded += segment.bytes;
      }
      await this.#sharing(async (trx) => {
        for (const segment of sealed.segments) await trx.insertInto('bigstore_segments').values({ key: segment.key, bytes: segment.bytes, created_at: now }).execute();
        for (let i = 0; i < sealed.chunks.length; i += BATCH) {
          await trx.insertInto('bigstore_chunks').values(sealed.chunks.slice(i, i + BATCH)).onConflict((oc) => oc.column('hash').doNothing()).execute();
        }
        // Every chunk the manifest names must be there now: one counted as present may have been collected since.
        let found = 0;
        for (let i = 0; i < distinct.length; i += BATCH) {
          found += Number((await trx.selectFrom('bigstore_chunks').select((eb) => eb.fn.countAll().as('n')).where('hash', 'in', distinct.slice(i, i + BATCH)).executeTakeFirstOrThrow()).n);
        }
        if (found !== distinct.length) throw new RacedCollection(`${distinct.length - found} chunk(s) of ${oid} were collected during its publish`);
        await trx.insertInto('bigstore_blobs').values({ oid, size: listing.size, manifest: encodeSharedManifest(chunks), created_at: now }).onConflict((oc) => oc.column('oid').doNothing()).execute();
        await trx.insertInto('bigstore_links').values({ repo_id: repoId, oid, created_at: now }).onConflict((oc) => oc.columns(['repo_id', 'oid']).doNothing()).execute();
      });
      this.stats.blobsPublished++;
    } finally {
      await rm(sealed.dir, { recursive: true, force: true });
    }
  }

  /**
   * Writes the frames of the chunks in `upload` (each once, as the node's store keeps
   * them) into segment files of at most 64 MiB, in a scratch directory.
   */
  async #seal(oid: string, chunks: readonly SharedChunk[], upload: ReadonlySet<string>): Promise<{
    dir: string;
    segments: Array<{ key: string; file: string; bytes: number }>;
    chunks: Array<Database['bigstore_chunks']>;
  }> {
    const dir = await mkdtemp(path.join(this.#options.scratchDir, 'seal-'));
    const segments: Array<{ key: string; file: string; bytes: number }> = [];
    const rows: Array<Database['bigstore_chunks']> = [];
    let handle: FileHandle | null = null;
    let current: { key: string; file: string; bytes: number } | null = null;
    try {
      if (upload.size > 0) {
        const written = new Set<string>();
        let i = 0;
        for await (const frame of this.#bigstore.rawFrames(oid)) {
          const hash = chunks[i++]!.hash;
          if (!upload.has(hash) || written.has(hash)) continue;
          written.add(hash);
          if (current === null || current.bytes + frame.bytes.length > SEGMENT_TARGET_BYTES) {
            await handle?.close();
            const key = `${SEGMENT_PREFIX}${randomUUID()}.seg`;
            current = { key, file: path.join(dir, path.basename(key)), bytes: 0 };
            segments.push(current);
            handle = await open(current.file, 'w');
          }
          await handle!.write(frame.bytes);
          const checksum = frame.adler32 ?? adler32(await decodeFrame(frame.bytes, frame.length));
          rows.push({ hash, segment_key: current.key, offset: current.bytes, zlen: frame.bytes.length, ulen: frame.length, adler32: checksum });
          current.bytes += frame.bytes.length;
        }
      }
    } catch (error) {
      await handle?.close();
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    await handle?.close();
    return { dir, segments, chunks: rows };
  }

  /**
   * Takes into this node's store every blob the catalogue links to the repository that the
   * node's store does not hold for it. Resolves with all the blobs linked (the node's copy of
   * the repository may lack each of them in git) and those this call added.
   */
  async importInto(repoId: string): Promise<{ linked: string[]; added: string[] }> {
    const linked = [...(await this.linkedBlobs(repoId))];
    const added: string[] = [];
    for (const oid of linked) {
      if (this.#bigstore.isLinked(repoId, oid)) continue;
      if (this.#bigstore.has(oid)) await this.#bigstore.linkTo([repoId], [oid]);
      else await this.#importOne(repoId, oid);
      added.push(oid);
    }
    return { linked, added };
  }

  async #importOne(repoId: string, oid: string): Promise<void> {
    const blob = await this.#db.selectFrom('bigstore_blobs').select(['size', 'manifest']).where('oid', '=', oid).executeTakeFirst();
    if (blob === undefined) return; // collected since the links were read: the repository no longer links it
    const chunks = decodeSharedManifest(blob.manifest);
    const needed = [...new Set(chunks.map((chunk) => chunk.hash))].filter((hash) => !this.#bigstore.hasChunk(hash));
    const places: Array<{ hash: string; segment_key: string; offset: number; zlen: number }> = [];
    for (let i = 0; i < needed.length; i += BATCH) {
      places.push(...(await this.#db.selectFrom('bigstore_chunks').select(['hash', 'segment_key', 'offset', 'zlen']).where('hash', 'in', needed.slice(i, i + BATCH)).execute()));
    }
    if (places.length !== needed.length) throw new Error(`the catalogue lacks ${needed.length - places.length} chunk(s) of ${oid}: it is damaged`);
    const dir = await mkdtemp(path.join(this.#options.scratchDir, 'import-'));
    try {
      const files = new Map<string, string>();
      for (const key of new Set(places.map((place) => place.segment_key))) {
        const file = path.join(dir, path.basename(key));
        await this.#store.get(key, file);
        files.set(key, file);
      }
      const frames: Record<string, DownloadedFrame> = {};
      for (const place of places) frames[place.hash] = { file: files.get(place.segment_key)!, offset: place.offset, zlen: place.zlen };
      await this.#bigstore.importBlob({ repoId, oid, size: blob.size, chunks, frames });
      this.stats.blobsImported++;
      this.stats.bytesDownloaded += places.reduce((sum, place) => sum + place.zlen, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** One collection pass (the sweeper's, under its lease); `nowMs` for tests. */
  async collect(nowMs: number = Date.now(), options: { readonly orphans?: boolean } = {}): Promise<CatalogueCollectReport> {
    const report = await this.#db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(${LOCK_KEYS[0]}, ${LOCK_KEYS[1]})`.execute(trx);
      const links = await trx.deleteFrom('bigstore_links')
        .where('created_at', '<', new Date(nowMs - UNBORN_LINK_MS).toISOString())
        .where('repo_id', 'not in', (eb) => eb.selectFrom('repos').select('id'))
        .executeTakeFirst();
      const blobs = await trx.deleteFrom('bigstore_blobs').where('oid', 'not in', (eb) => eb.selectFrom('bigstore_links').select('oid')).executeTakeFirst();
      const live = new Set<string>();
      for (const row of await trx.selectFrom('bigstore_blobs').select('manifest').execute()) for (const chunk of decodeSharedManifest(row.manifest)) live.add(chunk.hash);
      const dead = (await trx.selectFrom('bigstore_chunks').select('hash').execute()).map((row) => row.hash).filter((hash) => !live.has(hash));
      for (let i = 0; i < dead.length; i += BATCH) await trx.deleteFrom('bigstore_chunks').where('hash', 'in', dead.slice(i, i + BATCH)).execute();
      return { links: Number(links.numDeletedRows), blobs: Number(blobs.numDeletedRows), chunks: dead.length };
    });
    // Segments no chunk names, once past the grace period: the object, then the row.
    const empty = await this.#db.selectFrom('bigstore_segments').select('key')
      .where('created_at', '<', new Date(nowMs - this.#options.graceMs).toISOString())
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('bigstore_chunks').select('hash').whereRef('bigstore_chunks.segment_key', '=', 'bigstore_segments.key'))))
      .execute();
    for (const { key } of empty) {
      await this.#store.delete(key);
      await this.#db.deleteFrom('bigstore_segments').where('key', '=', key).execute();
    }
    // The orphan pass lists every segment object: at most hourly (nothing younger is an orphan anyway).
    let orphans = 0;
    if (options.orphans ?? nowMs - this.#lastOrphanPass >= MIN_ORPHAN_AGE_MS) {
      this.#lastOrphanPass = nowMs;
      orphans = await this.#collectOrphans(nowMs);
    }
    this.stats.blobsCollected += report.blobs;
    this.stats.chunksCollected += report.chunks;
    this.stats.segmentsDeleted += empty.length + orphans;
    return { ...report, segments: empty.length, orphans };
  }

  /**
   * Segment objects no row names (a node died between upload and COMMIT), older than an
   * hour. The listing is read before the rows: a row committed after it names an object
   * uploaded moments before its COMMIT, younger than the age.
   */
  async #collectOrphans(nowMs: number): Promise<number> {
    const objects: StoredObject[] = [];
    for await (const object of this.#store.list(SEGMENT_PREFIX)) if (SEGMENT_KEY.test(object.key) && nowMs - object.modifiedAt.getTime() >= MIN_ORPHAN_AGE_MS) objects.push(object);
    if (objects.length === 0) return 0;
    const known = new Set<string>();
    for (let i = 0; i < objects.length; i += BATCH) {
      for (const row of await this.#db.selectFrom('bigstore_segments').select('key').where('key', 'in', objects.slice(i, i + BATCH).map((o) => o.key)).execute()) known.add(row.key);
    }
    const orphans = objects.filter((object) => !known.has(object.key));
    for (const object of orphans) await this.#store.delete(object.key);
    return orphans.length;
  }

  /** A transaction holding the advisory lock shared: a collection waits for it, and it for a collection. */
  async #sharing<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.#db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock_shared(${LOCK_KEYS[0]}, ${LOCK_KEYS[1]})`.execute(trx);
      return work(trx);
    });
  }
}
