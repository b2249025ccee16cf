/**
 * Cluster compaction (scale-out.md §3.1, JGit DFS's `commitPack(new, replaces)`): every push
 * adds a pack to the object store, and a node with an empty cache must download every live
 * pack, so the set is kept small. When a repository has more than `maxLivePacks`, the node
 * that just published to it — holding the lease `compact:<repo>` so that no other node does
 * the same — writes one pack holding exactly the objects of the packs it chose (their index
 * lists them: no reachability walk, so nothing any ref or push in flight needs can be left
 * out), uploads it, and in one transaction records it and marks exactly those packs
 * superseded. A push meanwhile adds a pack outside that set, which stays live. Superseded
 * packs stay in the store for a grace period (a node may still be downloading one); the
 * sweeper then deletes them (store-sweep.ts).
 *
 * Which packs: all of them, unless the largest is at least twice the rest together; then
 * the rest (geometric, so a big repository is not rewritten for every few small pushes).
 *
 * Big blobs (docs/large-files.md, "In a cluster"): the replacement pack leaves out every big
 * blob the chunk store's catalogue holds for the repository (committed before this reads
 * it), so the cluster keeps those bytes once, in the chunk store's segments. An eviction
 * request (after a publish) also chooses every live pack holding such a blob, however few
 * packs there are.
 */
