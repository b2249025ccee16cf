import type { Page } from './types.ts';
import { seg, type Transport } from './transport.ts';

export interface GroveEvent {
  /** Monotonic id; pass as `after` (or Last-Event-ID) to resume. */
  id: number;
  type: string;
  time: string;
  org: string;
  repo: string | null;
  actor: { kind: 'root' | 'key' | 'signed' | 'system'; id: string | null; name: string | null };
  payload: Record<string, unknown>;
}

export interface Webhook {
  id: string;
  org: string;
  url: string;
  events: string[];
  repos: string[] | null;
  active: boolean;
  createdAt: string;
  updatedAt: string;
  /** Only in the create answer. */
  secret?: string;
}

export interface WebhookDelivery {
  id: string;
  eventId: number;
  event: string;
  repo: string | null;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  responseCode: number | null;
  error: string | null;
  durationMs: number | null;
  nextAttemptAt: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

export interface AuditEntry {
  id: number;
  time: string;
  org: string | null;
  repo: string | null;
  action: string;
  keyId: string | null;
  ip: string | null;
  userAgent: string | null;
  outcome: 'ok' | 'denied' | 'failed';
  status: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
}

export interface WebhookInput {
  url: string;
  /** Event types, or ['*']. */
  events: string[];
  repos?: string[] | null;
  secret?: string;
  active?: boolean;
}

/** `grove.webhooks`: signed, durable, retried deliveries of an org's events. */
export class Webhooks {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  /** The answer carries `secret` (generated when not given): keep it to verify deliveries. */
  create(org: string, input: WebhookInput): Promise<Webhook> {
    return this.#http.request('POST', `/orgs/${seg(org)}/webhooks`, { body: input });
  }

  async list(org: string): Promise<Webhook[]> {
    return (await this.#http.request<{ items: Webhook[] }>('GET', `/orgs/${seg(org)}/webhooks`)).items;
  }

  get(org: string, id: string): Promise<Webhook> {
    return this.#http.request('GET', `/orgs/${seg(org)}/webhooks/${seg(id)}`);
  }

  update(org: string, id: string, input: Partial<WebhookInput>): Promise<Webhook> {
    return this.#http.request('PATCH', `/orgs/${seg(org)}/webhooks/${seg(id)}`, { body: input });
  }

  delete(org: string, id: string): Promise<void> {
    return this.#http.request('DELETE', `/orgs/${seg(org)}/webhooks/${seg(id)}`);
  }

  deliveries(org: string, id: string, options: { limit?: number; cursor?: string; status?: WebhookDelivery['status'] } = {}): Promise<Page<WebhookDelivery>> {
    return this.#http.request('GET', `/orgs/${seg(org)}/webhooks/${seg(id)}/deliveries`, { query: { limit: options.limit, cursor: options.cursor, status: options.status } });
  }

  redeliver(org: string, id: string, deliveryId: string): Promise<{ id: string; status: string }> {
    return this.#http.request('POST', `/orgs/${seg(org)}/webhooks/${seg(id)}/deliveries/${seg(deliveryId)}/redeliver`);
  }
}

export interface StreamOptions {
  org?: string;
  repo?: string;
  types?: string[];
  /** Resume after this event id (what a reconnect sends as Last-Event-ID). */
  after?: number;
  signal?: AbortSignal;
}

/** `grove.events`: the live stream, and the audit log. */
export class Events {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  /**
   * Events as they happen (Server-Sent Events), as an async iterator. With `after`,
   * first everything after that id from the durable log. Ends when `signal` aborts.
   */
  async *stream(options: StreamOptions = {}): AsyncGenerator<GroveEvent> {
    const response = await this.#http.raw('GET', '/events', {
      query: { org: options.org, repo: options.repo, types: options.types?.join(','), after: options.after },
      headers: { accept: 'text/event-stream' },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n');
          if (data !== '') yield JSON.parse(data) as GroveEvent;
        }
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }

  audit(org: string, options: { key?: string; repo?: string; action?: string; since?: string; until?: string; limit?: number; cursor?: string } = {}): Promise<Page<AuditEntry>> {
    return this.#http.request('GET', `/orgs/${seg(org)}/audit`, { query: { ...options } });
  }
}

/**
 * Checks a webhook delivery: `Grove-Signature` must be v1=HMAC-SHA256(secret,
 * "<Grove-Timestamp>.<raw body>") and the timestamp within `toleranceSeconds` of now.
 * Use the raw body bytes as received, before any JSON parsing.
 */
export async function verifyWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined> | Headers,
  body: string | Uint8Array,
  options: { toleranceSeconds?: number; now?: number } = {},
): Promise<boolean> {
  const get = (name: string): string | undefined => {
    if (headers instanceof Headers) return headers.get(name) ?? undefined;
    const value = headers[name] ?? headers[name.toLowerCase()];
    return Array.isArray(value) ? value[0] : value;
  };
  const signature = get('grove-signature');
  const timestamp = get('grove-timestamp');
  if (!signature?.startsWith('v1=') || timestamp === undefined || !/^\d+$/.test(timestamp)) return false;
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  if (Math.abs(now - Number(timestamp)) > (options.toleranceSeconds ?? 300)) return false;
  const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${timestamp}.${text}`)));
  const expected = `v1=${[...mac].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
  if (expected.length !== signature.length) return false;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ signature.charCodeAt(i);
  return diff === 0;
}
