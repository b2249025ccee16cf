import type { Page, PageOptions } from './types.ts';
import { seg, type Transport } from './transport.ts';

export type SyncDirection = 'pull' | 'push' | 'both';

/**
 * One rule of an upstream; the first rule whose glob matches a ref decides how it syncs.
 * Answers always carry `onDivergence` and `deletions`.
 */
export interface SyncRule {
  /** A glob over full ref names: `refs/heads/**`, `refs/heads/agent-7/*`, `refs/tags/*`. */
  refs: string;
  direction: SyncDirection;
  /**
   * When both sides changed a ref (or a tag moved). skip (default): report it `diverged`;
   * overwrite: take the other side's value, keeping the replaced tip under a backup ref;
   * keep (pull, branches only): publish the upstream tip as `upstream/<branch>`.
   */
  onDivergence?: 'skip' | 'overwrite' | 'keep';
  /** ignore (default), or propagate a deletion the other side did not change since the last sync. */
  deletions?: 'ignore' | 'propagate';
}

/** Another git server a repository syncs with. */
export interface Upstream {
  id: string;
  name: string;
  org: string;
  repo: string;
  url: string;
  credentialId: string | null;
  rules: Required<SyncRule>[];
  /** A read-only mirror: only the sync moves its refs. */
  readOnly: boolean;
  pollIntervalSeconds: number;
  /** Refs push rules cover are pushed after every accepted Grove change. */
  pushForward: boolean;
  webhook: {
    /** Where the remote sends push webhooks: a path relative to the server's public URL. */
    url: string;
    /** The HMAC key for the remote: only in the answer that created the upstream. */
    secret?: string;
    lastDeliveryAt: string | null;
    /** A delivery arrived within 24 hours (polls then run every 15 minutes). */
    healthy: boolean;
  };
  status: {
    state: 'active' | 'paused';
    /** credential_rejected, remote_not_found, remote_refused, credential_unusable or too_many_failures. */
    pausedReason: string | null;
    consecutiveFailures: number;
    lastError: string | null;
    lastCheckedAt: string | null;
    lastSuccessAt: string | null;
    nextPollAt: string | null;
  };
  /** Only in the answer of `set`: the id of the run it queued. */
  syncRun?: string;
  createdAt: string;
  updatedAt: string;
}

export interface UpstreamInput {
  /** The remote repository's https URL, without credentials. */
  url: string;
  /** A credential of the repository's org; none for a public remote. */
  credentialId?: string | null;
  /** Ordered, at most 50. Default: pull every branch and tag, fast-forward only (a mirror: overwrite and propagate). */
  rules?: SyncRule[];
  /** Mirror: the remote is the truth; pushes and API writes are refused. */
  readOnly?: boolean;
  /** 10 to 86,400; default the server's GROVE_SYNC_POLL_SECONDS (or the upstream's current interval). */
  pollIntervalSeconds?: number;
  /** Default true. */
  pushForward?: boolean;
}

/** What a sync did to one ref. */
export type RefOutcome = 'created' | 'updated' | 'forced' | 'deleted' | 'unchanged' | 'filtered' | 'diverged' | 'kept' | 'rejected' | 'stale' | 'failed';

/** queued and running are not final; partial: some ref diverged, was rejected, stale or failed; failed: the remote could not be read, nothing changed. */
export type SyncRunStatus = 'queued' | 'running' | 'succeeded' | 'partial' | 'failed';

export interface RefReport {
  /** The full ref name: `refs/heads/main`. */
  ref: string;
  side: 'pull' | 'push';
  outcome: RefOutcome;
  /** Grove's value before and after the run (null: absent). */
  before: string | null;
  after: string | null;
  /** The remote's value as the run saw it (after a push: what it pushed). */
  upstream: string | null;
  /** Why: a divergence, the remote's refusal (`GH006: Protected branch update failed`), a race. */
  message?: string;
}

