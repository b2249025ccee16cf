/**
 * API keys: `POST/GET /api/v1/keys`, `GET/DELETE /api/v1/keys/{id}`. The token is
 * returned once, at creation; only its SHA-256 is stored. A key may create keys only
 * within its own resources, scope and expiry (checkMint).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { generateToken, hashToken } from '../auth/admin-token.ts';
import { checkMint, isScope, parseGrants } from '../auth/grants.ts';
import type { Grant, Principal, Scope } from '../auth/principal.ts';
import { MAX_KEY_TTL_SECONDS, parseTtl } from '../auth/ttl.ts';
import { bindGrants, parseBoundGrants, resolveGrants } from '../db/grant-targets.ts';
import { findKeyById, insertKey, listKeys, revokeKey, type ApiKeyRow } from '../db/keys.ts';
import { GroveError, notFound } from '../errors.ts';
import type { AppContext } from '../http/context.ts';
import { principalOf } from './principal.ts';
import { actorOf, type NewEvent } from '../events/types.ts';
import { errorResponses } from './schemas.ts';

const LABEL_KEY = /^[A-Za-z0-9._-]{1,63}$/;
const MAX_LABELS = 20;

interface CreateKeyBody {
  scope: Scope;
  resources: unknown;
  ttl?: string | number;
  name?: string;
  labels?: Record<string, string>;
}

let lastIdTime = 0;

/**
 * Ids sort by creation time (a strictly increasing millisecond clock within the
 * process), so listing in id order is listing in creation order.
 */
function newKeyId(): string {
  lastIdTime = Math.max(Date.now(), lastIdTime + 1);
  return `key_${lastIdTime.toString(36).padStart(9, '0')}${randomBytes(6).toString('hex')}`;
}

/** A key as the API shows it: its grants under their targets' current names, deleted ones marked. */
async function keyJson(ctx: AppContext, row: ApiKeyRow) {
  const resolved = await resolveGrants(ctx.db, parseBoundGrants(row.resources) ?? []);
  return {
    id: row.id,
    scope: row.scope as Scope,
    resources: resolved.map(({ grant, exists }) => (exists ? grant : { ...grant, deleted: true })),
    name: row.name,
    labels: JSON.parse(row.labels) as Record<string, string>,
    createdBy: row.created_by,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

function checkLabels(labels: Record<string, string>): void {
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) throw new GroveError('invalid_request', `at most ${MAX_LABELS} labels`);
  for (const [key, value] of entries) {
    if (!LABEL_KEY.test(key)) throw new GroveError('invalid_request', `label name ${JSON.stringify(key)} must match ${LABEL_KEY.source}`);
    if (value.length > 200 || /[\u0000-\u001f]/.test(value)) throw new GroveError('invalid_request', `label ${key} must be at most 200 printable characters`);
  }
}

/** One event per org the key reaches (events belong to an org). */
function keyEvents(type: 'key.created' | 'key.revoked', row: ApiKeyRow, principal: Principal): NewEvent[] {
  const orgs = [...new Set((JSON.parse(row.resources) as Grant[]).map((g) => g.org))];
  return orgs.map((org) => ({ type, org, repo: null, actor: actorOf(principal), payload: { keyId: row.id, name: row.name, scope: row.scope } }));
}

/** Root sees every key; an admin key sees the keys it created and itself. */
function canSee(principal: Principal, row: ApiKeyRow): boolean {
  if (principal.kind === 'root') return true;
  if (principal.kind !== 'key') return false;
  return row.id === principal.id || (principal.scope === 'admin' && row.created_by === principal.id);
}

const keySchema = {
  $id: 'ApiKey',
  type: 'object',
  required: ['id', 'scope', 'resources', 'name', 'labels', 'createdBy', 'createdAt', 'expiresAt', 'revokedAt', 'lastUsedAt'],
  properties: {
    id: { type: 'string' },
    scope: { type: 'string', enum: ['read', 'write', 'admin'] },
    resources: { type: 'array', items: { $ref: 'Grant#' } },
    name: { type: ['string', 'null'] },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    createdBy: { type: 'string', description: '"root" or the id of the key that created this one' },
    createdAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: ['string', 'null'], format: 'date-time' },
    revokedAt: { type: ['string', 'null'], format: 'date-time' },
    lastUsedAt: { type: ['string', 'null'], format: 'date-time', description: 'Updated at most every 30 s' },
  },
} as const;

const grantSchema = {
  $id: 'Grant',
  type: 'object',
  required: ['org'],
  properties: {
    org: { type: 'string' },
    repo: { type: 'string', description: 'One repository; omitted = every repository of the org' },
    branches: { type: 'array', items: { type: 'string' }, description: 'Branch globs (agent-7/*, feature/**) a write key may move; omitted = every ref' },
    deleted: {
      type: 'boolean',
      readOnly: true,
      description: 'In answers only: the org or repository this grant was bound to has been deleted, so it reaches nothing (not even a new one of the same name)',
    },
  },
} as const;

