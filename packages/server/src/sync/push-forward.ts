/**
 * Push-forward (docs/remote-sync.md, "Triggers"): a committed Grove ref change — a push, an API
 * commit or merge — by anyone but a sync, on a ref a push rule of an active upstream covers,
 * asks for a push run after a short debounce (a burst of pushes makes one run). Changes made by
 * a sync carry the actor kind `sync` and are ignored: no loops.
 */
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { StoredEvent } from '../events/types.ts';
import { pushes, ruleFor } from './rules.ts';
import { rulesOf, upstreamsOfRepo } from './upstream-store.ts';

const DEBOUNCE_MS = 200;
/** Ref-changing events: each carries the changed refs in `payload.refs`. */
const REF_EVENTS = new Set(['push', 'commit.created', 'merge.completed']);

export class PushForward {
  readonly #db: Db;
  readonly #requestPush: (upstreamId: string) => Promise<unknown>;
  readonly #logger: Pick<Logger, 'warn'>;
  readonly #pending = new Map<string, NodeJS.Timeout>();
  #stopped = false;

  constructor(db: Db, requestPush: (upstreamId: string) => Promise<unknown>, logger: Pick<Logger, 'warn'>) {
    this.#db = db;
    this.#requestPush = requestPush;
    this.#logger = logger;
  }

  /** Told every committed event (EventLog.subscribe). */
  observe(event: StoredEvent): void {
    if (this.#stopped || event.repo === null || !REF_EVENTS.has(event.type) || event.actor.kind === 'sync') return;
    const refs = (event.payload.refs as { ref?: unknown }[] | undefined)?.map((r) => r.ref).filter((r): r is string => typeof r === 'string') ?? [];
    if (refs.length === 0) return;
    void upstreamsOfRepo(this.#db, event.org, event.repo).then((upstreams) => {
      for (const upstream of upstreams) {
        if (upstream.state !== 'active' || upstream.push_forward !== 1 || this.#pending.has(upstream.id)) continue;
        const rules = rulesOf(upstream);
        if (!refs.some((ref) => pushes(ruleFor(rules, ref)))) continue;
        this.#pending.set(upstream.id, setTimeout(() => {
          this.#pending.delete(upstream.id);
          this.#requestPush(upstream.id).catch((error: unknown) => this.#logger.warn({ err: error }, 'remote sync: queueing a push-forward failed'));
        }, DEBOUNCE_MS));
      }
    }, (error: unknown) => this.#logger.warn({ err: error }, 'remote sync: reading upstreams for push-forward failed'));
  }

  /** Drops a pending push-forward (the upstream was deleted). */
  forget(upstreamId: string): void {
    clearTimeout(this.#pending.get(upstreamId));
    this.#pending.delete(upstreamId);
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#pending.values()) clearTimeout(timer);
    this.#pending.clear();
  }
}
