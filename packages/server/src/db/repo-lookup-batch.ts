/**
 * The git routes' repository lookup on a cluster node, batched: each request must read the
 * repository's row and ref version from PostgreSQL (no node may serve a ref older than one
 * another node acknowledged), but concurrent requests can share one query. A request joins
 * the next query to *start* — never one already in flight, which may have read before the
 * request arrived — so every answer still comes from a read made after its request arrived.
 * One query runs at a time; the first request of a quiet moment starts one at once (no added
 * latency); requests arriving meanwhile ride the next, up to MAX_BATCH names each.
 */
import type pg from 'pg';
import type { RepoWithOrg } from './repos.ts';

const MAX_BATCH = 500;

const LOOKUP = `
  select repos.*, orgs.name as org_name, repo_state.refs_version
  from unnest($1::text[], $2::text[]) as wanted(org, repo)
  join orgs on orgs.name = wanted.org
  join repos on repos.org_id = orgs.id and repos.name = wanted.repo
  left join repo_state on repo_state.repo_id = repos.id`;

interface Waiting {
  readonly org: string;
  readonly repo: string;
  readonly waiters: { resolve: (row: RepoWithOrg | undefined) => void; reject: (error: unknown) => void }[];
}

export class RepoLookupBatch {
  readonly #pool: pg.Pool;
  readonly #pending = new Map<string, Waiting>();
  #running = false;
  /** Queries made, and lookups answered (the ratio is the batching). */
  readonly stats = { queries: 0, lookups: 0 };

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  lookup(org: string, repo: string): Promise<RepoWithOrg | undefined> {
    return new Promise((resolve, reject) => {
      const key = `${org}/${repo}`;
      let waiting = this.#pending.get(key);
      if (waiting === undefined) this.#pending.set(key, (waiting = { org, repo, waiters: [] }));
      waiting.waiters.push({ resolve, reject });
      if (!this.#running) {
        this.#running = true;
        // After this turn's other arrivals (requests read in the same poll phase join it).
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.size > 0) {
        const batch: Waiting[] = [];
        for (const [key, waiting] of this.#pending) {
          batch.push(waiting);
          this.#pending.delete(key);
          if (batch.length === MAX_BATCH) break;
        }
        try {
          const rows = await this.#query(batch);
          const found = new Map(rows.map((row) => [`${row.org_name}/${row.name}`, row]));
          for (const waiting of batch) for (const waiter of waiting.waiters) waiter.resolve(found.get(`${waiting.org}/${waiting.repo}`));
        } catch (error) {
          for (const waiting of batch) for (const waiter of waiting.waiters) waiter.reject(error);
        }
      }
    } finally {
      this.#running = false;
    }
  }

  async #query(batch: readonly Waiting[]): Promise<RepoWithOrg[]> {
    this.stats.queries++;
    this.stats.lookups += batch.reduce((n, w) => n + w.waiters.length, 0);
    const orgs = batch.map((w) => w.org);
    const repos = batch.map((w) => w.repo);
    // A named statement: each connection parses and plans it once, whatever the batch size.
    return (await this.#pool.query<RepoWithOrg>({ name: 'grove_repo_lookup', text: LOOKUP, values: [orgs, repos] })).rows;
  }
}
