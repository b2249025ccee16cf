/**
 * The only way Grove moves refs (architecture §2, step 5): a compare-and-swap
 * transaction through `git update-ref --stdin -z` (start / prepare / commit), so
 * pushes, API writes and maintenance share one path. Each update names the value
 * the writer saw; a mismatch aborts the transaction and nothing moves.
 *
 * `-z` format: `update SP <ref> NUL <new> NUL <old> NUL`, `verify SP <ref> NUL <old> NUL`.
 * An old value of zeros means "must not exist"; a new value of zeros deletes.
 *
 * Group commit: the transactions of one repository run one batch at a time. Whatever
 * arrives while a batch runs waits, and the next batch applies all of it — writers to
 * different refs — as one update-ref transaction, with one set of ref fsyncs. Each writer
 * keeps its own outcome: when the combined transaction fails, the writer whose ref git
 * names is answered with that failure and the rest are retried without it (writers whose
 * refs clash with each other wait for a later batch, in arrival order). So 16 agents
 * pushing 16 branches at once cost about one transaction, not a queue of 16.
 */
import { isZeroOid, ZERO_OID } from '../git/oid.ts';
import type { GitRunner } from './git-command.ts';
import { RefUpdaters } from './ref-updater.ts';
import type { RefView } from './ref-view.ts';

export interface RefUpdate {
  readonly ref: string;
  /** The value the writer saw; zeros = the ref must not exist. */
  readonly oldOid: string;
  /** The value to write; zeros = delete. */
  readonly newOid: string;
}

export type TransactionResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export function transactionInput(updates: readonly RefUpdate[]): string {
  let input = 'start\0';
  for (const { ref, oldOid, newOid } of updates) {
    // Deleting a ref that does not exist (zero to zero) only checks that it still does not.
    if (isZeroOid(newOid) && isZeroOid(oldOid)) input += `verify ${ref}\0${ZERO_OID}\0`;
    else input += `update ${ref}\0${newOid}\0${oldOid}\0`;
  }
  return `${input}prepare\0commit\0`;
}

/** The last fatal or error line of update-ref's stderr. */
function failureLine(stderr: string): string {
  return stderr.trim().split('\n').filter((l) => l.startsWith('fatal:') || l.startsWith('error:')).pop() ?? stderr.trim();
}

/** Turns update-ref's complaint into the reason a client sees. */
export function describeFailure(stderr: string): string {
  const line = failureLine(stderr);
  let match = /is at ([0-9a-f]{40}) but expected ([0-9a-f]{40})/.exec(line);
  if (match) return `stale old value: the ref is now at ${match[1]!.slice(0, 12)} (fetch first)`;
  if (/reference already exists/.test(line)) return 'stale old value: the ref already exists (fetch first)';
  if (/unable to resolve reference|reference is missing|but expected 0{40}|expected to not exist/.test(line)) {
    return 'stale old value: the ref does not exist (fetch first)';
  }
  match = /trying to write non-commit object ([0-9a-f]{40})/.exec(line);
  if (match) return `branches must point at commits (${match[1]!.slice(0, 12)} is not a commit)`;
  if (/'(.+)' exists; cannot create '(.+)'/.test(line) || /cannot process '.+' and '.+' at the same time/.test(line)) {
    return 'ref name conflicts with an existing ref (a ref cannot be both a file and a directory)';
  }
  return `failed to update ref (${line.replace(/^(fatal|error):\s*/, '').slice(0, 200)})`;
}

/**
 * Which ref a failed transaction failed on, when the failure is that ref's alone (its
 * compare-and-swap, its object, a file/directory clash with a ref on disk); null when the
 * failure may come from combining updates (two refs of the batch clash with each other) or
 * cannot be told. Pure.
 */
export function failedRef(stderr: string): string | null {
  const line = failureLine(stderr);
  if (/at the same time/.test(line)) return null;
  return /(?:cannot lock|cannot update) ref '([^']+)'/.exec(line)?.[1] ?? null;
}

/** One writer's part of a batch: all of its updates apply or none do. */
export interface Group {
  readonly updates: readonly RefUpdate[];
}

/**
 * Splits queued groups into the next batch and the rest: a group joins the batch unless one
 * of its refs is already in it or belongs to an earlier group left waiting (so writers to the
 * same ref stay in arrival order). Pure.
 */
export function planBatch<G extends Group>(queued: readonly G[]): { batch: G[]; waiting: G[] } {
  const taken = new Set<string>();
  const blocked = new Set<string>();
  const batch: G[] = [];
  const waiting: G[] = [];
  for (const group of queued) {
    const refs = group.updates.map((u) => u.ref);
    const clash = refs.some((ref) => taken.has(ref) || blocked.has(ref)) || new Set(refs).size !== refs.length;
    if (clash && batch.length > 0) {
      waiting.push(group);
      for (const ref of refs) blocked.add(ref);
    } else {
      batch.push(group);
      for (const ref of refs) taken.add(ref);
    }
  }
  return { batch, waiting };
}

