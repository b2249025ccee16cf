/**
 * Webhooks: `POST/GET /api/v1/orgs/{org}/webhooks`, `GET/PATCH/DELETE …/webhooks/{id}`,
 * `GET …/webhooks/{id}/deliveries`, `POST …/deliveries/{deliveryId}/redeliver`.
 * Org administration (an org-wide admin grant). The secret signs every delivery; it is
 * generated when not given and returned only by the create call.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { findOrgByName } from '../db/orgs.ts';
import type { WebhookDeliveriesTable, WebhooksTable } from '../db/schema.ts';
import { GroveError, notFound } from '../errors.ts';
import { actorOf, EVENT_TYPES, type NewEvent } from '../events/types.ts';
import type { AppContext } from '../http/context.ts';
import { checkName } from '../names.ts';
import { webhookSecretOwner } from '../secrets/secret-store.ts';
import { principalOf, requireAccess } from './principal.ts';
import { errorResponses } from './schemas.ts';

interface WebhookBody {
  url?: string;
  events?: string[];
  repos?: string[] | null;
  secret?: string;
  active?: boolean;
}

async function checkWebhook(ctx: AppContext, body: WebhookBody): Promise<void> {
  if (body.url !== undefined) {
    let url: URL;
    try {
      url = new URL(body.url);
    } catch {
      throw new GroveError('invalid_request', 'url must be an absolute http(s) URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new GroveError('invalid_request', 'url must be http or https');
    if (url.username !== '' || url.password !== '') throw new GroveError('invalid_request', 'url must not carry credentials (deliveries are signed with the secret instead)');
    // Checked again on every delivery, after resolution: a name may change what it points at.
    const refusal = await ctx.outbound.check(url.hostname);
    if (refusal !== null) throw new GroveError('unprocessable', `url: ${refusal}`);
  }
  for (const type of body.events ?? []) {
    if (type !== '*' && !(EVENT_TYPES as readonly string[]).includes(type)) throw new GroveError('invalid_request', `unknown event type ${JSON.stringify(type)}; known: *, ${EVENT_TYPES.join(', ')}`);
  }
  for (const repo of body.repos ?? []) {
    const problem = checkName('repo', repo);
    if (problem) throw new GroveError('invalid_request', `repos: ${problem}`);
  }
  if (body.secret !== undefined && body.secret.length < 16) throw new GroveError('invalid_request', 'secret must be at least 16 characters');
}

/** The event of a webhook change: what the webhook is now, never its secret. */
function webhookEvent(type: 'webhook.created' | 'webhook.updated' | 'webhook.deleted', row: WebhooksTable, org: string, request: FastifyRequest): NewEvent {
  return { type, org, repo: null, actor: actorOf(principalOf(request)), payload: webhookJson(row, org) };
}

