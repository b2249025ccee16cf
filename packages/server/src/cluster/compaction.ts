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
 */
import { mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { GitRunner } from '../repo/git-command.ts';
import { QUARANTINE_PREFIX } from '../repo/quarantine.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { Leases } from './leases.ts';
import { packKey } from './pack-keys.ts';
import type { CachedRepo, RepoCache } from './repo-cache.ts';

export interface CompactionOptions {
  /** A repository with more live packs than this is compacted. */
  readonly maxLivePacks: number;
}

export const DEFAULT_COMPACTION: CompactionOptions = { maxLivePacks: 8 };

export interface CompactionStats {
  runs: number;
  packsReplaced: number;
  failures: number;
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
  readonly stats: CompactionStats = { runs: 0, packsReplaced: 0, failures: 0 };

  constructor(db: Db, store: ObjectStore, cache: RepoCache, git: GitRunner, leases: Leases, logger: Pick<Logger, 'warn' | 'debug'>, options: CompactionOptions = DEFAULT_COMPACTION) {
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

  /** Waits for the runs in progress (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running.values());
  }

  async #maybeCompact(repoId: string, gitDir: string): Promise<void> {
    const live = await this.#livePacks(repoId);
    if (live.length <= this.#options.maxLivePacks) return;
    if (!(await this.#leases.hold(`compact:${repoId}`))) return; // another node compacts it
    const row = await this.#db.selectFrom('repos').select('default_branch').where('id', '=', repoId).executeTakeFirst();
    if (row === undefined) return;
    const repo: CachedRepo = { id: repoId, gitDir, defaultBranch: row.default_branch };
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    try {
      await this.#cache.ensure(repo, done); // every live pack local, and the copy kept while compacting
      await this.#compact(repoId, gitDir);
    } finally {
      finished();
    }
  }

  async #compact(repoId: string, gitDir: string): Promise<void> {
    const chosen = choosePacks(await this.#livePacks(repoId));
    if (chosen.length === 0) return;
    const packDir = path.join(gitDir, 'objects', 'pack');
    const oids = new Set<string>();
    for (const name of chosen) {
      const index = await this.#git.check(['show-index'], { gitDir, input: await readFile(path.join(packDir, `pack-${name}.idx`)) });
      for (const line of index.toString('utf8').split('\n')) {
        const oid = line.split(' ')[1];
        if (oid !== undefined) oids.add(oid);
      }
    }
    const dir = await mkdtemp(path.join(gitDir, 'objects', `${QUARANTINE_PREFIX}compact-`));
    try {
      const name = (await this.#git.check(['pack-objects', '--delta-base-offset', '-q', path.join(dir, 'pack')], { gitDir, input: `${[...oids].join('\n')}\n` })).toString().trim();
      const bytes = (await stat(path.join(dir, `pack-${name}.pack`))).size;
      await this.#store.put(packKey(repoId, name, 'pack'), path.join(dir, `pack-${name}.pack`));
      await this.#store.put(packKey(repoId, name, 'idx'), path.join(dir, `pack-${name}.idx`));
      const now = new Date().toISOString();
      await this.#db.transaction().execute(async (trx) => {
        const state = await trx.selectFrom('repo_state').select('refs_version').where('repo_id', '=', repoId).executeTakeFirst();
        const version = state?.refs_version ?? 0;
        await trx.insertInto('repo_packs').values({ repo_id: repoId, name, bytes, added_version: version, superseded_version: null, superseded_at: null, created_at: now })
          .onConflict((oc) => oc.columns(['repo_id', 'name']).doNothing()).execute();
        // Exactly the packs read (a pack pushed meanwhile is not among them and stays live).
        await trx.updateTable('repo_packs').set({ superseded_version: version, superseded_at: now })
          .where('repo_id', '=', repoId).where('name', 'in', chosen.filter((c) => c !== name)).where('superseded_version', 'is', null).execute();
      });
      await writeFile(path.join(packDir, `pack-${name}.keep`), 'grove: in the object store\n');
      for (const file of (await readdir(dir)).sort((a, b) => (a.endsWith('.pack') ? -1 : b.endsWith('.pack') ? 1 : 0))) {
        await rename(path.join(dir, file), path.join(packDir, file)).catch(() => undefined);
      }
      await releaseLocalPacks(packDir, chosen.filter((c) => c !== name));
      this.stats.runs++;
      this.stats.packsReplaced += chosen.length;
      this.#logger.debug({ repoId, replaced: chosen.length, into: name, bytes }, 'compacted');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async #livePacks(repoId: string): Promise<{ name: string; bytes: number }[]> {
    return this.#db.selectFrom('repo_packs').select(['name', 'bytes']).where('repo_id', '=', repoId).where('superseded_version', 'is', null).execute();
  }
}


/**
 * Lets a node's copy drop packs a compaction replaced (their objects are in a live pack there
 * already): their `.keep` goes, so the node's own maintenance (`git repack -d`) folds them in
 * and deletes them. Deleting them here would break git processes reading them right now, and
 * the node's multi-pack index, which names them.
 */
export async function releaseLocalPacks(packDir: string, names: readonly string[]): Promise<void> {
  for (const name of names) await rm(path.join(packDir, `pack-${name}.keep`), { force: true });
}
