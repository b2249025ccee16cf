/**
 * Delivers the webhook outbox: at least once, in event order per (webhook, repo),
 * retried with exponential backoff (1 s, 2 s, 4 s … capped at an hour) for a day, then
 * marked failed. It runs beside the request path: a slow or dead receiver delays only
 * its own deliveries, never a push.
 */
import { SoleNodeLeases, type Leases } from '../cluster/leases.ts';
import { OutboundRefusedError, type GuardedFetch } from '../outbound/guarded-fetch.ts';
import { webhookSecretOwner, type SecretStore } from '../secrets/secret-store.ts';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import type { WebhookDeliveriesTable } from '../db/schema.ts';
import { toStoredEvent, type EventLog } from './event-log.ts';
import { signWebhook } from './signature.ts';

export interface WebhookWorkerOptions {
  readonly timeoutMs: number;
  readonly retryForMs: number;
  readonly concurrency: number;
  readonly pollMs: number;
}

export const DEFAULT_WEBHOOK_OPTIONS: WebhookWorkerOptions = { timeoutMs: 10_000, retryForMs: 24 * 3600_000, concurrency: 256, pollMs: 1000 };

export function backoffMs(attempts: number): number {
  return Math.min(3600_000, 1000 * 2 ** Math.max(0, attempts - 1));
}

export class WebhookWorker {
  readonly #db: Db;
  readonly #log: EventLog;
  readonly #logger: Pick<Logger, 'warn'>;
  readonly #options: WebhookWorkerOptions;
  readonly #inFlight = new Set<string>();
  readonly #deliveries = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = false;
  readonly #wake = () => this.poke();

  readonly #secrets: SecretStore;

  readonly #outbound: GuardedFetch;

  readonly #leases: Leases;

  /** `leases`: in a cluster, only the node holding the `webhook-delivery` lease delivers. */
  constructor(db: Db, log: EventLog, secrets: SecretStore, outbound: GuardedFetch, logger: Pick<Logger, 'warn'>, options: WebhookWorkerOptions = DEFAULT_WEBHOOK_OPTIONS, leases: Leases = new SoleNodeLeases()) {
    this.#db = db;
    this.#leases = leases;
    this.#outbound = outbound;
    this.#secrets = secrets;
    this.#log = log;
    this.#logger = logger;
    this.#options = options;
  }

  start(): void {
    this.#log.outbox.on('queued', this.#wake);
    this.#timer = setInterval(this.#wake, this.#options.pollMs);
    this.#timer.unref();
    this.poke();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#log.outbox.off('queued', this.#wake);
    clearInterval(this.#timer);
    await this.#running;
    await Promise.all(this.#deliveries);
  }

  /** Runs a pass now (or right after the one in progress). */
  poke(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#pass().finally(() => {
      this.#running = null;
      if (this.#again) {
        this.#again = false;
        this.poke();
      }
    });
  }

  async #pass(): Promise<void> {
    try {
      if (!(await this.#leases.hold('webhook-delivery'))) return;
      const now = new Date().toISOString();
      const due = await this.#db.selectFrom('webhook_deliveries').selectAll().where('status', '=', 'pending').where('next_attempt_at', '<=', now).orderBy('event_seq').limit(200).execute();
      const heads = new Map<string, WebhookDeliveriesTable>();
      for (const delivery of due) {
        const lane = `${delivery.webhook_id}\0${delivery.repo ?? ''}`;
        if (!heads.has(lane) && !this.#inFlight.has(lane)) heads.set(lane, delivery);
      }
      // Deliveries are started, not awaited: a slow receiver holds only its own lane.
      for (const [lane, delivery] of heads) {
        if (this.#inFlight.size >= this.#options.concurrency) break;
        // Order per repo: an earlier delivery of this lane that is still pending (backing off) goes first.
        const earlier = await this.#db
          .selectFrom('webhook_deliveries')
          .select('id')
          .where('webhook_id', '=', delivery.webhook_id)
          .where('status', '=', 'pending')
          .where('event_seq', '<', delivery.event_seq)
          .where((eb) => (delivery.repo === null ? eb('repo', 'is', null) : eb('repo', '=', delivery.repo)))
          .executeTakeFirst();
        if (earlier) continue;
        this.#inFlight.add(lane);
        const running: Promise<void> = this.#deliver(delivery)
          .catch((error: unknown) => this.#logger.warn({ err: error }, 'webhook delivery failed'))
          .finally(() => {
            this.#inFlight.delete(lane);
            this.#deliveries.delete(running);
            this.poke();
          });
        this.#deliveries.add(running);
      }
    } catch (error) {
      this.#logger.warn({ err: error }, 'webhook pass failed');
    }
  }

  async #deliver(delivery: WebhookDeliveriesTable): Promise<void> {
    // The pass read its list before an earlier attempt of this lane finished: that attempt may
    // have delivered (or rescheduled) this very row since. Now that the lane is ours, look again.
    const current = await this.#db.selectFrom('webhook_deliveries').select(['status', 'attempts']).where('id', '=', delivery.id).executeTakeFirst();
    if (current === undefined || current.status !== 'pending' || current.attempts !== delivery.attempts) return;
    const hook = await this.#db.selectFrom('webhooks').selectAll().where('id', '=', delivery.webhook_id).executeTakeFirst();
    const row = await this.#db.selectFrom('events').selectAll().where('commit_seq', '=', delivery.event_seq).executeTakeFirst();
    if (!hook || !row) {
      await this.#db.updateTable('webhook_deliveries').set({ status: 'failed', error: 'webhook or event no longer exists' }).where('id', '=', delivery.id).execute();
      return;
    }
    const event = toStoredEvent(row);
    const body = JSON.stringify(event);
    const timestamp = Math.floor(Date.now() / 1000);
    const started = Date.now();
    let code: number | null = null;
    let error: string | null = null;
    try {
      const response = await this.#outbound.fetch(hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'grove-webhooks',
          'grove-event': event.type,
          'grove-delivery': delivery.id,
          'grove-timestamp': String(timestamp),
          'grove-signature': signWebhook(this.#secrets.open(hook.secret, webhookSecretOwner(hook.id)), timestamp, body),
        },
        body,
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
      code = response.status;
      await response.body?.cancel();
      if (code < 200 || code >= 300) error = `receiver answered ${code}`;
    } catch (caught) {
      const refused = [caught, (caught as Error).cause].find((e) => e instanceof OutboundRefusedError);
      error = (caught as Error).name === 'TimeoutError'
        ? `no answer within ${this.#options.timeoutMs} ms`
        : refused !== undefined ? `refused: ${refused.message}` : (caught as Error).message;
    }
    const duration = Date.now() - started;
    const attempts = delivery.attempts + 1;
    if (error === null) {
      await this.#db.updateTable('webhook_deliveries').set({ status: 'delivered', attempts, response_code: code, error: null, duration_ms: duration, delivered_at: new Date().toISOString() }).where('id', '=', delivery.id).execute();
      return;
    }
    const giveUp = Date.now() - Date.parse(delivery.created_at) > this.#options.retryForMs;
    await this.#db
      .updateTable('webhook_deliveries')
      .set({
        status: giveUp ? 'failed' : 'pending',
        attempts,
        response_code: code,
        error,
        duration_ms: duration,
        next_attempt_at: new Date(Date.now() + backoffMs(attempts)).toISOString(),
      })
      .where('id', '=', delivery.id)
      .execute();
  }
}
