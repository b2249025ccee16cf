/**
 * The three-way decision per ref (docs/remote-sync.md, "The decision table"), over
 *
 *   G  the ref in Grove now,
 *   T  its tracking ref: the last value both sides agreed on,
 *   U  the ref on the remote now,
 *
 * each an object id or null (absent), and, where G and U are both present and differ, their
 * merge base (which says who descends from whom). A pull decides first; the push side then
 * decides over G and T as the pull left them. Pure: the sync run asks git the merge bases,
 * applies the changes through the one ref path and reads the remote's answers.
 */
import type { SyncRule } from './rules.ts';

export const REF_OUTCOMES = ['created', 'updated', 'forced', 'deleted', 'unchanged', 'filtered', 'diverged', 'kept', 'rejected', 'stale', 'failed'] as const;
export type RefOutcome = (typeof REF_OUTCOMES)[number];

export interface RefSides {
  readonly ref: string;
  readonly grove: string | null;
  readonly tracking: string | null;
  readonly upstream: string | null;
}

/** What a pull does to one ref; `undefined` leaves a value as it is, null deletes. */
export interface PullDecision {
  readonly outcome: RefOutcome;
  readonly grove?: string | null;
  readonly tracking?: string | null;
  /** overwrite: Grove's tip before it was overwritten, kept under a backup ref. */
  readonly backupOfGrove?: string;
  /** keep: the upstream's tip published as `upstream/<branch>`. */
  readonly keep?: string;
  readonly message?: string;
}

/** What a push does to one ref: send `send` (null deletes) with the lease `lease` (null: must not exist). */
export interface PushDecision {
  readonly outcome: RefOutcome;
  readonly send?: { readonly oid: string | null; readonly lease: string | null; readonly force: boolean };
  /** The tracking ref's new value without a push (both sides already agree). */
  readonly tracking?: string | null;
  /** overwrite: the remote's tip before it was overwritten, kept under a backup ref in Grove. */
  readonly backupOfRemote?: string;
  readonly message?: string;
}

/** Whether deciding this ref needs the merge base of G and U. */
export function needsMergeBase(sides: RefSides): boolean {
  return sides.grove !== null && sides.upstream !== null && sides.grove !== sides.upstream && sides.ref.startsWith('refs/heads/');
}

type Ancestry = 'upstream-ahead' | 'grove-ahead' | 'diverged';

function ancestry(sides: RefSides, mergeBase: string | null): Ancestry {
  if (!sides.ref.startsWith('refs/heads/')) return 'diverged'; // a tag that moved is never fast-forwarded
  if (mergeBase === sides.grove) return 'upstream-ahead';
  if (mergeBase === sides.upstream) return 'grove-ahead';
  return 'diverged';
}

export function decidePull(sides: RefSides, rule: SyncRule, mergeBase: string | null): PullDecision {
  const { grove: g, tracking: t, upstream: u } = sides;
  if (u === t) return { outcome: 'unchanged' };
  if (u === null) {
    // Deleted upstream since the last agreement.
    if (g === null) return { outcome: 'unchanged', tracking: null };
    if (rule.deletions === 'ignore') return { outcome: 'unchanged', tracking: null, message: 'deleted upstream; kept in Grove (deletions: ignore)' };
    if (g === t) return { outcome: 'deleted', grove: null, tracking: null };
    return { outcome: 'diverged', tracking: null, message: 'deleted upstream but changed in Grove since the last sync; kept in Grove' };
  }
  if (g === null) return { outcome: 'created', grove: u, tracking: u };
  if (g === u) return { outcome: 'unchanged', tracking: u };
  const relation = ancestry(sides, mergeBase);
  // G still at the last agreement and descending from U: the remote moved *back* (a rewind), which is a change too.
  const remoteRewound = relation === 'grove-ahead' && t !== null && g === t;
  if (relation === 'upstream-ahead') return { outcome: 'updated', grove: u, tracking: u };
  if (relation === 'grove-ahead' && !remoteRewound) return { outcome: 'unchanged', tracking: u, message: 'Grove is ahead of the remote' };
  const what = remoteRewound ? 'the remote moved the branch back' : sides.ref.startsWith('refs/tags/') ? 'the tag differs' : 'both sides changed';
  switch (rule.onDivergence) {
    case 'skip':
      // Reported once for a pull rule; a two-way rule keeps T, so its push side never undoes the remote's change.
      return rule.direction === 'both'
        ? { outcome: 'diverged', message: `${what}: not resolved (onDivergence: skip)` }
        : { outcome: 'diverged', tracking: u, message: `${what}: not resolved (onDivergence: skip)` };
    case 'overwrite':
      return { outcome: 'forced', grove: u, tracking: u, backupOfGrove: g };
    case 'keep':
      return { outcome: 'kept', tracking: u, keep: u, message: 'both sides changed: the upstream tip is kept beside it' };
  }
}

export function decidePush(sides: RefSides, rule: SyncRule, mergeBase: string | null): PushDecision {
  const { grove: g, tracking: t, upstream: u } = sides;
  if (g === u) return t === g ? { outcome: 'unchanged' } : { outcome: 'unchanged', tracking: g };
  if (g === null) {
    if (t === null) return { outcome: 'unchanged' }; // never in Grove: not ours to push
    if (u !== t) return { outcome: 'diverged', message: 'deleted in Grove but changed on the remote since the last sync; not deleted there' };
    if (rule.deletions === 'ignore') return { outcome: 'unchanged', tracking: null, message: 'deleted in Grove; kept on the remote (deletions: ignore)' };
    return { outcome: 'deleted', send: { oid: null, lease: u, force: false } };
  }
  if (u === null) return { outcome: 'created', send: { oid: g, lease: null, force: false } };
  const relation = ancestry(sides, mergeBase);
  // The remote still at the last agreement and descending from G: Grove moved *back* (a rewind), which is a change too.
  const groveRewound = relation === 'upstream-ahead' && t !== null && u === t;
  if (relation === 'grove-ahead') return { outcome: 'updated', send: { oid: g, lease: u, force: false } };
  if (relation === 'upstream-ahead' && !groveRewound) return { outcome: 'unchanged', message: 'the remote is ahead of Grove' };
  if (rule.onDivergence === 'overwrite') return { outcome: 'forced', send: { oid: g, lease: u, force: true }, backupOfRemote: u };
  const what = groveRewound ? 'Grove moved the branch back' : sides.ref.startsWith('refs/tags/') ? 'the tag differs on the remote' : 'both sides changed';
  return { outcome: 'diverged', message: `${what}: not pushed (onDivergence: ${rule.onDivergence})` };
}

/** A run's status from its refs' outcomes: any diverged, rejected, stale or failed ref makes it partial. */
export function runStatus(outcomes: readonly RefOutcome[]): 'succeeded' | 'partial' {
  return outcomes.some((o) => o === 'diverged' || o === 'rejected' || o === 'stale' || o === 'failed') ? 'partial' : 'succeeded';
}
