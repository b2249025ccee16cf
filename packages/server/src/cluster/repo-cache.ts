/**
 * A cluster node's repositories are caches of what PostgreSQL and the object store hold
 * (scale-out.md §3.1). Before a request reads a repository, `ensure` compares the node's copy
 * with the repository's ref version in PostgreSQL; if the copy is behind, it downloads the
 * live packs it lacks (checking each pack's trailing SHA-1 against its name), installs them
 * `.pack` before `.idx` (kept, so local maintenance never deletes them), brings the big blobs
 * the packs may lack into the node's chunk store (afterDownload), and rewrites the
 * local refs and HEAD to PostgreSQL's. One sync per repository at a time; a request that
 * arrives meanwhile waits for it. So no node serves a ref older than one another node has
 * acknowledged: the acknowledgement came after COMMIT, and the version read here comes after.
 *
 * Embedded mode needs none of this: `LocalRepositories.ensure` does nothing.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, open, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Db } from '../db/database.ts';
import type { GitRunner } from '../repo/git-command.ts';
import { initBareRepository, writeHead } from '../repo/init.ts';
import type { RefTransaction } from '../repo/ref-transaction.ts';
import type { RefView } from '../repo/ref-view.ts';
import { allRefs, type RefSnapshot } from '../repo/ref-snapshot.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { CacheBudget } from './cache-budget.ts';
import { releaseLocalPacks } from './compaction.ts';
import { packKey } from './pack-keys.ts';

export interface CachedRepo {
  readonly id: string;
  readonly gitDir: string;
  readonly defaultBranch: string;
  /** The ref version, when the caller read it with the repository's row just now (null: no ref transaction yet). */
  readonly version?: number | null;
}

export interface RepoCache {
  /**
   * Makes this node's copy of the repository at least as new as PostgreSQL's refs are now.
   * `until`: the caller uses the copy until it settles (its answer closed), so the cache
   * budget does not evict it meanwhile.
   */
  ensure(repo: CachedRepo, until?: Promise<unknown>): Promise<void>;
  /** Notes that the node's copy reached `version` by its own write (no sync needed for it). */
  advanced(repoId: string, from: number, to: number): void;
  /** The version the node's copy is known to be at (-1: unknown). */
  localVersion(repoId: string): number;
  forget(repoId: string): void;
}

export class LocalRepositories implements RepoCache {
  async ensure(): Promise<void> {}
  advanced(): void {}
  localVersion(): number {
    return -1;
  }
  forget(): void {}
}

/** Packs downloaded at once by one sync. */
const PARALLEL_DOWNLOADS = 8;

export interface RepoCacheStats {
  syncs: number;
  packsDownloaded: number;
  bytesDownloaded: number;
}

export interface RepoCacheOptions {
  /** GROVE_CACHE_BYTES: the copies' disk budget (0: none). */
  readonly cacheBytes: number;
  /** A copy used this recently is never evicted. */
  readonly minIdleMs: number;
  /** `<data>/repos`. */
  readonly reposDir: string;
  readonly gitDir: (repoId: string) => string;
  /** Deletes a copy's directory (moved out of sight at once). */
  readonly removeCopy: (repoId: string) => Promise<void>;
  readonly onError: (error: unknown) => void;
  /**
   * After a sync took the packs, before the copy's refs move: the packs may lack big blobs
   * the chunk store's catalogue holds (cluster-evictions.ts), which this brings to the node.
   */
  readonly afterDownload?: (repoId: string, gitDir: string, releasedPacks: boolean) => Promise<void>;
}

export class ClusterRepoCache implements RepoCache {
  readonly #db: Db;
  readonly #store: ObjectStore;
  readonly #git: GitRunner;
  readonly #refView: RefView;
  readonly #transaction: RefTransaction;
  readonly #versions = new Map<string, number>();
  /** The default branch each repository's HEAD was last set to here. */
  readonly #heads = new Map<string, string>();
  readonly #syncing = new Map<string, Promise<void>>();
  readonly #evicting = new Map<string, Promise<unknown>>();
  readonly #options: RepoCacheOptions;
  readonly budget: CacheBudget;
  readonly stats: RepoCacheStats = { syncs: 0, packsDownloaded: 0, bytesDownloaded: 0 };

