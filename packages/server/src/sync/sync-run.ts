/**
 * One sync run between a repository and its upstream (docs/remote-sync.md, "A run"):
 *
 *   1. read G (the repository's branches and tags) and T (this upstream's tracking refs);
 *   2. fetch into a scratch repository seeded with T (repo/remote-git.ts): its refs are U;
 *   3. decide every ref (sync/decide.ts), asking merge bases only where G and U differ;
 *   4. pull: move the fetched objects in, then one compare-and-swap per ref of {G, T} (and a
 *      backup or keep ref) through the one ref path, all in one transaction when nothing
 *      raced; a ref an agent moved meanwhile is `stale` and the next run decides it again;
 *   5. push: `git push --porcelain` by object id with a lease per ref at U; T moves only for
 *      refs the remote accepted.
 *
 * A failed fetch changes nothing. Ref changes carry the actor `{kind: 'sync'}`, so the
 * push-forward trigger ignores them (no loops), and journal like a push's.
 */
import { ZERO_OID } from '../git/oid.ts';
import { refLifecycleEvents, type Actor, type NewEvent } from '../events/types.ts';
import type { GitRunner } from '../repo/git-command.ts';
import type { RefStore, RepoHandle } from '../repo/ref-store.ts';
import type { RefUpdate } from '../repo/ref-transaction.ts';
import type { RefView } from '../repo/ref-view.ts';
import type { RemoteAccess, RemoteEnvOptions } from '../repo/remote-env.ts';
import { ScratchRepo, type PushCommand } from '../repo/remote-git.ts';
import { compileBranchGlob } from '../auth/glob.ts';
import { decidePull, decidePush, needsMergeBase, REF_OUTCOMES, runStatus, type PullDecision, type PushDecision, type RefOutcome, type RefSides } from './decide.ts';
import { backupRef, keepRef, pulls, pushes, ruleFor, trackingPrefix, trackingRef, type SyncDirection, type SyncRule } from './rules.ts';

export interface SyncTarget {
  readonly upstreamId: string;
  readonly upstreamName: string;
  readonly repo: RepoHandle;
  readonly org: string;
  readonly repoName: string;
  readonly rules: readonly SyncRule[];
}

export interface SyncRequest {
  readonly runId: string;
  readonly direction: SyncDirection;
  /** Only refs matching one of these globs (null: every ref the rules cover). */
  readonly refs: readonly string[] | null;
  readonly dryRun: boolean;
}

export interface RefReport {
  readonly ref: string;
  readonly side: 'pull' | 'push';
  readonly outcome: RefOutcome;
  /** Grove's value before and after the run. */
  readonly before: string | null;
  readonly after: string | null;
  /** The remote's value as this run saw it (after a push: what it pushed). */
  readonly upstream: string | null;
  readonly message?: string;
}

export interface SyncReport {
  readonly status: 'succeeded' | 'partial';
  /** Every ref whose outcome is not a plain `unchanged`. */
  readonly refs: readonly RefReport[];
  readonly counts: Readonly<Record<RefOutcome, number>>;
  readonly remoteMessages: readonly string[];
  /** Refs Grove's pull moved (for lag metrics and the run's event). */
  readonly moved: number;
  /** The push failed as a whole (transport, credentials): the pull's outcomes stand. */
  readonly pushError: Error | null;
}

export interface SyncDeps {
  readonly git: GitRunner;
  readonly refView: RefView;
  readonly refStore: RefStore;
  readonly remote: RemoteEnvOptions;
  /** Told that objects arrived and refs moved (maintenance counts syncs like pushes). */
  readonly onRefsMoved: (repo: RepoHandle) => void;
}

export function syncActor(target: Pick<SyncTarget, 'upstreamId' | 'upstreamName'>): Actor {
  return { kind: 'sync', id: target.upstreamId, name: `upstream ${target.upstreamName}` };
}

function selected(request: SyncRequest, ref: string): boolean {
  return request.refs === null || request.refs.some((glob) => compileBranchGlob(glob).test(ref));
}

interface Group {
  readonly ref: string;
  readonly updates: RefUpdate[];
  /** The visible ref changes of the group (for events). */
  readonly visible: { ref: string; before: string | null; after: string | null; forced: boolean }[];
}