import { access, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { GitRunner } from '../repo/git-command.ts';
import { QUARANTINE_PREFIX } from '../repo/quarantine.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { LEASE_MS, type Leases } from './leases.ts';
import { packKey } from './pack-keys.ts';
import type { CachedRepo, RepoCache } from './repo-cache.ts';

export interface CompactionOptions {
  /** A repository with more live packs than this is compacted. */
  readonly maxLivePacks: number;
}

/** What compaction asks of the chunk store's catalogue (big-blob-catalogue.ts). */
export interface CompactionBigBlobs {
  /** The big blobs the catalogue holds for the repository (committed): the cluster's packs need not. */
  held(repoId: string): Promise<ReadonlySet<string>>;
  /** A compaction left these out of the cluster's packs: the node's own copy may let them go. */
  evicted(repoId: string, gitDir: string, oids: readonly string[]): void;
}

/**
 * An eviction whose lease another node holds is asked for again this often, so many times:
 * the holder is compacting (seconds; it releases the lease when done) or died (the lease
 * expires within LEASE_MS).
 */
const EVICTION_RETRY_MS = 1000;
const EVICTION_RETRIES = 3 * (LEASE_MS / EVICTION_RETRY_MS);

export const DEFAULT_COMPACTION: CompactionOptions = { maxLivePacks: 8 };

export interface CompactionStats {
  runs: number;
  packsReplaced: number;
  failures: number;
  /** Big blobs left out of a repository's packs (the catalogue holds them). */
  blobsEvicted: number;
}

/** The packs to merge, given each live pack's size: all, or all but a dominant largest one. Pure. */
export function choosePacks(packs: readonly { name: string; bytes: number }[]): string[] {
  if (packs.length < 2) return [];
  const sorted = [...packs].sort((a, b) => b.bytes - a.bytes);
  const rest = sorted.slice(1);
  const restBytes = rest.reduce((sum, p) => sum + p.bytes, 0);
  const chosen = sorted[0]!.bytes >= 2 * restBytes ? rest : sorted;
  return chosen.length < 2 ? [] : chosen.map((p) => p.name);
}

export class Compactor {
  readonly #db: Db;
  readonly #store: ObjectStore;
  readonly #cache: RepoCache;
  readonly #git: GitRunner;
  readonly #leases: Leases;
  readonly #logger: Pick<Logger, 'warn' | 'debug'>;
  readonly #options: CompactionOptions;
  readonly #running = new Map<string, Promise<void>>();
  readonly #again = new Set<string>();
  /** Repositories whose packs should lose the big blobs the catalogue holds, with the retries left. */
  readonly #evictions = new Map<string, number>();
  readonly #retryTimers = new Set<NodeJS.Timeout>();
  readonly #bigBlobs: CompactionBigBlobs | null;
  readonly stats: CompactionStats = { runs: 0, packsReplaced: 0, failures: 0, blobsEvicted: 0 };

  constructor(db: Db, store: ObjectStore, cache: RepoCache, git: GitRunner, leases: Leases, logger: Pick<Logger, 'warn' | 'debug'>, options: CompactionOptions = DEFAULT_COMPACTION, bigBlobs: CompactionBigBlobs | null = null) {
    this.#bigBlobs = bigBlobs;
    this.#db = db;
    this.#store = store;
    this.#cache = cache;
    this.#git = git;
    this.#leases = leases;
    this.#logger = logger;
    this.#options = options;
  }

  /** Compacts the repository in the background if it has too many live packs (at most one run per repository). */
  request(repoId: string, gitDir: string): void {
    if (this.#running.has(repoId)) {
      this.#again.add(repoId); // pushes landed during the run: look again when it ends
      return;
    }
    const run = this.#maybeCompact(repoId, gitDir)
      .catch((error: unknown) => {
        this.stats.failures++;
        this.#logger.warn({ err: error, repoId }, 'compaction failed; the next push retries it');
      })
      .finally(() => {
        this.#running.delete(repoId);
        if (this.#again.delete(repoId)) this.request(repoId, gitDir);
      });
    this.#running.set(repoId, run);
  }

  /**
   * Rewrites, in the background, the repository's live packs that hold big blobs the
   * catalogue holds for it, without them (after a publish).
   */
  requestEviction(repoId: string, gitDir: string, retries = EVICTION_RETRIES): void {
    if (this.#bigBlobs === null) return;
    this.#evictions.set(repoId, Math.max(retries, this.#evictions.get(repoId) ?? 0));
    this.request(repoId, gitDir);
  }

  /** Waits for the runs in progress and the evictions waiting to retry (shutdown stops those first; tests). */
  async idle(): Promise<void> {
    while (this.#running.size > 0 || this.#retryTimers.size > 0) {
      await Promise.all(this.#running.values());
      if (this.#retryTimers.size > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Stops retrying evictions (shutdown). */
  stop(): void {
    for (const timer of this.#retryTimers) clearTimeout(timer);
    this.#retryTimers.clear();
  }

  async #maybeCompact(repoId: string, gitDir: string): Promise<void> {
    const retries = this.#evictions.get(repoId);
    this.#evictions.delete(repoId);
    const evict = retries !== undefined;
    const live = await this.#livePacks(repoId);
    if (!evict && live.length <= this.#options.maxLivePacks) return;
    if (!(await this.#leases.hold(`compact:${repoId}`))) {
      // Another node compacts it now, maybe from a list of blobs read before this publish: ask again later.
      if (evict && retries > 0) {
        const timer = setTimeout(() => {
          this.#retryTimers.delete(timer);
          this.requestEviction(repoId, gitDir, retries - 1);
        }, EVICTION_RETRY_MS);
        timer.unref();
        this.#retryTimers.add(timer);
      }
      return;
    }
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    try {
      const row = await this.#db.selectFrom('repos').select('default_branch').where('id', '=', repoId).executeTakeFirst();
      if (row === undefined) return;
      const repo: CachedRepo = { id: repoId, gitDir, defaultBranch: row.default_branch };
      await this.#cache.ensure(repo, done); // every live pack local, and the copy kept while compacting
      await this.#compact(repoId, gitDir, evict);
    } finally {
      finished();
      // Done: the next node with something to compact (an eviction after its own publish) need not wait for the expiry.
      await this.#leases.release(`compact:${repoId}`);
    }
  }

  async #compact(repoId: string, gitDir: string, evict: boolean): Promise<void> {
    const live = await this.#livePacks(repoId);
    const held = this.#bigBlobs === null ? new Set<string>() : await this.#bigBlobs.held(repoId);
    const packDir = path.join(gitDir, 'objects', 'pack');
    const contents = new Map<string, string[]>();
    const objectsOf = async (name: string): Promise<string[]> => {
      let oids = contents.get(name);
      if (oids === undefined) {
        const index = await this.#git.check(['show-index'], { gitDir, input: await readFile(path.join(packDir, `pack-${name}.idx`)) });
        oids = index.toString('utf8').split('\n').flatMap((line) => line.split(' ')[1] ?? []);
        contents.set(name, oids);
      }
      return oids;
    };
    const chosen = new Set(evict && live.length <= this.#options.maxLivePacks ? [] : choosePacks(live));
    if (evict && held.size > 0) for (const pack of live) if ((await objectsOf(pack.name)).some((oid) => held.has(oid))) chosen.add(pack.name);
    if (chosen.size === 0) return;
    const kept = new Set<string>();
    const dropped = new Set<string>();
    for (const name of chosen) for (const oid of await objectsOf(name)) (held.has(oid) ? dropped : kept).add(oid);
    if (chosen.size < 2 && dropped.size === 0) return;
    const dir = await mkdtemp(path.join(gitDir, 'objects', `${QUARANTINE_PREFIX}compact-`));
    try {
      // Nothing left to pack when the chosen packs held only evicted blobs: they are superseded by nothing.
      const written = kept.size === 0 ? null : await this.#writePack(repoId, gitDir, dir, kept);
      const now = new Date().toISOString();
      await this.#db.transaction().execute(async (trx) => {
        const state = await trx.selectFrom('repo_state').select('refs_version').where('repo_id', '=', repoId).executeTakeFirst();
        const version = state?.refs_version ?? 0;
        if (written !== null) {
          await trx.insertInto('repo_packs').values({ repo_id: repoId, name: written.name, bytes: written.bytes, added_version: version, superseded_version: null, superseded_at: null, created_at: now })
            .onConflict((oc) => oc.columns(['repo_id', 'name']).doNothing()).execute();
        }
        // Exactly the packs read (a pack pushed meanwhile is not among them and stays live).
        await trx.updateTable('repo_packs').set({ superseded_version: version, superseded_at: now })
          .where('repo_id', '=', repoId).where('name', 'in', [...chosen].filter((c) => c !== written?.name)).where('superseded_version', 'is', null).execute();
      });
      if (written !== null) {
        await writeFile(path.join(packDir, `pack-${written.name}.keep`), 'grove: in the object store\n');
        for (const file of (await readdir(dir)).sort((a, b) => (a.endsWith('.pack') ? -1 : b.endsWith('.pack') ? 1 : 0))) {
          await rename(path.join(dir, file), path.join(packDir, file)).catch(() => undefined);
        }
      }
      await releaseLocalPacks(packDir, [...chosen].filter((c) => c !== written?.name));
      this.stats.runs++;
      this.stats.packsReplaced += chosen.size;
      this.stats.blobsEvicted += dropped.size;
      this.#logger.debug({ repoId, replaced: chosen.size, into: written?.name ?? null, bytes: written?.bytes ?? 0, blobsLeftOut: dropped.size }, 'compacted');
      if (dropped.size > 0) this.#bigBlobs?.evicted(repoId, gitDir, [...dropped]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Packs exactly `oids` (an object list, no walk) and uploads the pack and its index. */
  async #writePack(repoId: string, gitDir: string, dir: string, oids: ReadonlySet<string>): Promise<{ name: string; bytes: number }> {
    const name = (await this.#git.check(['pack-objects', '--delta-base-offset', '-q', path.join(dir, 'pack')], { gitDir, input: `${[...oids].join('\n')}\n` })).toString().trim();
    const bytes = (await stat(path.join(dir, `pack-${name}.pack`))).size;
    await this.#store.put(packKey(repoId, name, 'pack'), path.join(dir, `pack-${name}.pack`));
    await this.#store.put(packKey(repoId, name, 'idx'), path.join(dir, `pack-${name}.idx`));
    return { name, bytes };
  }

  async #livePacks(repoId: string): Promise<{ name: string; bytes: number }[]> {
    return this.#db.selectFrom('repo_packs').select(['name', 'bytes']).where('repo_id', '=', repoId).where('superseded_version', 'is', null).execute();
  }
}


/**
 * Lets a node's copy drop packs a compaction replaced (their objects are in a live pack there
 * already): their `.keep` goes, so the node's own maintenance (`git repack -d`) folds them in
 * and deletes them. Deleting them here would break git processes reading them right now, and
 * the node's multi-pack index, which names them. Resolves with how many were still kept.
 */
export async function releaseLocalPacks(packDir: string, names: readonly string[]): Promise<number> {
  let released = 0;
  for (const name of names) {
    const keep = path.join(packDir, `pack-${name}.keep`);
    if (!(await access(keep).then(() => true, () => false))) continue;
    await rm(keep, { force: true });
    released++;
  }
  return released;
}
