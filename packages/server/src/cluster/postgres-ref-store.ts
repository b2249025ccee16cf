/**
 * The cluster's ref path (scale-out.md §3.1 "Push"): PostgreSQL's `repo_refs` is the truth.
 *
 *   1. check each update against PostgreSQL's current value (a stale one fails before any upload);
 *   2. publish the objects the new tips need that no ref already reaches: one pack made by
 *      `git pack-objects --revs` from the node's copy (new tips, not its current refs),
 *      uploaded `.pack` then `.idx` under the pack's own checksum;
 *   3. one transaction: lock the repository's `repo_state` row (bumping its ref version),
 *      compare-and-swap every ref, record the pack, write the events and their deliveries;
 *   4. only after COMMIT returns: the caller may say "ok". Then the node's own copy takes the
 *      pack and the refs (a cache: PostgreSQL has decided).
 *
 * Why the pack is complete: every value a ref has ever had in PostgreSQL was committed after
 * its objects were published, and packs are never deleted while live, so everything the node's
 * refs reach is in the store; the pack adds what the new tips reach beyond that.
 * A connection lost during COMMIT leaves the outcome unknown: the error propagates and is
 * never reported as "ok".
 */
import { mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import type { EventLog } from '../events/event-log.ts';
import { isZeroOid, ZERO_OID } from '../git/oid.ts';
import type { GitRunner } from '../repo/git-command.ts';
import { QUARANTINE_PREFIX } from '../repo/quarantine.ts';
import { allRefs } from '../repo/ref-snapshot.ts';
import { mayLackBlobs } from '../repo/evict-blobs.ts';
import type { EventsOf, RefStore, RepoHandle } from '../repo/ref-store.ts';
import type { RefTransaction, RefUpdate, TransactionResult } from '../repo/ref-transaction.ts';
import type { RefView } from '../repo/ref-view.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { packKey } from './pack-keys.ts';
import type { RepoCache } from './repo-cache.ts';

const STALE = (current: string) =>
  isZeroOid(current) ? 'stale old value: the ref does not exist (fetch first)' : current === 'exists' ? 'stale old value: the ref already exists (fetch first)' : `stale old value: the ref is now at ${current.slice(0, 12)} (fetch first)`;

interface Published {
  readonly name: string;
  readonly bytes: number;
  readonly dir: string;
}

export interface PostgresRefStoreStats {
  transactions: number;
  packsPublished: number;
  bytesPublished: number;
}

export class PostgresRefStore implements RefStore {
  readonly #db: Db;
  readonly #events: EventLog;
  readonly #store: ObjectStore;
  readonly #cache: RepoCache;
  readonly #git: GitRunner;
  readonly #refView: RefView;
  readonly #transaction: RefTransaction;
  /** One write at a time per repository on this node (across nodes, the row lock orders them). */
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly stats: PostgresRefStoreStats = { transactions: 0, packsPublished: 0, bytesPublished: 0 };

  readonly #onPublished: (repo: RepoHandle) => void;

  /** `onPublished`: told after a ref transaction that added a pack (compaction watches the count). */
  constructor(db: Db, events: EventLog, store: ObjectStore, cache: RepoCache, git: GitRunner, refView: RefView, transaction: RefTransaction, onPublished: (repo: RepoHandle) => void = () => undefined) {
    this.#onPublished = onPublished;
    this.#db = db;
    this.#events = events;
    this.#store = store;
    this.#cache = cache;
    this.#git = git;
    this.#refView = refView;
    this.#transaction = transaction;
  }

  async apply(repo: RepoHandle, updates: readonly RefUpdate[], events?: EventsOf): Promise<TransactionResult> {
    if (updates.length === 0) return { ok: true };
    const results = await this.#write(repo, updates, true, events);
    return results.find((r) => !r.ok) ?? { ok: true };
  }

  async applyEach(repo: RepoHandle, updates: readonly RefUpdate[], events?: EventsOf): Promise<TransactionResult[]> {
    if (updates.length === 0) return [];
    return this.#write(repo, updates, false, events);
  }

  #serialized<T>(repoId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(repoId) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.#queues.set(repoId, settled);
    void settled.then(() => {
      if (this.#queues.get(repoId) === settled) this.#queues.delete(repoId);
    });
    return next;
  }

  async #write(repo: RepoHandle, updates: readonly RefUpdate[], atomic: boolean, events: EventsOf | undefined): Promise<TransactionResult[]> {
    const current = new Map((await this.#db.selectFrom('repo_refs').select(['name', 'oid']).where('repo_id', '=', repo.id).execute()).map((r) => [r.name, r.oid]));
    const results: TransactionResult[] = updates.map((u) => check(u, current.get(u.ref) ?? ZERO_OID) ?? nameConflict(u, current));
    await this.#checkBranchTargets(repo, updates, results);
    if (atomic && results.some((r) => !r.ok)) return failAll(results);
    const candidates = updates.filter((_, i) => results[i]!.ok);
    if (candidates.length === 0) return results;
    // Publishing needs no order: concurrent writers of one repository upload side by side.
    const pack = await this.#publish(repo, candidates.map((u) => u.newOid).filter((oid) => !isZeroOid(oid)));
    try {
      return await this.#serialized(repo.id, () => this.#commit(repo, updates, candidates, results, pack, atomic, events));
    } finally {
      if (pack !== null) await rm(pack.dir, { recursive: true, force: true });
    }
  }

  /** The transaction and the node copy's update, one writer of the repository at a time on this node. */
  async #commit(
    repo: RepoHandle,
    updates: readonly RefUpdate[],
    candidates: readonly RefUpdate[],
    results: TransactionResult[],
    pack: Published | null,
    atomic: boolean,
    events: EventsOf | undefined,
  ): Promise<TransactionResult[]> {
    const outcome = await this.#db.transaction().execute(async (trx) => {
      const version = await bumpVersion(trx, repo.id);
      const applied: RefUpdate[] = [];
      for (const update of candidates) {
        const swapped = await compareAndSwap(trx, repo.id, update);
        const index = updates.indexOf(update);
        if (swapped) applied.push(update);
        else results[index] = { ok: false, reason: STALE((await currentValue(trx, repo.id, update.ref)) ?? ZERO_OID) };
      }
      if (applied.length === 0 || (atomic && applied.length < candidates.length)) throw new NothingApplied();
      if (pack !== null) {
        // The same objects published twice (two writers of one new commit) make the same pack; it is live again.
        await trx.insertInto('repo_packs').values({ repo_id: repo.id, name: pack.name, bytes: pack.bytes, added_version: version, superseded_version: null, superseded_at: null, created_at: new Date().toISOString() })
          .onConflict((oc) => oc.columns(['repo_id', 'name']).doUpdateSet({ superseded_version: null, superseded_at: null })).execute();
      }
      const committed = events === undefined ? null : await this.#events.writeIn(trx, events(applied));
      return { version, applied, committed };
    }).catch((error: unknown) => {
      if (error instanceof NothingApplied) return null;
      throw error;
    });
    this.stats.transactions++;
    if (outcome === null) return atomic ? failAll(results) : results;
    if (outcome.committed !== null) await this.#events.announce(outcome.committed);
    await this.#applyLocally(repo, outcome.applied, pack, outcome.version);
    if (pack !== null) this.#onPublished(repo);
    return results;
  }

  /** Branches point at commits (update-ref refuses anything else, and the node's copy must take every ref PostgreSQL does). */
  async #checkBranchTargets(repo: RepoHandle, updates: readonly RefUpdate[], results: TransactionResult[]): Promise<void> {
    const branchTips = updates.filter((u, i) => results[i]!.ok && u.ref.startsWith('refs/heads/') && !isZeroOid(u.newOid));
    if (branchTips.length === 0) return;
    const out = await this.#git.check(['cat-file', '--batch-check=%(objecttype)'], { gitDir: repo.gitDir, input: branchTips.map((u) => `${u.newOid}\n`).join('') });
    const types = out.toString('utf8').trim().split('\n');
    branchTips.forEach((update, n) => {
      const type = (types[n] ?? '').replace(/^\S+ /, '');
      if (type !== 'commit') results[updates.indexOf(update)] = { ok: false, reason: `branches must point at commits (${update.newOid.slice(0, 12)} is ${type === 'missing' || type.endsWith('missing') ? 'missing' : `a ${type}`})` };
    });
  }

  /** Packs what `tips` reach beyond the node's refs, uploads it; null when there is nothing new. */
  async #publish(repo: RepoHandle, tips: readonly string[]): Promise<Published | null> {
    if (tips.length === 0) return null;
    const local = await this.#refView.read(repo.gitDir);
    const dir = await mkdtemp(path.join(repo.gitDir, 'objects', `${QUARANTINE_PREFIX}publish-`));
    try {
      const input = [...new Set(tips)].join('\n') + '\n' + [...new Set(allRefs(local).map((r) => `^${r.oid}`))].join('\n') + '\n';
      // A copy lacking big blobs the chunk store's catalogue holds (evicted) publishes packs lacking them too.
      const missing = (await mayLackBlobs(repo.gitDir)) ? ['--missing=allow-any'] : [];
      const out = (await this.#git.check(['pack-objects', '--revs', ...missing, '--delta-base-offset', '-q', path.join(dir, 'pack')], { gitDir: repo.gitDir, input })).toString().trim();
      if (!/^[0-9a-f]{40}$/.test(out)) {
        await rm(dir, { recursive: true, force: true });
        return null; // nothing new: every object is already reachable
      }
      const file = path.join(dir, `pack-${out}.pack`);
      const bytes = (await stat(file)).size;
      // Side by side: no row names the pack until both are stored.
      await Promise.all([this.#store.put(packKey(repo.id, out, 'pack'), file), this.#store.put(packKey(repo.id, out, 'idx'), path.join(dir, `pack-${out}.idx`))]);
      this.stats.packsPublished++;
      this.stats.bytesPublished += bytes;
      return { name: out, bytes, dir };
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** The node's copy follows: the published pack kept in place (no download later), then the refs. */
  async #applyLocally(repo: RepoHandle, applied: readonly RefUpdate[], pack: Published | null, version: number): Promise<void> {
    if (pack !== null) {
      const packDir = path.join(repo.gitDir, 'objects', 'pack');
      const base = path.join(packDir, `pack-${pack.name}`);
      await writeFile(`${base}.keep`, 'grove: in the object store\n');
      for (const name of (await readdir(pack.dir)).sort((a, b) => order(a) - order(b))) {
        await rename(path.join(pack.dir, name), path.join(packDir, name)).catch(() => undefined);
      }
    }
    await this.#transaction.exclusive(repo.gitDir, async () => {
      let input = 'start\0';
      for (const u of applied) input += isZeroOid(u.newOid) ? `delete ${u.ref}\0\0` : `update ${u.ref}\0${u.newOid}\0\0`;
      this.#refView.invalidate(repo.gitDir);
      try {
        await this.#git.check(['update-ref', '--stdin', '-z'], { gitDir: repo.gitDir, input: `${input}prepare\0commit\0` });
      } finally {
        this.#refView.invalidate(repo.gitDir);
      }
      // With the refs, in the same exclusive section as a sync's ref write (repo-cache.ts).
      this.#cache.advanced(repo.id, version - 1, version);
    });
  }
}