function update(ref: string, before: string | null | undefined, after: string | null): RefUpdate | null {
  const old = before ?? null;
  return old === after ? null : { ref, oldOid: old ?? ZERO_OID, newOid: after ?? ZERO_OID };
}

export async function runSync(deps: SyncDeps, target: SyncTarget, request: SyncRequest, access: RemoteAccess, signal?: AbortSignal): Promise<SyncReport> {
  const { repo } = target;
  const snapshot = await deps.refView.read(repo.gitDir);
  const grove = new Map(snapshot.refs.filter((r) => r.name.startsWith('refs/heads/') || r.name.startsWith('refs/tags/')).map((r) => [r.name, r.oid]));
  const prefix = trackingPrefix(target.upstreamId);
  const tracking = new Map(snapshot.hidden.filter((r) => r.name.startsWith(prefix)).map((r) => [`refs/${r.name.slice(prefix.length)}`, r.oid]));
  const scratch = await ScratchRepo.create(deps.git, repo.gitDir, tracking);
  try {
    const upstream = await scratch.fetch(access, deps.remote, signal);
    const bases = new Map<string, Promise<string | null>>();
    const mergeBase = (sides: RefSides) => {
      if (!needsMergeBase(sides)) return Promise.resolve(null);
      const key = `${sides.grove} ${sides.upstream}`;
      let base = bases.get(key);
      if (base === undefined) bases.set(key, (base = scratch.mergeBase(sides.grove!, sides.upstream!)));
      return base;
    };
    const reports: RefReport[] = [];
    const counts = Object.fromEntries(REF_OUTCOMES.map((o) => [o, 0])) as Record<RefOutcome, number>;
    const report = (entry: RefReport) => {
      counts[entry.outcome]++;
      if (entry.outcome !== 'unchanged' || entry.message !== undefined) reports.push(entry);
    };
    const names = [...new Set([...grove.keys(), ...tracking.keys(), ...upstream.keys()])].sort();
    const ruled: { ref: string; rule: SyncRule }[] = [];
    for (const ref of names) {
      if (!selected(request, ref)) continue;
      const rule = ruleFor(target.rules, ref);
      if (rule === null) {
        if (upstream.has(ref)) report({ ref, side: 'pull', outcome: 'filtered', before: grove.get(ref) ?? null, after: grove.get(ref) ?? null, upstream: upstream.get(ref) ?? null });
        continue;
      }
      ruled.push({ ref, rule });
    }
    const sidesOf = (ref: string): RefSides => ({ ref, grove: grove.get(ref) ?? null, tracking: tracking.get(ref) ?? null, upstream: upstream.get(ref) ?? null });

    // Pull.
    const pullSide = request.direction !== 'push' ? ruled.filter(({ rule }) => pulls(rule)) : [];
    const pullDecisions = await Promise.all(pullSide.map(async ({ ref, rule }) => {
      const sides = sidesOf(ref);
      return { sides, decision: decidePull(sides, rule, await mergeBase(sides)) };
    }));
    const groups: Group[] = [];
    const pullOf = new Map<string, { sides: RefSides; decision: PullDecision }>();
    for (const entry of pullDecisions) {
      pullOf.set(entry.sides.ref, entry);
      const group = pullGroup(target, request.runId, entry.sides, entry.decision, grove);
      if (group !== null) groups.push(group);
    }
    let applied = new Set<string>();
    if (!request.dryRun && groups.length > 0) {
      await scratch.migrate();
      applied = await applyGroups(deps, target, groups);
      if (groups.some((g) => g.visible.length > 0 && applied.has(g.ref))) deps.onRefsMoved(repo);
    }
    let moved = 0;
    for (const { sides, decision } of pullDecisions) {
      const changed = groups.some((g) => g.ref === sides.ref);
      const ok = !changed || request.dryRun || applied.has(sides.ref);
      const after = ok && decision.grove !== undefined ? decision.grove : sides.grove;
      if (ok && request.dryRun === false && decision.grove !== undefined && decision.grove !== sides.grove) moved++;
      if (ok) {
        if (decision.grove !== undefined) setOrDelete(grove, sides.ref, decision.grove);
        if (decision.tracking !== undefined) setOrDelete(tracking, sides.ref, decision.tracking);
      }
      report({
        ref: sides.ref,
        side: 'pull',
        outcome: ok ? decision.outcome : 'stale',
        before: sides.grove,
        after,
        upstream: sides.upstream,
        ...(ok ? (decision.message !== undefined ? { message: decision.message } : {}) : { message: 'moved in Grove during the sync; the next run decides it again' }),
      });
    }

    // Push.
    // A ref the pull left diverged or kept is not pushed: that would undo the remote's change it reported.
    const unresolved = (ref: string) => ['diverged', 'kept', 'stale'].includes(pullOf.get(ref)?.decision.outcome ?? '') || reports.some((r) => r.ref === ref && r.outcome === 'stale');
    const pushSide = request.direction !== 'pull' ? ruled.filter(({ ref, rule }) => pushes(rule) && !unresolved(ref)) : [];
    const pushDecisions = await Promise.all(pushSide.map(async ({ ref, rule }) => {
      const sides = sidesOf(ref);
      return { sides, decision: decidePush(sides, rule, await mergeBase(sides)) };
    }));
    const { results, remoteMessages, pushError } = await push(deps, target, request, scratch, access, pushDecisions, signal);
    for (const { sides, decision } of pushDecisions) {
      // A pull already reported a ref both rules cover unless the push side has news.
      if (pullOf.has(sides.ref) && decision.send === undefined && decision.outcome === 'unchanged') continue;
      const result = results.get(sides.ref);
      const outcome: RefOutcome = result === undefined ? decision.outcome : result.outcome;
      const message = result?.message ?? decision.message;
      report({ ref: sides.ref, side: 'push', outcome, before: sides.grove, after: sides.grove, upstream: result?.outcome === decision.outcome && decision.send !== undefined ? decision.send.oid : sides.upstream, ...(message !== undefined ? { message } : {}) });
    }
    const status = pushError !== null ? 'partial' : runStatus(reports.map((r) => r.outcome));
    return { status, refs: reports, counts, remoteMessages, moved, pushError };
  } finally {
    await scratch.remove();
  }
}