  constructor(db: Db, store: ObjectStore, git: GitRunner, refView: RefView, transaction: RefTransaction, options: RepoCacheOptions) {
    this.#options = options;
    this.budget = new CacheBudget({ bytes: options.cacheBytes, minIdleMs: options.minIdleMs, reposDir: options.reposDir, evict: (id) => this.#evict(id), onError: options.onError });
    this.#db = db;
    this.#store = store;
    this.#git = git;
    this.#refView = refView;
    this.#transaction = transaction;
  }

  localVersion(repoId: string): number {
    return this.#versions.get(repoId) ?? -1;
  }

  advanced(repoId: string, from: number, to: number): void {
    // Only when nobody else wrote in between (the version moved by exactly this write, from
    // the version this copy is at): otherwise the next ensure syncs their change. Called in
    // the repository's exclusive section, as a sync's ref write is.
    if (to === from + 1 && this.#versions.get(repoId) === from) this.#versions.set(repoId, to);
    this.budget.changed(repoId);
  }

  forget(repoId: string): void {
    this.#versions.delete(repoId);
    this.#heads.delete(repoId);
    this.budget.removed(repoId);
  }

  async ensure(repo: CachedRepo, until?: Promise<unknown>): Promise<void> {
    this.budget.use(repo.id, until); // before any await: an eviction decided meanwhile backs off
    const evicting = this.#evicting.get(repo.id);
    if (evicting !== undefined) await evicting;
    const version = repo.version !== undefined
      ? (repo.version ?? 0)
      : ((await this.#db.selectFrom('repo_state').select('refs_version').where('repo_id', '=', repo.id).executeTakeFirst())?.refs_version ?? 0);
    for (;;) {
      if (this.localVersion(repo.id) >= version) {
        // The default branch changes without a ref version (PATCH of the repository): follow it.
        if (this.#heads.get(repo.id) !== repo.defaultBranch) await this.#followHead(repo);
        return;
      }
      const running = this.#syncing.get(repo.id);
      if (running === undefined) break;
      await running.catch(() => undefined); // then look again: it may have read an older version
    }
    const sync = this.#sync(repo, version).finally(() => this.#syncing.delete(repo.id));
    this.#syncing.set(repo.id, sync);
    await sync;
  }

  async #sync(repo: CachedRepo, version: number): Promise<void> {
    this.stats.syncs++;
    if (!(await exists(path.join(repo.gitDir, 'HEAD')))) await initBareRepository(repo.gitDir, repo.defaultBranch);
    // Refs first, then packs: every pack a ref read here needs committed before the ref did.
    const refs = await this.#db.selectFrom('repo_refs').select(['name', 'oid']).where('repo_id', '=', repo.id).execute();
    const allPacks = await this.#db.selectFrom('repo_packs').select(['name', 'superseded_version']).where('repo_id', '=', repo.id).execute();
    const packs = allPacks.filter((p) => p.superseded_version === null);
    const packDir = path.join(repo.gitDir, 'objects', 'pack');
    const missing: string[] = [];
    for (const { name } of packs) if (!(await exists(path.join(packDir, `pack-${name}.idx`)))) missing.push(name);
    for (let i = 0; i < missing.length; i += PARALLEL_DOWNLOADS) {
      await Promise.all(missing.slice(i, i + PARALLEL_DOWNLOADS).map((name) => this.#download(repo.id, packDir, name)));
    }
    // Packs a compaction replaced: their objects are in a live pack now here too.
    const released = await releaseLocalPacks(packDir, allPacks.filter((p) => p.superseded_version !== null).map((p) => p.name));
    await this.#options.afterDownload?.(repo.id, repo.gitDir, released > 0);
    await this.#transaction.exclusive(repo.gitDir, async () => {
      const local = await this.#refView.read(repo.gitDir);
      // A write of this node committed after the refs read above is newer: keep it.
      if (this.localVersion(repo.id) < version) await this.#writeRefs(repo.gitDir, local, refs);
      if (local.head?.target !== `refs/heads/${repo.defaultBranch}`) {
        await writeHead(repo.gitDir, repo.defaultBranch);
        this.#refView.invalidate(repo.gitDir);
      }
    });
    this.#heads.set(repo.id, repo.defaultBranch);
    if (this.localVersion(repo.id) < version) this.#versions.set(repo.id, version);
    this.budget.changed(repo.id);
  }

  /**
   * Deletes the node's copy of a repository nobody uses (the cache budget's choice). Requests
   * arriving meanwhile wait for it, then rebuild the copy; one that arrived before the
   * exclusive section was reached keeps it.
   */
  async #evict(repoId: string): Promise<boolean> {
    if (this.#syncing.has(repoId) || this.#evicting.has(repoId) || this.budget.busy(repoId)) return false;
    const run = this.#transaction.exclusive(this.#options.gitDir(repoId), async () => {
      if (this.#syncing.has(repoId) || this.budget.busy(repoId)) return false;
      this.forget(repoId);
      await this.#options.removeCopy(repoId);
      return true;
    });
    this.#evicting.set(repoId, run.catch(() => undefined));
    try {
      return await run;
    } finally {
      this.#evicting.delete(repoId);
    }
  }

  /** Rewrites the copy's refs to `refs` (no old values: PostgreSQL already decided). */
  async #writeRefs(gitDir: string, local: RefSnapshot, refs: readonly { name: string; oid: string }[]): Promise<void> {
    const wanted = new Map(refs.map((r) => [r.name, r.oid]));
    const have = new Map(allRefs(local).map((r) => [r.name, r.oid]));
    let input = 'start\0';
    let changes = 0;
    for (const [name, oid] of wanted) {
      if (have.get(name) === oid) continue;
      input += `update ${name}\0${oid}\0\0`; // no old value: PostgreSQL already decided
      changes++;
    }
    for (const { name } of allRefs(local)) {
      if (wanted.has(name)) continue;
      input += `delete ${name}\0\0`;
      changes++;
    }
    if (changes > 0) {
      this.#refView.invalidate(gitDir);
      try {
        await this.#git.check(['update-ref', '--stdin', '-z'], { gitDir, input: `${input}prepare\0commit\0` });
      } finally {
        this.#refView.invalidate(gitDir);
      }
    }
  }

  async #followHead(repo: CachedRepo): Promise<void> {
    await this.#transaction.exclusive(repo.gitDir, async () => {
      const local = await this.#refView.read(repo.gitDir);
      if (local.head?.target !== `refs/heads/${repo.defaultBranch}`) {
        await writeHead(repo.gitDir, repo.defaultBranch);
        this.#refView.invalidate(repo.gitDir);
      }
    });
    this.#heads.set(repo.id, repo.defaultBranch);
  }

