/**
 * The one path by which a ref moves, with the events that describe the move (architecture
 * §3: every ref change is a compare-and-swap; objects land before refs; an event commits
 * with its change). Pushes, API writes, merges, forks and the sweeper all call `apply` or
 * `applyEach`; the composition root picks the implementation:
 *
 * - embedded (`JournaledRefStore`): the repository's own refs are the truth, moved by
 *   RefTransaction (`git update-ref`); events are journaled as pending before the move and
 *   committed after it (EventLog.recover settles them after a crash);
 * - cluster (`cluster/postgres-ref-store.ts`): PostgreSQL's `repo_refs` is the truth; the
 *   new objects are published to the object store first, then one database transaction does
 *   the compare-and-swap, records the pack, bumps the repository's ref version and writes
 *   the events.
 */
import type { NewEvent } from '../events/types.ts';
import type { RefTransaction, RefUpdate, TransactionResult } from './ref-transaction.ts';

/** A repository as the ref path needs it. */
export interface RepoHandle {
  readonly id: string;
  readonly gitDir: string;
}

/** The events of a change, given the updates that applied (all of them for `apply`). */
export type EventsOf = (applied: readonly RefUpdate[]) => readonly NewEvent[];

export interface RefStore {
  /** All updates or none; resolves once the change (and its events) is durable. */
  apply(repo: RepoHandle, updates: readonly RefUpdate[], events?: EventsOf): Promise<TransactionResult>;
  /** Each update on its own (a non-atomic push): one result per update; events for those applied. */
  applyEach(repo: RepoHandle, updates: readonly RefUpdate[], events?: EventsOf): Promise<TransactionResult[]>;
}

/** What JournaledRefStore needs of the event log. */
export interface EventJournal {
  /** Writes events as pending (durably) before the change they describe; returns their ids. */
  begin(events: readonly NewEvent[]): Promise<number[]>;
  /** Marks pending events committed. */
  commit(seqs: readonly number[]): Promise<void>;
  /** Drops pending events whose change did not happen. */
  abort(seqs: readonly number[]): Promise<void>;
  /** Replaces pending events with the final ones, in one database transaction. */
  settle(seqs: readonly number[], events: readonly NewEvent[]): Promise<void>;
}

export class JournaledRefStore implements RefStore {
  readonly #transaction: RefTransaction;
  readonly #journal: EventJournal;

  constructor(transaction: RefTransaction, journal: EventJournal) {
    this.#transaction = transaction;
    this.#journal = journal;
  }

  async apply(repo: RepoHandle, updates: readonly RefUpdate[], events?: EventsOf): Promise<TransactionResult> {
    const journal = events === undefined ? [] : await this.#journal.begin(events(updates));
    let result: TransactionResult;
    try {
      result = await this.#transaction.apply(repo.gitDir, updates);
    } catch (error) {
      await this.#journal.abort(journal).catch(() => undefined); // recover() reconciles it with the refs otherwise
      throw error;
    }
    if (result.ok) await this.#journal.commit(journal);
    else await this.#journal.abort(journal);
    return result;
  }

  async applyEach(repo: RepoHandle, updates: readonly RefUpdate[], events?: EventsOf): Promise<TransactionResult[]> {
    // Pending: the events as if every update applies (what recover() checks against the refs).
    const journal = events === undefined ? [] : await this.#journal.begin(events(updates));
    let results: TransactionResult[];
    try {
      results = await this.#transaction.applyEach(repo.gitDir, updates);
    } catch (error) {
      await this.#journal.abort(journal).catch(() => undefined);
      throw error;
    }
    if (events !== undefined) {
      const applied = updates.filter((_, i) => results[i]!.ok);
      if (applied.length === updates.length) await this.#journal.commit(journal);
      else await this.#journal.settle(journal, applied.length === 0 ? [] : events(applied));
    }
    return results;
  }
}
