/**
 * The only way Grove moves refs (architecture §2, step 5): a compare-and-swap
 * transaction through `git update-ref --stdin -z` (start / prepare / commit), so
 * pushes, API writes and maintenance share one path. Each update names the value
 * the writer saw; a mismatch aborts the transaction and nothing moves.
 *
 * `-z` format: `update SP <ref> NUL <new> NUL <old> NUL`, `verify SP <ref> NUL <old> NUL`.
 * An old value of zeros means "must not exist"; a new value of zeros deletes.
 */
import { isZeroOid, ZERO_OID } from '../git/oid.ts';
import type { GitRunner } from './git-command.ts';
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

/** Turns update-ref's complaint into the reason a client sees. */
export function describeFailure(stderr: string): string {
  const line = stderr.trim().split('\n').filter((l) => l.startsWith('fatal:') || l.startsWith('error:')).pop() ?? stderr.trim();
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

export class RefTransaction {
  readonly #git: GitRunner;
  readonly #refView: RefView;
  /** The tail of each repository's queue of transactions. */
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(git: GitRunner, refView: RefView) {
    this.#git = git;
    this.#refView = refView;
  }

  /**
   * All updates or none. Transactions on one repository run one at a time: racing
   * writers then fail on the compare-and-swap (a clear "fetch first"), never on
   * git's ref lock files.
   */
  async apply(gitDir: string, updates: readonly RefUpdate[]): Promise<TransactionResult> {
    if (updates.length === 0) return { ok: true };
    return this.exclusive(gitDir, () => this.#applyNow(gitDir, updates));
  }

  /** Runs `work` in the repository's ref queue: nothing else writes its refs meanwhile (pack-refs). */
  async exclusive<T>(gitDir: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(gitDir) ?? Promise.resolve();
    const run = previous.then(work);
    const tail = run.catch(() => undefined);
    this.#queues.set(gitDir, tail);
    try {
      return await run;
    } finally {
      if (this.#queues.get(gitDir) === tail) this.#queues.delete(gitDir);
    }
  }

  async #applyNow(gitDir: string, updates: readonly RefUpdate[]): Promise<TransactionResult> {
    this.#refView.invalidate(gitDir);
    try {
      const result = await this.#git.run(['update-ref', '--stdin', '-z'], { gitDir, input: transactionInput(updates) });
      return result.code === 0 ? { ok: true } : { ok: false, reason: describeFailure(result.stderr) };
    } finally {
      this.#refView.invalidate(gitDir);
    }
  }

  /**
   * Applies each update on its own (a non-atomic push): one transaction for all
   * first, and only if that fails, one per update to find which ones can apply.
   */
  async applyEach(gitDir: string, updates: readonly RefUpdate[]): Promise<TransactionResult[]> {
    const together = await this.apply(gitDir, updates);
    if (together.ok || updates.length === 1) return updates.map(() => together);
    const results: TransactionResult[] = [];
    for (const update of updates) results.push(await this.apply(gitDir, [update]));
    return results;
  }
}