function setOrDelete(map: Map<string, string>, ref: string, value: string | null): void {
  if (value === null) map.delete(ref);
  else map.set(ref, value);
}

/** The compare-and-swap updates of one ref's pull decision (null: nothing to write). */
function pullGroup(target: SyncTarget, runId: string, sides: RefSides, decision: PullDecision, grove: ReadonlyMap<string, string>): Group | null {
  const updates: RefUpdate[] = [];
  const visible: Group['visible'] = [];
  const add = (u: RefUpdate | null) => u !== null && updates.push(u);
  if (decision.grove !== undefined) {
    const change = update(sides.ref, sides.grove, decision.grove);
    if (change !== null) {
      updates.push(change);
      visible.push({ ref: sides.ref, before: sides.grove, after: decision.grove, forced: decision.outcome === 'forced' });
    }
  }
  if (decision.backupOfGrove !== undefined) add(update(backupRef(target.upstreamId, runId, 'grove', sides.ref), null, decision.backupOfGrove));
  if (decision.keep !== undefined) {
    const kept = keepRef(sides.ref);
    const change = update(kept, grove.get(kept), decision.keep);
    if (change !== null) {
      updates.push(change);
      visible.push({ ref: kept, before: grove.get(kept) ?? null, after: decision.keep, forced: true });
    }
  }
  if (decision.tracking !== undefined) add(update(trackingRef(target.upstreamId, sides.ref), sides.tracking, decision.tracking));
  return updates.length === 0 ? null : { ref: sides.ref, updates, visible };
}

/** The events of applied groups: one `push` event with the visible changes, and the created/deleted ones. */
function syncEvents(target: SyncTarget, groups: readonly Group[]): NewEvent[] {
  const refs = groups.flatMap((g) => g.visible);
  if (refs.length === 0) return [];
  const base = { org: target.org, repo: target.repoName, repoId: target.repo.id, actor: syncActor(target) };
  return [{ ...base, type: 'push', payload: { refs, upstream: target.upstreamName } }, ...refLifecycleEvents(base, refs)];
}

/**
 * Applies every group in one transaction; when that fails (a ref moved meanwhile), each group
 * on its own, so only the raced refs are left for the next run. Returns the refs applied.
 */
