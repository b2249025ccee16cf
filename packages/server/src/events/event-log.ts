/**
 * The durable event log and webhook outbox. Every state change is recorded here
 * from one place per kind of change:
 *
 * - changes to refs (pushes, API commits, merges, branch and tag writes) are written as
 *   `pending` before the ref transaction and `committed` (or dropped) after it, so an
 *   event is never lost to a crash between the two: on start, pending events are kept
 *   or dropped by looking at where the refs are (`recover`);
 * - database changes (orgs, repos, keys, webhooks, policies) are written by `change()`: the
 *   change and its events commit in one database transaction, so neither survives a crash
 *   without the other.
 *
 * Committing an event creates its webhook deliveries in the same database transaction
 * (the outbox), notifies live subscribers (SSE), and wakes the delivery worker.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import { lockEventCommitOrder } from '../db/dialect.ts';
import type { Durability } from '../db/durability.ts';
import type { Database, EventsTable } from '../db/schema.ts';
import type { NewEvent, StoredEvent, EventType } from './types.ts';

type EventRow = Omit<EventsTable, 'seq'> & { seq: number };

/** A database transaction, as `change()` hands it to the change it wraps. */
export type Trx = Transaction<Database>;

/** Events a transaction committed, and how many deliveries it queued for them. */
export interface CommittedEvents {
  readonly events: StoredEvent[];
  readonly queued: number;
}

export function toStoredEvent(row: EventRow): StoredEvent {
  return {
    id: row.commit_seq ?? 0,
    type: row.type as EventType,
    time: row.created_at,
    org: row.org,
    repo: row.repo,
    actor: JSON.parse(row.actor) as StoredEvent['actor'],
    payload: JSON.parse(row.payload) as Record<string, unknown>,
  };
}

const CHUNK = 500;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export interface EventFilter {
  readonly org?: string | undefined;
  readonly repo?: string | undefined;
  readonly types?: readonly string[] | undefined;
  /** Only these repos of the org (a key limited to some repos); undefined = all. */
  readonly visibleRepos?: readonly string[] | undefined;
}

export function matches(event: StoredEvent, filter: EventFilter): boolean {
  if (filter.org !== undefined && event.org !== filter.org) return false;
  if (filter.repo !== undefined && event.repo !== filter.repo) return false;
  if (filter.types !== undefined && filter.types.length > 0 && !filter.types.includes(event.type)) return false;
  if (filter.visibleRepos !== undefined && (event.repo === null || !filter.visibleRepos.includes(event.repo))) return false;
  return true;
}

export class EventLog {
  readonly #db: Db;
  readonly #live = new EventEmitter();
  /** Woken when deliveries are queued. */
  readonly outbox = new EventEmitter();

  readonly #durability: Durability;

  constructor(db: Db, durability: Durability) {
    this.#db = db;
    this.#durability = durability;
    this.#live.setMaxListeners(0);
  }

