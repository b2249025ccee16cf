/**
 * Garbage in the object store, deleted by the sweeper while it holds its lease:
 *
 * - packs a compaction superseded longer ago than the grace period (a node may still be
 *   downloading one until then): the objects, then their rows;
 * - orphans: pack objects no row names — uploaded by a node that died before its COMMIT, or
 *   left by a deleted repository — once older than `orphanAgeMs`. The age keeps an upload whose
 *   transaction has not committed yet safe: a pack is uploaded moments before its COMMIT, so
 *   an hour-old object no row names will never be named.
 */
import type { Db } from '../db/database.ts';
import type { ObjectStore, StoredObject } from '../storage/object-store.ts';
import { packKey } from './pack-keys.ts';

export interface StoreSweepOptions {
  /** How long a superseded pack stays before it is deleted (GROVE_PACK_GRACE_MS). */
  readonly graceMs: number;
  /** How old an object no row names must be to be deleted (at least an hour). */
  readonly orphanAgeMs: number;
}

export interface StoreSweepStats {
  supersededDeleted: number;
  orphansDeleted: number;
}

/** The shortest orphan age accepted: far beyond any upload-to-COMMIT gap. */
export const MIN_ORPHAN_AGE_MS = 3600_000;

/** How often the sweeper's pass includes the orphan sweep. */
const ORPHAN_SWEEP_INTERVAL_MS = 3600_000;

const PACK_OBJECT = /^repos\/([^/]+)\/pack-([0-9a-f]{40})\.(pack|idx)$/;

/** The keys among `objects` that are orphans: pack objects of no recorded pack, older than `ageMs`. Pure. */
export function orphanKeys(objects: readonly StoredObject[], recorded: ReadonlySet<string>, nowMs: number, ageMs: number): string[] {
  const orphans: string[] = [];
  for (const object of objects) {
    const match = PACK_OBJECT.exec(object.key);
    if (match === null) continue; // not ours to judge
    if (recorded.has(`${match[1]}/${match[2]}`)) continue;
    if (nowMs - object.modifiedAt.getTime() < ageMs) continue;
    orphans.push(object.key);
  }
  return orphans;
}

export class StoreSweep {
  readonly #db: Db;
  readonly #store: ObjectStore;
  readonly #options: StoreSweepOptions;
  readonly stats: StoreSweepStats = { supersededDeleted: 0, orphansDeleted: 0 };
  #lastOrphanSweep = Number.NEGATIVE_INFINITY;

  constructor(db: Db, store: ObjectStore, options: StoreSweepOptions) {
    this.#db = db;
    this.#store = store;
    this.#options = { ...options, orphanAgeMs: Math.max(MIN_ORPHAN_AGE_MS, options.orphanAgeMs) };
  }

  /** The sweeper's pass (every GROVE_SWEEP_INTERVAL_MS): superseded packs each time, orphans at most hourly. */
  async sweep(nowMs: number = Date.now()): Promise<void> {
    await this.sweepSuperseded(nowMs);
    // The orphan pass lists the whole store; nothing becomes an orphan younger than an hour anyway.
    if (nowMs - this.#lastOrphanSweep < ORPHAN_SWEEP_INTERVAL_MS) return;
    this.#lastOrphanSweep = nowMs;
    await this.sweepOrphans(nowMs);
  }

  /** Deletes from the store (then from the table) the packs superseded longer ago than the grace period. */
  async sweepSuperseded(nowMs: number = Date.now()): Promise<number> {
    const before = new Date(nowMs - this.#options.graceMs).toISOString();
    const rows = await this.#db.selectFrom('repo_packs').select(['repo_id', 'name']).where('superseded_at', 'is not', null).where('superseded_at', '<', before).limit(500).execute();
    for (const row of rows) {
      await this.#store.delete(packKey(row.repo_id, row.name, 'pack'));
      await this.#store.delete(packKey(row.repo_id, row.name, 'idx'));
      await this.#db.deleteFrom('repo_packs').where('repo_id', '=', row.repo_id).where('name', '=', row.name).execute();
    }
    this.stats.supersededDeleted += rows.length;
    return rows.length;
  }

  /**
   * Deletes pack objects no row names, older than the orphan age. The listing is read before
   * the rows: a row committed after the listing names an object uploaded before its COMMIT,
   * which is younger than the age, so it is never taken for an orphan.
   */
  async sweepOrphans(nowMs: number = Date.now()): Promise<number> {
    const objects: StoredObject[] = [];
    for await (const object of this.#store.list('repos/')) objects.push(object);
    if (objects.length === 0) return 0;
    const rows = await this.#db.selectFrom('repo_packs').select(['repo_id', 'name']).execute();
    const recorded = new Set(rows.map((row) => `${row.repo_id}/${row.name}`));
    const orphans = orphanKeys(objects, recorded, nowMs, this.#options.orphanAgeMs);
    for (const key of orphans) await this.#store.delete(key);
    this.stats.orphansDeleted += orphans.length;
    return orphans.length;
  }
}