class NothingApplied extends Error {}

function order(name: string): number {
  return name.endsWith('.pack') ? 0 : name.endsWith('.rev') ? 1 : 2;
}

/** The compare-and-swap against the current value; null when it passes. Pure. */
function check(update: RefUpdate, current: string): TransactionResult | null {
  if (isZeroOid(update.oldOid) && isZeroOid(update.newOid)) return isZeroOid(current) ? null : { ok: false, reason: STALE('exists') };
  if (current === update.oldOid) return null;
  return { ok: false, reason: isZeroOid(update.oldOid) ? STALE('exists') : STALE(current) };
}

/** A new ref may not be a directory of an existing one, or the other way round (git's file/directory rule). Pure. */
export function nameConflict(update: RefUpdate, current: ReadonlyMap<string, string>): TransactionResult {
  if (!isZeroOid(update.oldOid) || isZeroOid(update.newOid)) return { ok: true };
  for (const name of current.keys()) {
    if (name.startsWith(`${update.ref}/`) || update.ref.startsWith(`${name}/`)) {
      return { ok: false, reason: 'ref name conflicts with an existing ref (a ref cannot be both a file and a directory)' };
    }
  }
  return { ok: true };
}

function failAll(results: readonly TransactionResult[]): TransactionResult[] {
  const failure = results.find((r) => !r.ok) ?? { ok: false as const, reason: 'atomic push failure' };
  return results.map(() => failure);
}