export interface SyncRun {
  id: string;
  /** The upstream's name. */
  upstream: string;
  direction: SyncDirection;
  trigger: 'webhook' | 'poll' | 'push' | 'manual';
  status: SyncRunStatus;
  dryRun: boolean;
  /** The globs the run was limited to, or null for every ref. */
  requestedRefs: string[] | null;
  /** How many refs had each outcome (outcomes no ref had may be absent). */
  counts: Partial<Record<RefOutcome, number>>;
  /** Every ref whose outcome is not a plain unchanged (at most 10,000: see refsTruncated). */
  refs: RefReport[];
  refsTruncated: boolean;
  /** Why a failed run failed (credentials removed). */
  error: { code: string; message: string } | null;
  /** The remote's own `remote:` lines, credentials removed. */
  remoteMessages: string[];
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface SyncInput {
  /** Default both. */
  direction?: SyncDirection;
  /** Only refs matching these globs (`refs/heads/agent-7/**`); a key limited to branches must name refs its globs cover. */
  refs?: string[];
  /** Decide and report every ref; change nothing on either side. */
  dryRun?: boolean;
}

export interface WaitOptions {
  /** Default 10 minutes; then SyncWaitTimeoutError. */
  timeoutMs?: number;
  /** Between two reads of the run; default 1 second. */
  intervalMs?: number;
  /** Called with every run read, the final one included. */
  onProgress?: (run: SyncRun) => void;
}

/** `syncs.wait` gave up: the run was still queued or running (`run` is the last one read). */
export class SyncWaitTimeoutError extends Error {
  override name = 'SyncWaitTimeoutError';
  readonly run: SyncRun;

  constructor(run: SyncRun, timeoutMs: number) {
    super(`sync run ${run.id} is still ${run.status} after ${timeoutMs} ms`);
    this.run = run;
  }
}

const upstreamsPath = (org: string, repo: string) => `/repos/${seg(org)}/${seg(repo)}/upstreams`;

/** `grove.upstreams`: the remotes a repository pulls from, pushes to or mirrors (docs/remote-sync.md). */
export class Upstreams {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  /**
   * Attaches upstream `name` (usually `origin`) or replaces its whole configuration, after
   * checking that the remote answers (424 credential_rejected, 502 remote_unreachable, 422 for a
   * destination the server may not reach: nothing is stored then), and queues a run (`syncRun`).
   * When it created the upstream, the answer carries `webhook.secret`, shown this once.
   */
  set(org: string, repo: string, name: string, input: UpstreamInput): Promise<Upstream> {
    return this.#http.request('PUT', `${upstreamsPath(org, repo)}/${seg(name)}`, { body: input });
  }

  get(org: string, repo: string, name: string): Promise<Upstream> {
    return this.#http.request('GET', `${upstreamsPath(org, repo)}/${seg(name)}`);
  }

  async list(org: string, repo: string): Promise<Upstream[]> {
    return (await this.#http.request<{ items: Upstream[] }>('GET', upstreamsPath(org, repo))).items;
  }

  /** Detaches it: its runs, tracking refs and backup refs go too. */
  delete(org: string, repo: string, name: string): Promise<void> {
    return this.#http.request('DELETE', `${upstreamsPath(org, repo)}/${seg(name)}`);
  }

  /** Resumes a paused upstream now (rotating its credential resumes it by itself). */
  resume(org: string, repo: string, name: string): Promise<Upstream> {
    return this.#http.request('POST', `${upstreamsPath(org, repo)}/${seg(name)}/resume`);
  }
}

/** `grove.syncs`: an upstream's sync runs, with per-ref outcomes. */
export class Syncs {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  /**
   * Queues a run (joining the one already queued, if any) and returns it, usually `queued`:
   * follow it with `wait`. 409 upstream_paused while the upstream is paused.
   */
  create(org: string, repo: string, upstream: string, input: SyncInput = {}): Promise<SyncRun> {
    return this.#http.request('POST', `${upstreamsPath(org, repo)}/${seg(upstream)}/syncs`, { body: input });
  }

  get(org: string, repo: string, upstream: string, id: string): Promise<SyncRun> {
    return this.#http.request('GET', `${upstreamsPath(org, repo)}/${seg(upstream)}/syncs/${seg(id)}`);
  }

  /** Newest first. A poll that found nothing to do writes no run. */
  list(org: string, repo: string, upstream: string, options: PageOptions = {}): Promise<Page<SyncRun>> {
    return this.#http.request('GET', `${upstreamsPath(org, repo)}/${seg(upstream)}/syncs`, { query: { limit: options.limit, cursor: options.cursor } });
  }

  /**
   * Reads the run every `intervalMs` until it is no longer queued or running and returns it
   * (succeeded, partial or failed: a failed run is returned, not thrown). Throws
   * SyncWaitTimeoutError after `timeoutMs`, and the GroveApiError of a read that fails.
   */
  async wait(org: string, repo: string, upstream: string, id: string, options: WaitOptions = {}): Promise<SyncRun> {
    const timeoutMs = options.timeoutMs ?? 600_000;
    const intervalMs = options.intervalMs ?? 1000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = await this.get(org, repo, upstream, id);
      options.onProgress?.(run);
      if (run.status !== 'queued' && run.status !== 'running') return run;
      const left = deadline - Date.now();
      if (left <= 0) throw new SyncWaitTimeoutError(run, timeoutMs);
      await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, left)));
    }
  }
}