  /** Downloads one pack and its index, checks the pack against its name, installs it kept. */
  async #download(repoId: string, packDir: string, name: string): Promise<void> {
    const base = path.join(packDir, `pack-${name}`);
    const temporary = path.join(packDir, `tmp_grove_${name}`);
    try {
      await this.#store.get(packKey(repoId, name, 'pack'), `${temporary}.pack`);
      await this.#store.get(packKey(repoId, name, 'idx'), `${temporary}.idx`);
      const trailer = await packTrailer(`${temporary}.pack`);
      if (trailer !== name) throw new Error(`pack ${name} of repository ${repoId} is corrupt in the object store (its content hashes to ${trailer})`);
      await writeFile(`${base}.keep`, 'grove: from the object store\n');
      await rename(`${temporary}.pack`, `${base}.pack`);
      await rename(`${temporary}.idx`, `${base}.idx`);
      this.stats.packsDownloaded++;
    } finally {
      await rm(`${temporary}.pack`, { force: true });
      await rm(`${temporary}.idx`, { force: true });
    }
  }
}

/** The SHA-1 of a pack's bytes before its 20-byte trailer, if the trailer says the same; else what it hashes to. Streams. */
export async function packTrailer(file: string): Promise<string> {
  const handle = await open(file, 'r');
  let size: number;
  const trailer = Buffer.alloc(20);
  try {
    size = (await handle.stat()).size;
    if (size < 32) return 'too short';
    await handle.read(trailer, 0, 20, size - 20);
  } finally {
    await handle.close();
  }
  const hash = createHash('sha1');
  for await (const chunk of createReadStream(file, { start: 0, end: size - 21 })) hash.update(chunk as Buffer);
  const digest = hash.digest('hex');
  return digest === trailer.toString('hex') ? digest : `${digest} (trailer ${trailer.toString('hex')})`;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

