/**
 * Stored once, in a cluster (docs/large-files.md, "In a cluster"): the embedded
 * EvictionScheduler's counterpart. When a node's store has durably taken big blobs of a
 * repository, they are published to the catalogue (segments uploaded, then rows), linked to
 * the repositories that borrow its objects on this node, and the compactor rewrites the
 * cluster's packs without them; the node's own copy then lets them go through the
 * maintenance queue, as on one node. A node syncing a repository imports the blobs the
 * catalogue links to it before it serves the copy (the packs it just downloaded may lack
 * them) and marks the copy as lacking them.
 */
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import { findBorrowers } from '../db/repos.ts';
import type { Bigstore } from '../bigstore/bigstore.ts';
import type { BigBlobEvictions } from '../bigstore/eviction-scheduler.ts';
import { markEvicted } from '../repo/evict-blobs.ts';
import type { Maintenance } from '../repo/maintenance.ts';
import type { BigBlobCatalogue } from './big-blob-catalogue.ts';
import type { CompactionBigBlobs, Compactor } from './compaction.ts';

export class ClusterEvictions implements CompactionBigBlobs, BigBlobEvictions {
  readonly #db: Db;
  readonly #catalogue: BigBlobCatalogue;
  readonly #bigstore: Bigstore;
  readonly #maintenance: Maintenance;
  readonly #gitDirOf: (repoId: string) => string;
  readonly #pending = new Set<Promise<void>>();
  #compactor: Compactor | null = null;

  /**
   * `publish`: GROVE_EVICT_BIG_BLOBS. Off, this node publishes nothing (its git stays complete),
   * but still imports what other nodes published: the cluster's packs may lack those blobs.
   */
  constructor(db: Db, catalogue: BigBlobCatalogue, bigstore: Bigstore, maintenance: Maintenance, gitDirOf: (repoId: string) => string, logger: Pick<Logger, 'warn'>, publish: boolean) {
    this.#db = db;
    this.#catalogue = catalogue;
    this.#bigstore = bigstore;
    this.#maintenance = maintenance;
    this.#gitDirOf = gitDirOf;
    if (publish) bigstore.onHeld((repoId, gitDir, oids) => {
      const published = this.#published(repoId, gitDir, oids).catch((error: unknown) => logger.warn({ err: error, repoId }, 'big blobs could not be published to the cluster; the next read or push retries'));
      this.#pending.add(published);
      void published.finally(() => this.#pending.delete(published));
    });
  }

  /** The compactor that rewrites the cluster's packs (it is made with this as its CompactionBigBlobs). */
  attach(compactor: Compactor): void {
    this.#compactor = compactor;
  }

  held(repoId: string): Promise<ReadonlySet<string>> {
    return this.#catalogue.linkedBlobs(repoId);
  }

  evicted(repoId: string, gitDir: string, oids: readonly string[]): void {
    this.#maintenance.scheduleEviction(gitDir, oids, (oid) => this.#bigstore.heldFor(repoId, oid) !== null);
  }

  /**
   * After a node's copy of the repository took the cluster's packs (ClusterRepoCache): the
   * blobs the catalogue links to it are in this node's store and the copy is marked, before
   * any request reads the copy. Blobs git may still hold here — new to this node, or in packs
   * the sync released to local maintenance — leave it through the maintenance queue.
   */
  async synced(repoId: string, gitDir: string, releasedPacks: boolean): Promise<void> {
    const { linked, added } = await this.#catalogue.importInto(repoId);
    if (linked.length === 0) return;
    await markEvicted(gitDir);
    const candidates = releasedPacks ? linked : added;
    if (candidates.length > 0) this.evicted(repoId, gitDir, candidates);
  }

  async #published(repoId: string, gitDir: string, oids: readonly string[]): Promise<void> {
    const held = await this.#catalogue.publish(repoId, oids);
    if (held.length === 0) return;
    // Forks on any node borrow these objects: they must be able to read them from the store too.
    const borrowers: string[] = [];
    for (let level = [repoId]; level.length > 0; ) {
      level = (await Promise.all(level.map((id) => findBorrowers(this.#db, id)))).flat().map((row) => row.id);
      borrowers.push(...level);
    }
    await this.#catalogue.link(borrowers, held);
    await this.#bigstore.linkTo(borrowers, held);
    // This copy's own packs (a push's, before the cluster's packs lose them) let them go now, as on one node.
    this.evicted(repoId, gitDir, held);
    this.#compactor?.requestEviction(repoId, gitDir);
    for (const borrower of borrowers) this.#compactor?.requestEviction(borrower, this.#gitDirOf(borrower));
  }

  /** Resolves once every publish asked for so far, its compaction and the local evictions are done (tests). */
  async idle(): Promise<void> {
    do {
      await this.#bigstore.idle();
      await Promise.all(this.#pending);
      await this.#compactor?.idle();
      await this.#maintenance.idle();
    } while (this.#pending.size > 0);
  }
}