interface QueuedGroup extends Group {
  readonly settle: (result: TransactionResult) => void;
  readonly fail: (error: unknown) => void;
}

type Job =
  | { readonly kind: 'group'; readonly group: QueuedGroup }
  | { readonly kind: 'exclusive'; readonly run: () => Promise<void> };

export interface TransactionStats {
  /** update-ref runs. */
  transactions: number;
  /** Writers' groups applied (or refused) by those runs. */
  groups: number;
}

export class RefTransaction {
  readonly #updaters: RefUpdaters;
  readonly #refView: RefView;
  readonly #queues = new Map<string, Job[]>();
  readonly stats: TransactionStats = { transactions: 0, groups: 0 };

  constructor(git: GitRunner, refView: RefView) {
    this.#updaters = new RefUpdaters(git);
    this.#refView = refView;
  }

  /** Ends the long-lived update-ref processes (shutdown). */
  close(): void {
    this.#updaters.closeAll();
  }

  /** All updates or none. */
  apply(gitDir: string, updates: readonly RefUpdate[]): Promise<TransactionResult> {
    if (updates.length === 0) return Promise.resolve({ ok: true });
    return new Promise((settle, fail) => this.#enqueue(gitDir, { kind: 'group', group: { updates, settle, fail } }));
  }

  /** Applies each update on its own (a non-atomic push): one result per update. */
  applyEach(gitDir: string, updates: readonly RefUpdate[]): Promise<TransactionResult[]> {
    return Promise.all(updates.map((update) => this.apply(gitDir, [update])));
  }

  /** Runs `work` alone in the repository's queue: nothing else writes its refs meanwhile (pack-refs). */
  exclusive<T>(gitDir: string, work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#enqueue(gitDir, { kind: 'exclusive', run: () => work().then(resolve, reject) });
    });
  }

  #enqueue(gitDir: string, job: Job): void {
    const queue = this.#queues.get(gitDir);
    if (queue !== undefined) {
      queue.push(job);
      return;
    }
    this.#queues.set(gitDir, [job]);
    void this.#drain(gitDir);
  }

  /** Runs the repository's jobs, a batch at a time, until its queue is empty. */
  async #drain(gitDir: string): Promise<void> {
    const queue = this.#queues.get(gitDir)!;
    while (queue.length > 0) {
      const head = queue[0]!;
      if (head.kind === 'exclusive') {
        queue.shift();
        await head.run();
        continue;
      }
      const end = queue.findIndex((job) => job.kind === 'exclusive');
      const groups = queue.slice(0, end === -1 ? queue.length : end).map((job) => (job as { group: QueuedGroup }).group);
      const { batch, waiting } = planBatch(groups);
      queue.splice(0, groups.length, ...waiting.map((group) => ({ kind: 'group' as const, group })));
      try {
        await this.#applyBatch(gitDir, batch);
      } catch (error) {
        // The git runner itself failed (its queue timed out, no launcher): whoever is not yet answered gets the error.
        this.#refView.invalidate(gitDir);
        for (const group of batch) group.fail(error);
      }
    }
    this.#queues.delete(gitDir);
  }

  async #applyBatch(gitDir: string, batch: QueuedGroup[]): Promise<void> {
    let pending = batch;
    while (pending.length > 0) {
      const outcome = await this.#run(gitDir, pending.flatMap((g) => g.updates), pending.length);
      if (outcome === null) {
        for (const group of pending) group.settle({ ok: true });
        return;
      }
      const ref = pending.length > 1 ? failedRef(outcome) : null;
      const owner = ref === null ? undefined : pending.find((g) => g.updates.some((u) => u.ref === ref));
      if (pending.length === 1 || owner === undefined) {
        if (pending.length === 1) {
          pending[0]!.settle({ ok: false, reason: describeFailure(outcome) });
          return;
        }
        // The failure may come from combining them: each group on its own, in order.
        for (const group of pending) {
          const alone = await this.#run(gitDir, group.updates, 1);
          group.settle(alone === null ? { ok: true } : { ok: false, reason: describeFailure(alone) });
        }
        return;
      }
      owner.settle({ ok: false, reason: describeFailure(outcome) });
      pending = pending.filter((g) => g !== owner);
    }
  }

  /** One update-ref transaction; null when it committed, else git's stderr. */
  async #run(gitDir: string, updates: readonly RefUpdate[], groups: number): Promise<string | null> {
    this.stats.transactions++;
    this.stats.groups += groups;
    const result = await this.#updaters.run(gitDir, transactionInput(updates));
    if (result.ok) {
      this.#refView.applied(gitDir, updates);
      return null;
    }
    this.#refView.invalidate(gitDir); // nothing should have moved; read again rather than trust that
    return result.stderr;
  }
}