function webhookJson(row: WebhooksTable, org: string) {
  return {
    id: row.id,
    org,
    url: row.url,
    events: JSON.parse(row.events) as string[],
    repos: row.repos === null ? null : (JSON.parse(row.repos) as string[]),
    active: row.active === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function deliveryJson(row: WebhookDeliveriesTable & { type: string }) {
  return {
    id: row.id,
    eventId: row.event_seq,
    event: row.type,
    repo: row.repo,
    status: row.status,
    attempts: row.attempts,
    responseCode: row.response_code,
    error: row.error,
    durationMs: row.duration_ms,
    nextAttemptAt: row.status === 'pending' ? row.next_attempt_at : null,
    createdAt: row.created_at,
    deliveredAt: row.delivered_at,
  };
}

const webhookSchema = {
  $id: 'Webhook',
  type: 'object',
  required: ['id', 'org', 'url', 'events', 'repos', 'active', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string' },
    org: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string' } },
    repos: { type: ['array', 'null'], items: { type: 'string' } },
    active: { type: 'boolean' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    secret: { type: 'string', description: 'Only in the create answer' },
  },
} as const;

const deliverySchema = {
  $id: 'WebhookDelivery',
  type: 'object',
  properties: {
    id: { type: 'string' },
    eventId: { type: 'integer' },
    event: { type: 'string' },
    repo: { type: ['string', 'null'] },
    status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    attempts: { type: 'integer' },
    responseCode: { type: ['integer', 'null'] },
    error: { type: ['string', 'null'] },
    durationMs: { type: ['integer', 'null'] },
    nextAttemptAt: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
    deliveredAt: { type: ['string', 'null'] },
  },
} as const;

const webhookBodyProperties = {
  url: { type: 'string', maxLength: 2000 },
  events: { type: 'array', minItems: 1, items: { type: 'string' }, description: 'Event types, or ["*"]' },
  repos: { type: ['array', 'null'], items: { type: 'string' }, description: 'Only events of these repos; null or omitted = all' },
  secret: { type: 'string', maxLength: 200, description: 'HMAC key; generated when omitted' },
  active: { type: 'boolean' },
} as const;

const orgParams = { type: 'object', required: ['org'], properties: { org: { type: 'string' } } } as const;
const hookParams = { type: 'object', required: ['org', 'id'], properties: { org: { type: 'string' }, id: { type: 'string' } } } as const;

export async function webhookRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.addSchema(webhookSchema);
  app.addSchema(deliverySchema);

  async function orgFor(org: string) {
    const row = await findOrgByName(ctx.db, org);
    if (!row) throw notFound(`org ${org}`);
    return row;
  }

  async function hookFor(org: string, id: string) {
    const orgRow = await orgFor(org);
    const row = await ctx.db.selectFrom('webhooks').selectAll().where('id', '=', id).where('org_id', '=', orgRow.id).executeTakeFirst();
    if (!row) throw notFound(`webhook ${id}`);
    return row;
  }

  app.post<{ Params: { org: string }; Body: WebhookBody & { url: string; events: string[] } }>('/orgs/:org/webhooks', {
    schema: {
      tags: ['webhooks'],
      summary: 'Create a webhook (deliveries are signed: Grove-Signature v1=HMAC-SHA256 of "<timestamp>.<body>")',
      params: orgParams,
      body: { type: 'object', required: ['url', 'events'], additionalProperties: false, properties: webhookBodyProperties },
      response: { 201: { $ref: 'Webhook#' }, ...errorResponses },
    },
  }, async (request, reply) => {
    const { org } = request.params;
    requireAccess(request, 'admin', { kind: 'org', org });
    await checkWebhook(ctx, request.body);
    const orgRow = await orgFor(org);
    const now = new Date().toISOString();
    const secret = request.body.secret ?? `whsec_${randomBytes(24).toString('base64url')}`;
    const row: WebhooksTable = {
      id: `wh_${Date.now().toString(36)}${randomBytes(5).toString('hex')}`,
      org_id: orgRow.id,
      url: request.body.url,
      events: JSON.stringify(request.body.events),
      repos: request.body.repos ? JSON.stringify(request.body.repos) : null,
      secret: '', // sealed inside the transaction below
      active: request.body.active === false ? 0 : 1,
      created_at: now,
      updated_at: now,
    };
    // Sealed inside the transaction: a key rotation (one transaction too) then sees every value.
    await ctx.events.change(
      (trx) => trx.insertInto('webhooks').values({ ...row, secret: ctx.secrets.seal(secret, webhookSecretOwner(row.id)) }).execute(),
      () => [webhookEvent('webhook.created', row, org, request)],
    );
    return reply.code(201).send({ ...webhookJson(row, org), secret });
  });

  app.get<{ Params: { org: string } }>('/orgs/:org/webhooks', {
    schema: { tags: ['webhooks'], summary: "List an org's webhooks", params: orgParams, response: { 200: { type: 'object', properties: { items: { type: 'array', items: { $ref: 'Webhook#' } } } }, ...errorResponses } },
  }, async (request) => {
    const { org } = request.params;
    requireAccess(request, 'admin', { kind: 'org', org });
    const orgRow = await orgFor(org);
    const rows = await ctx.db.selectFrom('webhooks').selectAll().where('org_id', '=', orgRow.id).orderBy('id').execute();
    return { items: rows.map((row) => webhookJson(row, org)) };
  });

  app.get<{ Params: { org: string; id: string } }>('/orgs/:org/webhooks/:id', {
    schema: { tags: ['webhooks'], summary: 'Get a webhook', params: hookParams, response: { 200: { $ref: 'Webhook#' }, ...errorResponses } },
  }, async (request) => {
    requireAccess(request, 'admin', { kind: 'org', org: request.params.org });
    return webhookJson(await hookFor(request.params.org, request.params.id), request.params.org);
  });

  app.patch<{ Params: { org: string; id: string }; Body: WebhookBody }>('/orgs/:org/webhooks/:id', {
    schema: {
      tags: ['webhooks'],
      summary: 'Change a webhook',
      params: hookParams,
      body: { type: 'object', additionalProperties: false, minProperties: 1, properties: webhookBodyProperties },
      response: { 200: { $ref: 'Webhook#' }, ...errorResponses },
    },
  }, async (request) => {
    requireAccess(request, 'admin', { kind: 'org', org: request.params.org });
    await checkWebhook(ctx, request.body);
    const row = await hookFor(request.params.org, request.params.id);
    const { url, events, repos, secret, active } = request.body;
    const changes = {
      updated_at: new Date().toISOString(),
      ...(url !== undefined ? { url } : {}),
      ...(events !== undefined ? { events: JSON.stringify(events) } : {}),
      ...(repos !== undefined ? { repos: repos === null ? null : JSON.stringify(repos) } : {}),
      ...(active !== undefined ? { active: active ? 1 : 0 } : {}),
    };
    await ctx.events.change((trx) => trx.updateTable('webhooks').set({ ...changes, ...(secret !== undefined ? { secret: ctx.secrets.seal(secret, webhookSecretOwner(row.id)) } : {}) }).where('id', '=', row.id).execute(), () => [
      webhookEvent('webhook.updated', { ...row, ...changes }, request.params.org, request),
    ]);
    return webhookJson({ ...row, ...changes }, request.params.org);
  });

  app.delete<{ Params: { org: string; id: string } }>('/orgs/:org/webhooks/:id', {
    schema: { tags: ['webhooks'], summary: 'Delete a webhook and its delivery log', params: hookParams, response: { 204: { type: 'null' }, ...errorResponses } },
  }, async (request, reply) => {
    requireAccess(request, 'admin', { kind: 'org', org: request.params.org });
    const row = await hookFor(request.params.org, request.params.id);
    await ctx.events.change((trx) => trx.deleteFrom('webhooks').where('id', '=', row.id).execute(), () => [webhookEvent('webhook.deleted', row, request.params.org, request)]);
    return reply.code(204).send();
  });

  app.get<{ Params: { org: string; id: string }; Querystring: { limit: number; cursor?: string; status?: string } }>('/orgs/:org/webhooks/:id/deliveries', {
    schema: {
      tags: ['webhooks'],
      summary: 'The delivery log, newest first: status, attempts, response code, duration',
      params: hookParams,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, cursor: { type: 'string', maxLength: 100 }, status: { type: 'string', enum: ['pending', 'delivered', 'failed'] } },
      },
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: { $ref: 'WebhookDelivery#' } }, nextCursor: { type: ['string', 'null'] } } }, ...errorResponses },
    },
  }, async (request) => {
    requireAccess(request, 'admin', { kind: 'org', org: request.params.org });
    const hook = await hookFor(request.params.org, request.params.id);
    const { limit, cursor, status } = request.query;
    let query = ctx.db
      .selectFrom('webhook_deliveries')
      .innerJoin('events', 'events.commit_seq', 'webhook_deliveries.event_seq')
      .selectAll('webhook_deliveries')
      .select('events.type')
      .where('webhook_deliveries.webhook_id', '=', hook.id)
      .orderBy('webhook_deliveries.event_seq', 'desc')
      .limit(limit + 1);
    if (status !== undefined) query = query.where('webhook_deliveries.status', '=', status as 'pending');
    if (cursor !== undefined) {
      const before = Number(cursor);
      if (!Number.isSafeInteger(before)) throw new GroveError('invalid_request', 'cursor is not one this server issued');
      query = query.where('webhook_deliveries.event_seq', '<', before);
    }
    const rows = await query.execute();
    const items = rows.slice(0, limit);
    return { items: items.map(deliveryJson), nextCursor: rows.length > limit ? String(items[items.length - 1]!.event_seq) : null };
  });

  app.post<{ Params: { org: string; id: string; deliveryId: string } }>('/orgs/:org/webhooks/:id/deliveries/:deliveryId/redeliver', {
    schema: {
      tags: ['webhooks'],
      summary: 'Deliver again now (the event and its signature are made anew)',
      params: { type: 'object', required: ['org', 'id', 'deliveryId'], properties: { org: { type: 'string' }, id: { type: 'string' }, deliveryId: { type: 'string' } } },
      response: { 202: { type: 'object', properties: { id: { type: 'string' }, status: { type: 'string' } } }, ...errorResponses },
    },
  }, async (request, reply) => {
    requireAccess(request, 'admin', { kind: 'org', org: request.params.org });
    const hook = await hookFor(request.params.org, request.params.id);
    const result = await ctx.db
      .updateTable('webhook_deliveries')
      .set({ status: 'pending', next_attempt_at: new Date().toISOString(), created_at: new Date().toISOString() })
      .where('id', '=', request.params.deliveryId)
      .where('webhook_id', '=', hook.id)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw notFound(`delivery ${request.params.deliveryId}`);
    ctx.events.outbox.emit('queued');
    return reply.code(202).send({ id: request.params.deliveryId, status: 'pending' });
  });
}