async function applyGroups(deps: SyncDeps, target: SyncTarget, groups: readonly Group[]): Promise<Set<string>> {
  const all = await deps.refStore.apply(target.repo, groups.flatMap((g) => g.updates), () => syncEvents(target, groups));
  if (all.ok) return new Set(groups.map((g) => g.ref));
  const results = await Promise.all(groups.map((g) => deps.refStore.apply(target.repo, g.updates, () => syncEvents(target, [g]))));
  return new Set(groups.filter((_, i) => results[i]!.ok).map((g) => g.ref));
}

interface PushSummary {
  readonly results: Map<string, { outcome: RefOutcome; message?: string }>;
  readonly remoteMessages: readonly string[];
  readonly pushError: Error | null;
}

async function push(deps: SyncDeps, target: SyncTarget, request: SyncRequest, scratch: ScratchRepo, access: RemoteAccess, decisions: readonly { sides: RefSides; decision: PushDecision }[], signal?: AbortSignal): Promise<PushSummary> {
  const results = new Map<string, { outcome: RefOutcome; message?: string }>();
  const trackingOnly: Group[] = [];
  const sends: { sides: RefSides; decision: PushDecision }[] = [];
  for (const entry of decisions) {
    if (entry.decision.send !== undefined) sends.push(entry);
    else if (entry.decision.tracking !== undefined) {
      const change = update(trackingRef(target.upstreamId, entry.sides.ref), entry.sides.tracking, entry.decision.tracking);
      if (change !== null) trackingOnly.push({ ref: entry.sides.ref, updates: [change], visible: [] });
    }
  }
  if (request.dryRun) return { results, remoteMessages: [], pushError: null };
  if (trackingOnly.length > 0) await applyGroups(deps, target, trackingOnly);
  if (sends.length === 0) return { results, remoteMessages: [], pushError: null };
  // What an overwrite replaces on the remote stays reachable in Grove.
  const backups = sends.filter(({ decision }) => decision.backupOfRemote !== undefined);
  if (backups.length > 0) {
    await scratch.migrate();
    const backedUp = await applyGroups(deps, target, backups.map(({ sides, decision }) => ({ ref: sides.ref, updates: [update(backupRef(target.upstreamId, request.runId, 'remote', sides.ref), null, decision.backupOfRemote!)!], visible: [] })));
    for (const { sides } of backups) if (!backedUp.has(sides.ref)) results.set(sides.ref, { outcome: 'failed', message: 'the backup of the remote tip could not be written; not overwritten' });
  }
  const commands: PushCommand[] = sends.filter(({ sides }) => !results.has(sides.ref)).map(({ sides, decision }) => ({ ref: sides.ref, oid: decision.send!.oid, lease: decision.send!.lease }));
  if (commands.length === 0) return { results, remoteMessages: [], pushError: null };
  let outcome;
  try {
    outcome = await scratch.push(access, deps.remote, commands, signal);
  } catch (error) {
    for (const command of commands) results.set(command.ref, { outcome: 'failed', message: (error as Error).message });
    return { results, remoteMessages: [], pushError: error as Error };
  }
  const accepted: Group[] = [];
  const byRef = new Map(outcome.refs.map((r) => [r.ref, r]));
  for (const { sides, decision } of sends) {
    if (results.has(sides.ref)) continue;
    const result = byRef.get(sides.ref);
    if (result === undefined) {
      results.set(sides.ref, { outcome: 'failed', message: 'the remote did not report on this ref' });
    } else if (!result.ok) {
      results.set(sides.ref, result.stale
        ? { outcome: 'stale', message: 'the remote moved during the sync; the next run decides it again' }
        : { outcome: 'rejected', message: `the remote refused it: ${result.reason ?? 'no reason given'}` });
    } else {
      results.set(sides.ref, { outcome: decision.outcome });
      const change = update(trackingRef(target.upstreamId, sides.ref), sides.tracking, decision.send!.oid);
      if (change !== null) accepted.push({ ref: sides.ref, updates: [change], visible: [] });
    }
  }
  if (accepted.length > 0) await applyGroups(deps, target, accepted);
  return { results, remoteMessages: outcome.remoteMessages, pushError: null };
}