export async function keyRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.addSchema(grantSchema);
  app.addSchema(keySchema);

  app.post<{ Body: CreateKeyBody }>('/keys', {
    schema: {
      tags: ['keys'],
      summary: 'Create an API key (the token is shown only in this response)',
      body: {
        type: 'object',
        required: ['scope', 'resources'],
        additionalProperties: false,
        properties: {
          scope: { type: 'string', enum: ['read', 'write', 'admin'] },
          resources: { type: 'array', items: { $ref: 'Grant#' } },
          ttl: { type: ['string', 'integer'], description: '"90s", "30m", "1h", "7d" or seconds; omitted = the creating key\'s expiry (root: never)' },
          name: { type: 'string', maxLength: 100 },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
        },
      },
      response: {
        201: { allOf: [{ $ref: 'ApiKey#' }, { type: 'object', required: ['token'], properties: { token: { type: 'string', description: 'grove_…; shown once' } } }] },
        ...errorResponses,
      },
    },
  }, async (request, reply) => {
    const principal = principalOf(request);
    const { scope, resources, ttl, name = null, labels = {} } = request.body;
    if (!isScope(scope)) throw new GroveError('invalid_request', 'scope must be read, write or admin');
    const parsed = parseGrants(resources);
    if ('error' in parsed) throw new GroveError('invalid_request', parsed.error);
    checkLabels(labels);
    const now = Date.now();
    let expiresAt: number | null = principal.kind === 'root' ? null : principal.expiresAt;
    if (ttl !== undefined) {
      const seconds = parseTtl(ttl);
      if (seconds === null) throw new GroveError('invalid_request', 'ttl must be like "90s", "30m", "1h", "7d" or a positive number of seconds');
      if (seconds > MAX_KEY_TTL_SECONDS) throw new GroveError('invalid_request', `ttl must be at most ${MAX_KEY_TTL_SECONDS / 86400} days`);
      expiresAt = now + seconds * 1000;
    }
    request.auditOrg = parsed.grants[0]!.org;
    const denial = checkMint(principal, { scope, resources: parsed.grants, expiresAt });
    if (denial !== null) throw new GroveError('forbidden', denial);
    // Bound to ids now, so deleting and recreating a name never hands this key to the new owner.
    const binding = await bindGrants(ctx.db, parsed.grants);
    if ('missing' in binding) throw notFound(binding.missing);
    const token = generateToken();
    const row: ApiKeyRow = {
      id: newKeyId(),
      token_hash: hashToken(token).toString('hex'),
      scope,
      resources: JSON.stringify(binding.bound),
      name,
      labels: JSON.stringify(labels),
      created_by: principal.kind === 'key' ? principal.id : 'root',
      created_at: new Date(now).toISOString(),
      expires_at: expiresAt === null ? null : new Date(expiresAt).toISOString(),
      revoked_at: null,
      last_used_at: null,
    };
    const tags = [...new Set(parsed.grants.map((g) => `org:${g.org}`)), ...Object.entries(labels).map(([k, v]) => `label:${k}=${v}`)];
    await ctx.events.change((trx) => insertKey(trx, row, tags), () => keyEvents('key.created', row, principal));
    return reply.code(201).send({ ...(await keyJson(ctx, row)), token });
  });

  app.get<{ Querystring: { org?: string; label?: string; limit: number; cursor?: string } }>('/keys', {
    schema: {
      tags: ['keys'],
      summary: 'List API keys (never their tokens): root sees all, an admin key the keys it created',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          org: { type: 'string', description: 'Only keys with a resource in this org' },
          label: { type: 'string', description: 'Only keys with this label, as name:value' },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          cursor: { type: 'string', maxLength: 200 },
        },
      },
      response: { 200: { type: 'object', required: ['items', 'nextCursor'], properties: { items: { type: 'array', items: { $ref: 'ApiKey#' } }, nextCursor: { type: ['string', 'null'] } } }, ...errorResponses },
    },
  }, async (request) => {
    const principal = principalOf(request);
    if (principal.kind === 'signed' || (principal.kind === 'key' && principal.scope !== 'admin')) {
      throw new GroveError('forbidden', 'only the root token and admin keys can list keys');
    }
    const { org, label, limit, cursor } = request.query;
    const tags: string[] = [];
    if (org !== undefined) tags.push(`org:${org}`);
    if (label !== undefined) {
      const colon = label.indexOf(':');
      if (colon <= 0) throw new GroveError('invalid_request', 'label filter must be name:value');
      tags.push(`label:${label.slice(0, colon)}=${label.slice(colon + 1)}`);
    }
    const after = cursor === undefined ? null : Buffer.from(cursor, 'base64url').toString('utf8');
    if (after !== null && !/^key_[0-9a-z]+$/.test(after)) throw new GroveError('invalid_request', 'cursor is not one this server issued');
    const rows = await listKeys(ctx.db, { ...(principal.kind === 'key' ? { createdBy: principal.id } : {}), tags, after, limit: limit + 1 });
    const items = rows.slice(0, limit);
    return {
      items: await Promise.all(items.map((row) => keyJson(ctx, row))),
      nextCursor: rows.length > limit ? Buffer.from(items[items.length - 1]!.id, 'utf8').toString('base64url') : null,
    };
  });

  const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } } as const;

  app.get<{ Params: { id: string } }>('/keys/:id', {
    schema: { tags: ['keys'], summary: 'Get an API key (never its token)', params: idParams, response: { 200: { $ref: 'ApiKey#' }, ...errorResponses } },
  }, async (request) => {
    const row = await findKeyById(ctx.db, request.params.id);
    if (!row || !canSee(principalOf(request), row)) throw notFound(`key ${request.params.id}`);
    return keyJson(ctx, row);
  });

  app.delete<{ Params: { id: string } }>('/keys/:id', {
    schema: { tags: ['keys'], summary: 'Revoke an API key; effective on the next request', params: idParams, response: { 204: { type: 'null' }, ...errorResponses } },
  }, async (request, reply) => {
    const row = await findKeyById(ctx.db, request.params.id);
    if (!row || !canSee(principalOf(request), row)) throw notFound(`key ${request.params.id}`);
    request.auditOrg = (JSON.parse(row.resources) as Grant[])[0]?.org;
    await ctx.events.change((trx) => revokeKey(trx, row.id, new Date().toISOString()), (revoked) => (revoked ? keyEvents('key.revoked', row, principalOf(request)) : []));
    return reply.code(204).send();
  });
}
