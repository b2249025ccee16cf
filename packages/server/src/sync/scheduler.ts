/**
 * When syncs run (docs/remote-sync.md, "Triggers"). Every trigger only makes a run sooner;
 * runs are idempotent, so a lost trigger costs latency, never correctness:
 *
 * - manual runs (`POST …/syncs`) and webhook hints queue a run row;
 * - push-forward (sync/push-forward.ts): a committed ref change by anyone but a sync, on a
 *   ref a push rule covers, queues a push run after a 200 ms debounce;
 * - the poll always runs: when an upstream is due, one `ls-remote` is compared with the
 *   tracking refs (and Grove's refs on push rules) (sync/poll.ts); only a difference not seen
 *   by the last poll makes a run, so a no-op poll writes no row and makes no REST call.
 *
 * Queued triggers coalesce: an upstream has at most one queued run without ref filters, and
 * one running run. Runs are the database's (`sync_runs`), so a restart resumes them; in a
 * cluster the node holding the `remote-sync` lease runs them all. Failures back off (30 s ×
 * 2ⁿ with jitter, at most an hour); a rejected credential or a missing remote repository
 * pauses the upstream at once (no retry storm), ten failures in a row pause it too, and
 * rotating the credential resumes it.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Leases } from '../cluster/leases.ts';
import type { RepoCache } from '../cluster/repo-cache.ts';
import type { Db } from '../db/database.ts';
import type { Durability } from '../db/durability.ts';
import type { SyncRunsTable } from '../db/schema.ts';
import type { EventLog } from '../events/event-log.ts';
import type { NewEvent } from '../events/types.ts';
import type { Metrics } from '../http/metrics.ts';
import type { GuardedFetch } from '../outbound/guarded-fetch.ts';
import type { RefView } from '../repo/ref-view.ts';
import { listRemoteRefs } from '../repo/remote-git.ts';
import type { SecretStore } from '../secrets/secret-store.ts';
import { backoffMs, failureOf, PAUSE_AFTER_FAILURES } from './failures.ts';
import { pollDecision, type PollDecision } from './poll.ts';
import { PushForward } from './push-forward.ts';
import { pulls, ruleFor, trackingPrefix, type SyncDirection } from './rules.ts';
import { runSync, syncActor, type SyncDeps, type SyncReport } from './sync-run.ts';
import { findUpstreamById, newId, pollIntervalSeconds, remoteAccess, rulesOf, type UpstreamWithRepo } from './upstream-store.ts';

export type SyncTrigger = SyncRunsTable['trigger'];

export interface SyncAsk {
  readonly direction: SyncDirection;
  readonly trigger: SyncTrigger;
  readonly refs?: readonly string[] | null;
  readonly dryRun?: boolean;
}

export interface SchedulerDeps extends SyncDeps {
  readonly db: Db;
  readonly durability: Durability;
  readonly events: EventLog;
  readonly secrets: SecretStore;
  readonly outbound: GuardedFetch;
  readonly repoCache: RepoCache;
  readonly leases: Leases;
  readonly metrics: Metrics;
  readonly logger: Pick<Logger, 'warn' | 'error' | 'info'>;
  readonly gitDir: (repoId: string) => string;
  readonly concurrency: number;
}

const TICK_MS = 1_000;
const MAX_RECORDED_REFS = 10_000;

export class SyncScheduler {
  readonly #deps: SchedulerDeps;
  readonly #running = new Map<string, Promise<void>>();
  readonly #pushForward: PushForward;
  readonly #requests = new Map<string, Promise<unknown>>();
  #timer: NodeJS.Timeout | null = null;
  #ticking: Promise<void> | null = null;
  #again = false;
  #stopped = false;
  #unsubscribe: (() => void) | null = null;

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
    this.#pushForward = new PushForward(deps.db, (upstreamId) => this.request(upstreamId, { direction: 'push', trigger: 'push' }), deps.logger);
  }

  /** Re-queues runs a stop interrupted, then runs the loop and follows committed ref changes. */
  async start(): Promise<void> {
    await this.#deps.db.updateTable('sync_runs').set({ status: 'queued', started_at: null }).where('status', '=', 'running').execute();
    this.#unsubscribe = this.#deps.events.subscribe((event) => this.#pushForward.observe(event));
    this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#pushForward.stop();
    await this.#ticking;
    await Promise.all(this.#running.values());
  }

  /** Resolves once nothing is running or queued for `upstreamId` (tests, `--wait`). */
  async idle(upstreamId: string): Promise<void> {
    for (;;) {
      await this.#running.get(upstreamId);
      const queued = await this.#deps.db.selectFrom('sync_runs').select('id').where('upstream_id', '=', upstreamId).where('status', 'in', ['queued', 'running']).executeTakeFirst();
      if (queued === undefined && !this.#running.has(upstreamId)) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Queues a run, or joins the one already queued (the same run answers both). */
  request(upstreamId: string, ask: SyncAsk): Promise<SyncRunsTable> {
    // One request at a time per upstream on this node, so a burst of triggers finds the run queued by the first.
    const previous = this.#requests.get(upstreamId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#request(upstreamId, ask));
    const settled = next.catch(() => undefined);
    this.#requests.set(upstreamId, settled);
    void settled.then(() => {
      if (this.#requests.get(upstreamId) === settled) this.#requests.delete(upstreamId);
    });
    return next;
  }

  async #request(upstreamId: string, ask: SyncAsk): Promise<SyncRunsTable> {
    const { db } = this.#deps;
    const refs = ask.refs ?? null;
    const dryRun = ask.dryRun ?? false;
    if (refs === null && !dryRun) {
      const queued = await db.selectFrom('sync_runs').selectAll().where('upstream_id', '=', upstreamId).where('status', '=', 'queued').where('requested_refs', 'is', null).where('dry_run', '=', 0).orderBy('created_at').executeTakeFirst();
      if (queued !== undefined) {
        if (queued.direction !== ask.direction && queued.direction !== 'both') {
          await db.updateTable('sync_runs').set({ direction: 'both' }).where('id', '=', queued.id).execute();
          this.#wake();
          return { ...queued, direction: 'both' };
        }
        this.#wake();
        return queued;
      }
    }
    const upstream = await db.selectFrom('upstreams').select('repo_id').where('id', '=', upstreamId).executeTakeFirstOrThrow();
    const row: SyncRunsTable = {
      id: newId('sync'),
      upstream_id: upstreamId,
      repo_id: upstream.repo_id,
      direction: ask.direction,
      trigger: ask.trigger,
      status: 'queued',
      requested_refs: refs === null ? null : JSON.stringify(refs),
      dry_run: dryRun ? 1 : 0,
      counts: '{}',
      refs: '[]',
      refs_truncated: 0,
      error_code: null,
      error_message: null,
      remote_messages: null,
      created_at: new Date().toISOString(),
      started_at: null,
      finished_at: null,
    };
    await db.insertInto('sync_runs').values(row).execute();
    await this.#deps.durability.sync();
    this.#wake();
    return row;
  }

  /**
   * A webhook's hint that `ref` is now `after` upstream: nothing when the tracking ref already
   * says so (the echo of Grove's own push) or no rule pulls the ref; else a pull run.
   */
  async hint(upstream: UpstreamWithRepo, ref: string | null, after: string | null): Promise<boolean> {
    if (upstream.state !== 'active') return false;
    if (ref !== null && after !== null) {
      if (!pulls(ruleFor(rulesOf(upstream), ref))) return false;
      const gitDir = this.#deps.gitDir(upstream.repo_id);
      await this.#deps.repoCache.ensure({ id: upstream.repo_id, gitDir, defaultBranch: upstream.default_branch });
      const snapshot = await this.#deps.refView.read(gitDir);
      const tracked = snapshot.hidden.find((r) => r.name === `${trackingPrefix(upstream.id)}${ref.slice('refs/'.length)}`)?.oid ?? null;
      if ((tracked ?? '0'.repeat(40)) === after) return false;
    }
    await this.request(upstream.id, { direction: 'pull', trigger: 'webhook' });
    return true;
  }

  #wake(): void {
    if (this.#ticking !== null) this.#again = true;
    else this.#schedule(0);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#ticking = this.#tick().catch((error: unknown) => this.#deps.logger.warn({ err: error }, 'remote sync: the scheduler tick failed')).finally(() => {
        this.#ticking = null;
        this.#schedule(this.#again ? 0 : TICK_MS);
        this.#again = false;
      });
    }, ms);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    if (!(await this.#deps.leases.hold('remote-sync'))) return;
    const { db } = this.#deps;
    let free = this.#deps.concurrency - this.#running.size;
    if (free <= 0) return;
    const queued = await db
      .selectFrom('sync_runs')
      .innerJoin('upstreams', 'upstreams.id', 'sync_runs.upstream_id')
      .selectAll('sync_runs')
      .where('sync_runs.status', '=', 'queued')
      .where('upstreams.state', '=', 'active')
      .orderBy('sync_runs.created_at')
      .limit(this.#deps.concurrency * 4)
      .execute();
    for (const run of queued) {
      if (free <= 0 || this.#stopped) return;
      if (this.#running.has(run.upstream_id)) continue;
      free--;
      this.#track(run.upstream_id, this.#execute(run).then(() => undefined));
    }
    const now = new Date().toISOString();
    const due = await db.selectFrom('upstreams').select('id').where('state', '=', 'active').where('next_poll_at', '<=', now).orderBy('next_poll_at').limit(Math.max(1, free)).execute();
    for (const { id } of due) {
      if (free <= 0 || this.#stopped) return;
      if (this.#running.has(id)) continue;
      free--;
      this.#track(id, this.#poll(id));
    }
  }

  #track(upstreamId: string, work: Promise<void>): void {
    const done = work.catch((error: unknown) => this.#deps.logger.error({ err: error, upstreamId }, 'remote sync failed unexpectedly')).finally(() => {
      this.#running.delete(upstreamId);
      this.#wake();
    });
    this.#running.set(upstreamId, done);
  }

  /** Polls one upstream now, whenever it is due (tests; operators wait for the schedule). */
  async pollNow(upstreamId: string): Promise<void> {
    await this.#running.get(upstreamId);
    const work = this.#poll(upstreamId);
    this.#track(upstreamId, work);
    await work;
  }

  /** One ls-remote: a run only when the remote or a pushed ref differs from the tracking refs. */
  async #poll(upstreamId: string): Promise<void> {
    const { db } = this.#deps;
    const upstream = await findUpstreamById(db, upstreamId);
    if (upstream === undefined || upstream.state !== 'active') return;
    const queued = await db.selectFrom('sync_runs').select('id').where('upstream_id', '=', upstreamId).where('status', '=', 'queued').executeTakeFirst();
    if (queued !== undefined) return; // the queue runs it first
    const started = performance.now();
    const observe = (result: string) => this.#deps.metrics.syncPolls.observe({ result }, (performance.now() - started) / 1000);
    let decision: PollDecision;
    try {
      decision = await this.#pollDecision(upstream);
    } catch (error) {
      observe('failed');
      await this.#failed(upstream, null, error);
      return;
    }
    // Nothing new since the run the last poll caused: a divergence that run reported stays reported, no run per interval.
    if (decision.direction === null || decision.digest === upstream.poll_digest) {
      observe('noop');
      const now = Date.now();
      await db.updateTable('upstreams').set({ last_checked_at: new Date(now).toISOString(), next_poll_at: new Date(now + pollIntervalSeconds(upstream, now) * 1000).toISOString() }).where('id', '=', upstreamId).execute();
      return;
    }
    observe('run');
    const run = await this.request(upstreamId, { direction: decision.direction, trigger: 'poll' });
    const status = await this.#execute(run);
    // A failed run is retried by the next poll (after its backoff); any other ends this state.
    if (status !== 'failed') await db.updateTable('upstreams').set({ poll_digest: decision.digest }).where('id', '=', upstreamId).execute();
  }

  async #pollDecision(upstream: UpstreamWithRepo): Promise<PollDecision> {
    const gitDir = this.#deps.gitDir(upstream.repo_id);
    await this.#deps.repoCache.ensure({ id: upstream.repo_id, gitDir, defaultBranch: upstream.default_branch });
    const snapshot = await this.#deps.refView.read(gitDir);
    const prefix = trackingPrefix(upstream.id);
    const tracking = new Map(snapshot.hidden.filter((r) => r.name.startsWith(prefix)).map((r) => [`refs/${r.name.slice(prefix.length)}`, r.oid]));
    const grove = new Map(snapshot.refs.map((r) => [r.name, r.oid]));
    const access = await remoteAccess(this.#deps.db, this.#deps.secrets, this.#deps.outbound, upstream);
    const remote = await listRemoteRefs(this.#deps.git, access, this.#deps.remote);
    return pollDecision(rulesOf(upstream), remote, tracking, grove);
  }

  /** Runs a queued run; its final status (null when another node or call claimed it, or its upstream is gone). */
  async #execute(queued: SyncRunsTable): Promise<SyncRunsTable['status'] | null> {
    const { db, events } = this.#deps;
    const claimed = await db.updateTable('sync_runs').set({ status: 'running', started_at: new Date().toISOString() }).where('id', '=', queued.id).where('status', '=', 'queued').executeTakeFirst();
    if (claimed.numUpdatedRows === 0n) return null;
    const upstream = await findUpstreamById(db, queued.upstream_id);
    if (upstream === undefined) return null; // deleted meanwhile (its runs with it)
    const run = { ...queued, status: 'running' as const };
    let report: SyncReport;
    try {
      const gitDir = this.#deps.gitDir(upstream.repo_id);
      await this.#deps.repoCache.ensure({ id: upstream.repo_id, gitDir, defaultBranch: upstream.default_branch });
      const access = await remoteAccess(db, this.#deps.secrets, this.#deps.outbound, upstream);
      report = await runSync(this.#deps, {
        upstreamId: upstream.id,
        upstreamName: upstream.name,
        repo: { id: upstream.repo_id, gitDir },
        org: upstream.org_name,
        repoName: upstream.repo_name,
        rules: rulesOf(upstream),
      }, { runId: run.id, direction: run.direction, refs: run.requested_refs === null ? null : (JSON.parse(run.requested_refs) as string[]), dryRun: run.dry_run === 1 }, access);
    } catch (error) {
      await this.#failed(upstream, run, error);
      return 'failed';
    }
    const now = Date.now();
    const finished = new Date(now).toISOString();
    const recorded = report.refs.slice(0, MAX_RECORDED_REFS);
    const counts = Object.fromEntries(Object.entries(report.counts).filter(([, n]) => n > 0));
    const pushFailure = report.pushError === null ? null : failureOf(report.pushError);
    if (pushFailure?.pause) await this.#pause(upstream, pushFailure);
    await events.change(async (trx) => {
      await trx.updateTable('sync_runs').set({
        status: report.status,
        counts: JSON.stringify(counts),
        refs: JSON.stringify(recorded),
        refs_truncated: recorded.length < report.refs.length ? 1 : 0,
        remote_messages: report.remoteMessages.length === 0 ? null : JSON.stringify(report.remoteMessages),
        error_code: pushFailure?.code ?? null,
        error_message: pushFailure?.message ?? null,
        finished_at: finished,
      }).where('id', '=', run.id).execute();
      await trx.updateTable('upstreams').set({
        consecutive_failures: 0,
        last_error: pushFailure?.message ?? null,
        last_checked_at: finished,
        last_success_at: finished,
        next_poll_at: new Date(now + pollIntervalSeconds(upstream, now) * 1000).toISOString(),
      }).where('id', '=', upstream.id).execute();
      // A run that reached the remote proves the credential works (a resume without a rotation clears a stale rejection).
      if (upstream.credential_id !== null && pushFailure?.code !== 'credential_rejected') {
        await trx.updateTable('credentials').set({ last_used_at: finished, status: 'ok', last_error: null }).where('id', '=', upstream.credential_id).execute();
      }
    }, () => [this.#event(upstream, 'sync.completed', { runId: run.id, direction: run.direction, trigger: run.trigger, status: report.status, dryRun: run.dry_run === 1, counts })]);
    this.#deps.metrics.syncRuns.inc({ direction: run.direction, status: report.status });
    for (const [outcome, n] of Object.entries(counts)) if (outcome !== 'unchanged') this.#deps.metrics.syncRefOutcomes.inc({ outcome }, n);
    const pushed = report.refs.some((r) => r.side === 'push' && ['created', 'updated', 'forced', 'deleted'].includes(r.outcome));
    if (report.moved > 0 || pushed) this.#deps.metrics.syncLag.observe({ kind: run.trigger === 'push' ? 'push_forward' : `pull_${run.trigger}` }, (now - Date.parse(run.created_at)) / 1000);
    return report.status;
  }

  async #failed(upstream: UpstreamWithRepo, run: SyncRunsTable | null, error: unknown): Promise<void> {
    const failure = failureOf(error);
    if (failure.code === 'internal') this.#deps.logger.error({ err: error, upstream: upstream.id }, 'remote sync: internal error');
    const now = Date.now();
    const failures = upstream.consecutive_failures + 1;
    const finished = new Date(now).toISOString();
    // Paused before the run shows as failed: whoever waits for the run then sees the pause too.
    if (failure.pause || failures >= PAUSE_AFTER_FAILURES) await this.#pause(upstream, failure.pause ? failure : { code: 'too_many_failures', message: `${failures} failures in a row; the last: ${failure.message}` });
    await this.#deps.events.change(async (trx) => {
      if (run !== null) {
        await trx.updateTable('sync_runs').set({ status: 'failed', error_code: failure.code, error_message: failure.message, finished_at: finished }).where('id', '=', run.id).execute();
      }
      await trx.updateTable('upstreams').set({ consecutive_failures: failures, last_error: failure.message, last_checked_at: finished, next_poll_at: new Date(now + backoffMs(failures)).toISOString() }).where('id', '=', upstream.id).execute();
    }, () => (run === null ? [] : [this.#event(upstream, 'sync.failed', { runId: run.id, direction: run.direction, trigger: run.trigger, error: { code: failure.code, message: failure.message } })]));
    if (run !== null) this.#deps.metrics.syncRuns.inc({ direction: run.direction, status: 'failed' });
  }

  /** Stops syncing an upstream until someone acts (rotates its credential, or resumes it). */
  async #pause(upstream: UpstreamWithRepo, failure: { code: string; message: string }): Promise<void> {
    const now = new Date().toISOString();
    await this.#deps.events.change(async (trx) => {
      await trx.updateTable('upstreams').set({ state: 'paused', paused_reason: failure.code, last_error: failure.message, updated_at: now }).where('id', '=', upstream.id).execute();
      if (failure.code === 'credential_rejected' && upstream.credential_id !== null) {
        await trx.updateTable('credentials').set({ status: 'rejected', last_error: failure.message, updated_at: now }).where('id', '=', upstream.credential_id).execute();
      }
      // Runs queued behind the pause would only fail the same way.
      await trx.deleteFrom('sync_runs').where('upstream_id', '=', upstream.id).where('status', '=', 'queued').execute();
    }, () => [this.#event(upstream, 'upstream.paused', { reason: failure.code, message: failure.message })]);
    this.#deps.logger.warn({ upstream: upstream.id, reason: failure.code }, 'remote sync: upstream paused');
  }

  #event(upstream: UpstreamWithRepo, type: NewEvent['type'], payload: Record<string, unknown>): NewEvent {
    return { type, org: upstream.org_name, repo: upstream.repo_name, repoId: upstream.repo_id, actor: syncActor({ upstreamId: upstream.id, upstreamName: upstream.name }), payload: { upstream: upstream.name, upstreamId: upstream.id, ...payload } };
  }

  /** The upstream was deleted: a pending push-forward is dropped and a running run finishes first. */
  async forget(upstreamId: string): Promise<void> {
    this.#pushForward.forget(upstreamId);
    await this.#running.get(upstreamId);
  }

  /** A credential was rotated: the upstreams it paused run again now. */
  async resumeCredential(credentialId: string): Promise<number> {
    const paused = await this.#deps.db.selectFrom('upstreams').select('id').where('credential_id', '=', credentialId).where('state', '=', 'paused').execute();
    for (const { id } of paused) await this.resume(id);
    return paused.length;
  }

  async resume(upstreamId: string): Promise<void> {
    const upstream = await findUpstreamById(this.#deps.db, upstreamId);
    if (upstream === undefined || upstream.state === 'active') return;
    const now = new Date().toISOString();
    await this.#deps.events.change(
      (trx) => trx.updateTable('upstreams').set({ state: 'active', paused_reason: null, consecutive_failures: 0, next_poll_at: now, updated_at: now }).where('id', '=', upstreamId).execute(),
      () => [this.#event(upstream, 'upstream.resumed', {})],
    );
    this.#wake();
  }
}
