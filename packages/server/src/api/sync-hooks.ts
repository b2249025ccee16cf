/**
 * `POST /api/v1/hooks/upstreams/{id}`: push webhooks from an upstream's remote. No API key:
 * the delivery proves itself with the upstream's webhook secret, checked over the raw body
 * before anything else —
 *
 *   GitHub   X-Hub-Signature-256: sha256=<hex HMAC-SHA256>   X-GitHub-Event: push | ping
 *   Gitea    X-Gitea-Signature: <hex HMAC-SHA256>            X-Gitea-Event: push
 *   GitLab   X-Gitlab-Token: <the secret>                    X-Gitlab-Event: Push Hook | Tag Push Hook
 *
 * A webhook is only a hint (remotes drop deliveries; the poll always runs): it is answered
 * 202 at once, and then, unless the tracking ref already has the pushed value (the echo of
 * Grove's own push), queues a pull run. A delivery id seen before is acknowledged and ignored.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { GroveError, notFound } from '../errors.ts';
import type { AppContext } from '../http/context.ts';
import { upstreamWebhookSecretOwner } from '../secrets/secret-store.ts';
import { findUpstreamById } from '../sync/upstream-store.ts';
import { API_PREFIX } from './prefix.ts';

const MAX_BODY_BYTES = 25 * 1024 * 1024; // GitHub caps payloads at 25 MB
const REMEMBERED_DELIVERIES = 1_000;

function sameBytes(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Whether the delivery carries a valid proof of `secret`. Pure. */
export function verifyDelivery(headers: Headers, body: Buffer, secret: string): boolean {
  const hmac = createHmac('sha256', secret).update(body).digest('hex');
  const github = header(headers, 'x-hub-signature-256');
  if (github !== undefined) return sameBytes(github, `sha256=${hmac}`);
  const gitea = header(headers, 'x-gitea-signature');
  if (gitea !== undefined) return sameBytes(gitea, hmac);
  const gitlab = header(headers, 'x-gitlab-token');
  if (gitlab !== undefined) return sameBytes(gitlab, secret);
  return false;
}

/** The event's kind, by whichever forge sent it. */
function eventOf(headers: Headers): 'push' | 'ping' | 'other' {
  const name = header(headers, 'x-github-event') ?? header(headers, 'x-gitea-event') ?? header(headers, 'x-gitlab-event') ?? '';
  if (name === 'push' || name === 'Push Hook' || name === 'Tag Push Hook') return 'push';
  if (name === 'ping') return 'ping';
  return 'other';
}

export async function syncHookRoutes(app: FastifyInstance, ctx: AppContext, logger: Pick<Logger, 'warn'>): Promise<void> {
  const seen = new Map<string, true>();
  await app.register(async (hooks) => {
    // The signature is over the bytes as sent: keep them.
    hooks.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES }, (_request, body, done) => done(null, body));
    hooks.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES }, (_request, body, done) => done(null, body));
    hooks.post<{ Params: { id: string }; Body: Buffer | undefined }>(`${API_PREFIX}/hooks/upstreams/:id`, {
      schema: {
        tags: ['remote sync'],
        summary: "Receive a push webhook from an upstream's remote (signed with the upstream's webhook secret; no API key)",
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } },
        security: [],
      },
    }, async (request, reply) => {
      const upstream = await findUpstreamById(ctx.db, request.params.id);
      if (upstream === undefined) throw notFound(`upstream ${request.params.id}`);
      const body = request.body ?? Buffer.alloc(0);
      const secret = ctx.secrets.open(upstream.webhook_secret, upstreamWebhookSecretOwner(upstream.id));
      if (!verifyDelivery(request.headers, body, secret)) throw new GroveError('unauthorized', 'the delivery is not signed with this upstream\'s webhook secret');
      const delivery = header(request.headers, 'x-github-delivery') ?? header(request.headers, 'x-gitea-delivery') ?? header(request.headers, 'x-gitlab-event-uuid');
      const key = delivery === undefined ? null : `${upstream.id}:${delivery}`;
      if (key !== null && seen.has(key)) return reply.code(202).send({ accepted: false, reason: 'duplicate delivery' });
      if (key !== null) {
        seen.set(key, true);
        if (seen.size > REMEMBERED_DELIVERIES) seen.delete(seen.keys().next().value!);
      }
      const kind = eventOf(request.headers);
      await ctx.db.updateTable('upstreams').set({ last_webhook_at: new Date().toISOString() }).where('id', '=', upstream.id).execute();
      if (kind !== 'push') return reply.code(202).send({ accepted: false, reason: kind === 'ping' ? 'ping' : 'not a push event' });
      let payload: { ref?: unknown; after?: unknown };
      try {
        const text = body.toString('utf8');
        payload = JSON.parse(text.startsWith('payload=') ? decodeURIComponent(text.slice('payload='.length).replace(/\+/g, ' ')) : text) as { ref?: unknown; after?: unknown };
      } catch {
        throw new GroveError('invalid_request', 'the push payload is not JSON');
      }
      const ref = typeof payload.ref === 'string' ? payload.ref : null;
      const after = typeof payload.after === 'string' && /^[0-9a-f]{40}$/.test(payload.after) ? payload.after : null;
      // Answered before the work: the remote waits for no fetch.
      void ctx.sync.hint(upstream, ref, after).catch((error: unknown) => logger.warn({ err: error, upstream: upstream.id }, 'remote sync: a webhook hint failed'));
      return reply.code(202).send({ accepted: true });
    });
  });
}