/** Locks the repository's state row for this transaction (writers of one repository queue here) and returns the new version. */
async function bumpVersion(trx: Transaction<Database>, repoId: string): Promise<number> {
  const row = await trx
    .insertInto('repo_state')
    .values({ repo_id: repoId, refs_version: 1 })
    .onConflict((oc) => oc.column('repo_id').doUpdateSet({ refs_version: sql`repo_state.refs_version + 1` }))
    .returning('refs_version')
    .executeTakeFirstOrThrow();
  return row.refs_version;
}

/** One ref's compare-and-swap; false when the ref is not at the old value any more. */
async function compareAndSwap(trx: Transaction<Database>, repoId: string, update: RefUpdate): Promise<boolean> {
  if (isZeroOid(update.oldOid)) {
    if (isZeroOid(update.newOid)) return (await currentValue(trx, repoId, update.ref)) === null;
    const inserted = await trx.insertInto('repo_refs').values({ repo_id: repoId, name: update.ref, oid: update.newOid }).onConflict((oc) => oc.columns(['repo_id', 'name']).doNothing()).executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1;
  }
  if (isZeroOid(update.newOid)) {
    const deleted = await trx.deleteFrom('repo_refs').where('repo_id', '=', repoId).where('name', '=', update.ref).where('oid', '=', update.oldOid).executeTakeFirst();
    return deleted.numDeletedRows === 1n;
  }
  const updated = await trx.updateTable('repo_refs').set({ oid: update.newOid }).where('repo_id', '=', repoId).where('name', '=', update.ref).where('oid', '=', update.oldOid).executeTakeFirst();
  return updated.numUpdatedRows === 1n;
}

async function currentValue(trx: Transaction<Database>, repoId: string, ref: string): Promise<string | null> {
  return (await trx.selectFrom('repo_refs').select('oid').where('repo_id', '=', repoId).where('name', '=', ref).executeTakeFirst())?.oid ?? null;
}
