/**
 * A cluster node's disk budget for its repository copies (`GROVE_CACHE_BYTES`): every copy
 * can be rebuilt from PostgreSQL and the object store, so when the copies together pass the
 * budget, the least recently used ones that nobody is using are deleted. A copy is in use
 * from the moment a request asks for it (`use`, before any await) until its answer closes;
 * and one used within the last `minIdleMs` is kept regardless (work that did not say when it
 * ends — a fork, a compaction — is short). The deletion itself (ClusterRepoCache.evict) looks
 * again under the repository's exclusive section, so a request arriving meanwhile wins.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

export interface CachedCopy {
  readonly id: string;
  readonly bytes: number;
  /** When a request last asked for it (ms since the epoch; 0: not since this process started). */
  readonly lastUsed: number;
  /** Requests using it now. */
  readonly users: number;
}

/** Which copies to delete, least recently used first, to bring the total within `budget`. Pure. */
export function chooseEvictions(copies: readonly CachedCopy[], budget: number, now: number, minIdleMs: number): string[] {
  let total = copies.reduce((sum, c) => sum + c.bytes, 0);
  if (total <= budget) return [];
  const idle = copies.filter((c) => c.users === 0 && now - c.lastUsed >= minIdleMs).sort((a, b) => a.lastUsed - b.lastUsed || b.bytes - a.bytes);
  const chosen: string[] = [];
  for (const copy of idle) {
    if (total <= budget) break;
    chosen.push(copy.id);
    total -= copy.bytes;
  }
  return chosen;
}

export interface CacheBudgetOptions {
  /** The budget in bytes (0: none — nothing is ever evicted). */
  readonly bytes: number;
  readonly minIdleMs: number;
  /** `<data>/repos`: where the copies live (`<shard>/<id>.git`). */
  readonly reposDir: string;
  /** Deletes one copy if it is still unused; false when it was not deleted. */
  readonly evict: (repoId: string) => Promise<boolean>;
  readonly onError: (error: unknown) => void;
}

export interface CacheBudgetStats {
  /** The copies' bytes when last measured. */
  bytes: number;
  evictions: number;
}

/** How long after a change the sizes are measured again (changes in between are measured once). */
const CHECK_DELAY_MS = 1000;

export class CacheBudget {
  readonly #options: CacheBudgetOptions;
  readonly #bytes = new Map<string, number>();
  readonly #lastUsed = new Map<string, number>();
  readonly #users = new Map<string, number>();
  /** Copies whose size may have changed since they were measured. */
  readonly #changed = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | null = null;
  readonly stats: CacheBudgetStats = { bytes: 0, evictions: 0 };

  constructor(options: CacheBudgetOptions) {
    this.#options = options;
  }

  get enabled(): boolean {
    return this.#options.bytes > 0;
  }

  /** Measures the copies a previous run of the node left (the least recently used of all). */
  async open(): Promise<void> {
    if (!this.enabled) return;
    for (const shard of await readdir(this.#options.reposDir).catch(() => [] as string[])) {
      for (const name of await readdir(path.join(this.#options.reposDir, shard)).catch(() => [] as string[])) {
        if (name.endsWith('.git')) this.#changed.add(name.slice(0, -4));
      }
    }
    await this.check();
  }

  /** A request is using the copy until `until` settles (none: only now — `minIdleMs` covers the rest). */
  use(repoId: string, until?: Promise<unknown>): void {
    if (!this.enabled) return;
    this.#lastUsed.set(repoId, Date.now());
    if (until === undefined) return;
    this.#users.set(repoId, (this.#users.get(repoId) ?? 0) + 1);
    void until.finally(() => {
      const left = (this.#users.get(repoId) ?? 1) - 1;
      if (left > 0) this.#users.set(repoId, left);
      else this.#users.delete(repoId);
      this.#lastUsed.set(repoId, Date.now());
    }).catch(() => undefined);
  }

  /** Whether a request uses the copy now or did within `minIdleMs`. */
  busy(repoId: string): boolean {
    return (this.#users.get(repoId) ?? 0) > 0 || Date.now() - (this.#lastUsed.get(repoId) ?? 0) < this.#options.minIdleMs;
  }

  /** The copy grew or shrank (a sync, a write, a compaction): measure it soon and keep to the budget. */
  changed(repoId: string): void {
    if (!this.enabled) return;
    this.#changed.add(repoId);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.check().catch(this.#options.onError);
    }, CHECK_DELAY_MS);
    this.#timer.unref();
  }

  /** The copy is gone (evicted, or the repository deleted). */
  removed(repoId: string): void {
    this.#bytes.delete(repoId);
    this.#changed.delete(repoId);
    this.stats.bytes = sum(this.#bytes.values());
  }

  /** Measures what changed, then deletes idle copies until the total is within the budget. One at a time. */
  check(): Promise<void> {
    this.#checking ??= this.#check().finally(() => (this.#checking = null));
    return this.#checking;
  }

  async #check(): Promise<void> {
    for (const id of [...this.#changed]) {
      this.#changed.delete(id);
      const bytes = await directoryBytes(path.join(this.#options.reposDir, id.slice(-2), `${id}.git`));
      if (bytes === null) this.#bytes.delete(id);
      else this.#bytes.set(id, bytes);
    }
    this.stats.bytes = sum(this.#bytes.values());
    const copies = [...this.#bytes].map(([id, bytes]) => ({ id, bytes, lastUsed: this.#lastUsed.get(id) ?? 0, users: this.#users.get(id) ?? 0 }));
    for (const id of chooseEvictions(copies, this.#options.bytes, Date.now(), this.#options.minIdleMs)) {
      if (await this.#options.evict(id)) {
        this.stats.evictions++;
        this.removed(id);
        this.#lastUsed.delete(id);
      }
    }
  }
}

function sum(values: Iterable<number>): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

/** The bytes of the files under `dir` (null when it does not exist). */
async function directoryBytes(dir: string): Promise<number | null> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return null;
  }
  let total = 0;
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += (await directoryBytes(full)) ?? 0;
    else if (entry.isFile()) total += await stat(full).then((s) => s.size, () => 0);
  }
  return total;
}