  /**
   * Runs a database change and writes the events it implies in the same transaction: both
   * commit or neither does. `events` sees the change's result (the row it made, what it found).
   */
  async change<T>(apply: (trx: Trx) => Promise<T>, events: (result: T) => readonly NewEvent[]): Promise<T> {
    const { result, committed } = await this.#db.transaction().execute(async (trx) => {
      const result = await apply(trx);
      const seqs = await this.#insert(trx, events(result));
      return { result, committed: await this.#commitIn(trx, seqs) };
    });
    await this.#published(committed);
    return result;
  }

  /**
   * Writes events committed inside the caller's transaction (the cluster's ref transaction):
   * call `announce` with the result once that transaction has committed.
   */
  async writeIn(trx: Trx, events: readonly NewEvent[]): Promise<CommittedEvents> {
    return this.#commitIn(trx, await this.#insert(trx, events));
  }

  /** Shows committed events to live subscribers and the delivery worker (after their transaction). */
  async announce(committed: CommittedEvents): Promise<void> {
    await this.#published(committed);
  }

  /** Replaces pending events by the final ones (a push of which only some refs applied), in one transaction. */
  async settle(seqs: readonly number[], events: readonly NewEvent[]): Promise<void> {
    const committed = await this.#db.transaction().execute(async (trx) => {
      for (const chunk of chunks(seqs, CHUNK)) await trx.deleteFrom('events').where('seq', 'in', chunk).where('state', '=', 'pending').execute();
      return this.#commitIn(trx, await this.#insert(trx, events));
    });
    await this.#published(committed);
  }

  /** Writes events as pending, before the change they describe. */
  async begin(events: readonly NewEvent[]): Promise<number[]> {
    if (events.length === 0) return [];
    const seqs = await this.#db.transaction().execute((trx) => this.#insert(trx, events));
    // On disk before the change it describes happens: what recover() relies on after a crash.
    await this.#durability.sync();
    return seqs;
  }

  async #insert(trx: Trx, events: readonly NewEvent[]): Promise<number[]> {
    const now = new Date().toISOString();
    const seqs: number[] = [];
    // In chunks: SQLite binds at most 32,766 values per statement, and a push may name 10,000 refs.
    for (const chunk of chunks(events, CHUNK)) {
      const rows = await trx
        .insertInto('events')
        .values(chunk.map((e) => ({
          type: e.type,
          org: e.org,
          repo: e.repo,
          repo_id: e.repoId ?? null,
          actor: JSON.stringify(e.actor),
          payload: JSON.stringify(e.payload),
          state: 'pending' as const,
          created_at: now,
        })))
        .returning('seq')
        .execute();
      seqs.push(...rows.map((r) => r.seq));
    }
    return seqs;
  }

  /** Marks pending events committed (optionally with a final payload), queues their deliveries, notifies. */
  async commit(seqs: readonly number[], payloads?: ReadonlyMap<number, Record<string, unknown>>): Promise<void> {
    if (seqs.length === 0) return;
    const committed = await this.#db.transaction().execute((trx) => this.#commitIn(trx, seqs, payloads));
    await this.#published(committed);
  }

  /** Durable, then shown to live subscribers and the delivery worker. */
  async #published(committed: CommittedEvents): Promise<void> {
    if (committed.events.length === 0) return;
    await this.#durability.sync();
    // A cluster node shows every event, its own included, in id order from the table (follow()).
    if (this.#following === null) for (const event of committed.events) this.#live.emit('event', event);
    if (committed.queued > 0) this.outbox.emit('queued');
  }

  async #commitIn(trx: Trx, seqs: readonly number[], payloads?: ReadonlyMap<number, Record<string, unknown>>): Promise<CommittedEvents> {
    if (seqs.length === 0) return { events: [], queued: 0 };
    for (const [seq, payload] of payloads ?? []) {
      await trx.updateTable('events').set({ payload: JSON.stringify(payload) }).where('seq', '=', seq).execute();
    }
    // Public ids follow commit order (SQLite's write lock, or PostgreSQL's advisory lock,
    // serializes these commits), not journal order: a reader that has seen id N has seen
    // every event committed before it.
    await lockEventCommitOrder(trx);
    const top = await trx.selectFrom('events').select((eb) => eb.fn.max('commit_seq').as('top')).executeTakeFirst();
    let next = Number(top?.top ?? 0);
    const rows: EventRow[] = [];
    for (const seq of [...seqs].sort((a, b) => a - b)) {
      next++;
      await trx.updateTable('events').set({ state: 'committed', commit_seq: next }).where('seq', '=', seq).where('state', '=', 'pending').execute();
    }
    for (const chunk of chunks(seqs, CHUNK)) {
      rows.push(...((await trx.selectFrom('events').selectAll().where('seq', 'in', chunk).where('state', '=', 'committed').orderBy('commit_seq').execute()) as EventRow[]));
    }
    const events = rows.map(toStoredEvent);
    const orgs = [...new Set(events.map((e) => e.org))];
    const hooks = await trx
      .selectFrom('webhooks')
      .innerJoin('orgs', 'orgs.id', 'webhooks.org_id')
      .select(['webhooks.id', 'webhooks.events', 'webhooks.repos', 'orgs.name as org'])
      .where('orgs.name', 'in', orgs)
      .where('webhooks.active', '=', 1)
      .execute();
    const now = new Date().toISOString();
    const deliveries = [];
    for (const event of events) {
      for (const hook of hooks) {
        if (hook.org !== event.org) continue;
        if (event.type.startsWith('webhook.') && event.payload.id === hook.id) continue; // not told of its own changes
        const types = JSON.parse(hook.events) as string[];
        const repos = hook.repos === null ? null : (JSON.parse(hook.repos) as string[]);
        if (!types.includes('*') && !types.includes(event.type)) continue;
        if (repos !== null && (event.repo === null || !repos.includes(event.repo))) continue;
        deliveries.push({
          id: `dlv_${Date.now().toString(36)}${randomBytes(6).toString('hex')}`,
          webhook_id: hook.id,
          event_seq: event.id,
          repo: event.repo,
          status: 'pending' as const,
          attempts: 0,
          next_attempt_at: now,
          response_code: null,
          error: null,
          duration_ms: null,
          created_at: now,
          delivered_at: null,
        });
      }
    }
    for (const chunk of chunks(deliveries, CHUNK)) await trx.insertInto('webhook_deliveries').values(chunk).execute();
    return { events, queued: deliveries.length };
  }

  /** Drops pending events whose change did not happen. */
  async abort(seqs: readonly number[]): Promise<void> {
    if (seqs.length === 0) return;
    for (const chunk of chunks(seqs, CHUNK)) await this.#db.deleteFrom('events').where('seq', 'in', chunk).where('state', '=', 'pending').execute();
  }

  /**
   * After a crash: a pending ref event is committed when its refs are where it says
   * they would be (the change happened), and dropped otherwise.
   */
  async recover(
    refValue: (repoId: string, ref: string) => Promise<string | null>,
    forced: (repoId: string, before: string, after: string) => Promise<boolean>,
  ): Promise<{ committed: number; dropped: number }> {
    const pending = (await this.#db.selectFrom('events').selectAll().where('state', '=', 'pending').orderBy('seq').execute()) as EventRow[];
    const keep: number[] = [];
    const drop: number[] = [];
    const finals = new Map<number, Record<string, unknown>>();
    for (const row of pending) {
      const payload = JSON.parse(row.payload) as { refs?: { ref: string; after: string | null }[]; ref?: string; sha?: string };
      const expected = payload.refs ?? (payload.ref !== undefined ? [{ ref: payload.ref, after: row.type.endsWith('.deleted') ? null : payload.sha ?? null }] : []);
      let happened = row.repo_id !== null && expected.length > 0;
      for (const change of expected) {
        if (!happened) break;
        happened = (await refValue(row.repo_id!, change.ref).catch(() => undefined)) === change.after; // a vanished repo: dropped
      }
      (happened ? keep : drop).push(row.seq);
      if (happened && row.type === 'push' && payload.refs) {
        const refs = await Promise.all((payload.refs as { ref: string; before: string | null; after: string | null }[]).map(async (c) => ({
          ...c,
          forced: c.before !== null && c.after !== null && (await forced(row.repo_id!, c.before, c.after).catch(() => false)),
        })));
        finals.set(row.seq, { ...payload, refs });
      }
    }
    await this.abort(drop);
    await this.commit(keep, finals);
    return { committed: keep.length, dropped: drop.length };
  }

  /**
   * Committed events after `afterSeq`, oldest first, scanning at most `limit` rows.
   * `scannedTo` is the last id looked at (continue from there); `done` says nothing is left.
   */
  async since(afterSeq: number, filter: EventFilter, limit: number): Promise<{ events: StoredEvent[]; scannedTo: number; done: boolean }> {
    let query = this.#db.selectFrom('events').selectAll().where('state', '=', 'committed').where('commit_seq', '>', afterSeq).orderBy('commit_seq').limit(limit);
    if (filter.org !== undefined) query = query.where('org', '=', filter.org);
    if (filter.repo !== undefined) query = query.where('repo', '=', filter.repo);
    if (filter.types !== undefined && filter.types.length > 0) query = query.where('type', 'in', [...filter.types]);
    const rows = (await query.execute()) as EventRow[];
    return {
      events: rows.map(toStoredEvent).filter((e) => matches(e, filter)),
      scannedTo: rows.length > 0 ? rows[rows.length - 1]!.commit_seq! : afterSeq,
      done: rows.length < limit,
    };
  }

  #following: NodeJS.Timeout | null = null;

  /**
   * Cluster mode: live subscribers are fed from the events table, which every node writes,
   * polled every `intervalMs`, instead of from this process's own commits, so that every
   * node shows every node's events, in id order (public ids are assigned in commit order).
   */
  async follow(intervalMs = 100): Promise<void> {
    if (this.#following !== null) return;
    const top = await this.#db.selectFrom('events').select((eb) => eb.fn.max('commit_seq').as('top')).executeTakeFirst();
    let last = Number(top?.top ?? 0);
    let polling = false;
    this.#following = setInterval(() => {
      if (polling) return;
      polling = true;
      void (async () => {
        for (;;) {
          const page = await this.since(last, {}, 1000);
          for (const event of page.events) this.#live.emit('event', event);
          last = page.scannedTo;
          if (page.events.length > 0) this.outbox.emit('queued');
          if (page.done) break;
        }
      })().catch(() => undefined).finally(() => (polling = false)); // the database is down: the next tick retries
    }, intervalMs);
    this.#following.unref();
  }

  stopFollowing(): void {
    if (this.#following !== null) clearInterval(this.#following);
    this.#following = null;
  }

  /** Live committed events; returns the unsubscribe function. */
  subscribe(listener: (event: StoredEvent) => void): () => void {
    this.#live.on('event', listener);
    return () => this.#live.off('event', listener);
  }
}
