/**
 * Remote credentials: `POST/GET /api/v1/orgs/{org}/credentials`, `GET/DELETE …/credentials/{id}`,
 * `PUT …/credentials/{id}/secret` (rotate). Org administration. The secret is write-only:
 * sealed at rest (secrets/secret-store.ts), never answered, logged or put in a URL or
 * argument; a fingerprint (8 hex digits of its SHA-256) tells secrets apart. Rotating a
 * credential resumes the upstreams its rejection paused.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { findOrgByName } from '../db/orgs.ts';
import type { CredentialsTable } from '../db/schema.ts';
import { isUniqueViolation } from '../db/database.ts';
import { GroveError, notFound } from '../errors.ts';
import { actorOf, type NewEvent } from '../events/types.ts';
import type { AppContext } from '../http/context.ts';
import { checkName } from '../names.ts';
import { credentialSecretOwner } from '../secrets/secret-store.ts';
import { credentialJson, newId } from '../sync/upstream-store.ts';
import { principalOf, requireAccess } from './principal.ts';
import { errorResponses } from './schemas.ts';

const credentialSchema = {
  $id: 'Credential',
  type: 'object',
  required: ['id', 'name', 'kind', 'username', 'fingerprint', 'status', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    kind: { type: 'string', enum: ['token', 'basic'], description: 'token: an access token sent as the Basic password (user x-access-token unless given); basic: a user name and password' },
    username: { type: 'string' },
    fingerprint: { type: 'string', description: 'The first 8 hex digits of the SHA-256 of the secret' },
    status: { type: 'string', enum: ['ok', 'rejected'], description: 'rejected: a remote refused it; its upstreams are paused until it is rotated' },
    lastError: { type: ['string', 'null'] },
    lastUsedAt: { type: ['string', 'null'] },
    expiresAt: { type: ['string', 'null'], format: 'date-time' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

const orgParams = { type: 'object', required: ['org'], properties: { org: { type: 'string' } } } as const;
const credentialParams = { type: 'object', required: ['org', 'id'], properties: { org: { type: 'string' }, id: { type: 'string', maxLength: 100 } } } as const;
const secretProperty = { type: 'string', minLength: 1, maxLength: 4096, description: 'The token or password (write-only)' } as const;

interface CreateBody {
  name: string;
  kind: 'token' | 'basic';
  username?: string;
  secret: string;
  expiresAt?: string | null;
}

function fingerprint(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 8);
}

function checkSecret(secret: string): void {
  // A header value cannot carry line breaks (and git would refuse it): say so, do not store it.
  if (/[\r\n\0]/.test(secret)) throw new GroveError('invalid_request', 'secret must not contain line breaks or NUL');
}

function credentialEvent(type: 'credential.created' | 'credential.rotated' | 'credential.deleted', row: CredentialsTable, org: string, request: FastifyRequest): NewEvent {
  return { type, org, repo: null, actor: actorOf(principalOf(request)), payload: credentialJson(row) };
}

export async function credentialRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.addSchema(credentialSchema);

  async function orgFor(org: string) {
    const row = await findOrgByName(ctx.db, org);
    if (!row) throw notFound(`org ${org}`);
    return row;
  }

  async function credentialFor(org: string, id: string) {
    const orgRow = await orgFor(org);
    const row = await ctx.db.selectFrom('credentials').selectAll().where('id', '=', id).where('org_id', '=', orgRow.id).executeTakeFirst();
    if (!row) throw notFound(`credential ${id}`);
    return row;
  }

  app.post<{ Params: { org: string }; Body: CreateBody }>('/orgs/:org/credentials', {
    schema: {
      tags: ['remote sync'],
      summary: 'Store a credential for reaching remotes (the secret is write-only and sealed at rest)',
      params: orgParams,
      body: {
        type: 'object',
        required: ['name', 'kind', 'secret'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', maxLength: 100 },
          kind: { type: 'string', enum: ['token', 'basic'] },
          username: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^:\\r\\n\\x00]+$', description: 'Basic user name; for kind token defaults to x-access-token (what GitHub expects)' },
          secret: secretProperty,
          expiresAt: { type: ['string', 'null'], format: 'date-time', description: 'When the secret expires, if it does (shown, not enforced)' },
        },
      },
      response: { 201: { $ref: 'Credential#' }, ...errorResponses },
    },
  }, async (request, reply) => {
    const { org } = request.params;
    requireAccess(request, 'admin', { kind: 'org', org });
    const body = request.body;
    const nameProblem = checkName('credential', body.name);
    if (nameProblem) throw new GroveError('invalid_name', nameProblem);
    if (body.kind === 'basic' && body.username === undefined) throw new GroveError('invalid_request', 'a basic credential needs a username');
    checkSecret(body.secret);
    const orgRow = await orgFor(org);
    const now = new Date().toISOString();
    const row: CredentialsTable = {
      id: newId('cred'),
      org_id: orgRow.id,
      name: body.name,
      kind: body.kind,
      username: body.username ?? 'x-access-token',
      secret: '', // sealed inside the transaction below
      fingerprint: fingerprint(body.secret),
      status: 'ok',
      last_error: null,
      last_used_at: null,
      expires_at: body.expiresAt ?? null,
      created_at: now,
      updated_at: now,
    };
    try {
      await ctx.events.change(
        (trx) => trx.insertInto('credentials').values({ ...row, secret: ctx.secrets.seal(body.secret, credentialSecretOwner(row.id)) }).execute(),
        () => [credentialEvent('credential.created', row, org, request)],
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw new GroveError('already_exists', `org ${org} already has a credential named ${body.name}`);
      throw error;
    }
    return reply.code(201).send(credentialJson(row));
  });

  app.get<{ Params: { org: string } }>('/orgs/:org/credentials', {
    schema: { tags: ['remote sync'], summary: "List an org's credentials (never their secrets)", params: orgParams, response: { 200: { type: 'object', properties: { items: { type: 'array', items: { $ref: 'Credential#' } } } }, ...errorResponses } },
  }, async (request) => {
    requireAccess(request, 'admin', { kind: 'org', org: request.params.org });
    const orgRow = await orgFor(request.params.org);
    const rows = await ctx.db.selectFrom('credentials').selectAll().where('org_id', '=', orgRow.id).orderBy('name').execute();
    return { items: rows.map(credentialJson) };
  });

  app.get<{ Params: { org: string; id: string } }>('/orgs/:org/credentials/:id', {
    schema: { tags: ['remote sync'], summary: 'Get a credential (never its secret)', params: credentialParams, response: { 200: { $ref: 'Credential#' }, ...errorResponses } },
  }, async (request) => {
    requireAccess(request, 'admin', { kind: 'org', org: request.params.org });
    return credentialJson(await credentialFor(request.params.org, request.params.id));
  });

  app.put<{ Params: { org: string; id: string }; Body: { secret: string; expiresAt?: string | null } }>('/orgs/:org/credentials/:id/secret', {
    schema: {
      tags: ['remote sync'],
      summary: 'Rotate the secret; upstreams paused because the old one was rejected resume',
      params: credentialParams,
      body: { type: 'object', required: ['secret'], additionalProperties: false, properties: { secret: secretProperty, expiresAt: { type: ['string', 'null'], format: 'date-time' } } },
      response: { 200: { $ref: 'Credential#' }, ...errorResponses },
    },
  }, async (request) => {
    const { org, id } = request.params;
    requireAccess(request, 'admin', { kind: 'org', org });
    checkSecret(request.body.secret);
    const row = await credentialFor(org, id);
    const now = new Date().toISOString();
    const changes = {
      fingerprint: fingerprint(request.body.secret),
      status: 'ok' as const,
      last_error: null,
      updated_at: now,
      ...(request.body.expiresAt !== undefined ? { expires_at: request.body.expiresAt } : {}),
    };
    await ctx.events.change(
      (trx) => trx.updateTable('credentials').set({ ...changes, secret: ctx.secrets.seal(request.body.secret, credentialSecretOwner(row.id)) }).where('id', '=', row.id).execute(),
      () => [credentialEvent('credential.rotated', { ...row, ...changes }, org, request)],
    );
    await ctx.sync.resumeCredential(row.id);
    return credentialJson({ ...row, ...changes });
  });

  app.delete<{ Params: { org: string; id: string } }>('/orgs/:org/credentials/:id', {
    schema: { tags: ['remote sync'], summary: 'Delete a credential no upstream uses', params: credentialParams, response: { 204: { type: 'null' }, ...errorResponses } },
  }, async (request, reply) => {
    const { org, id } = request.params;
    requireAccess(request, 'admin', { kind: 'org', org });
    const row = await credentialFor(org, id);
    const users = await ctx.db
      .selectFrom('upstreams')
      .innerJoin('repos', 'repos.id', 'upstreams.repo_id')
      .select(['repos.name as repo', 'upstreams.name as upstream'])
      .where('upstreams.credential_id', '=', row.id)
      .execute();
    if (users.length > 0) {
      throw new GroveError('in_use', `credential ${row.name} is used by ${users.length} upstream${users.length === 1 ? '' : 's'}: change or delete ${users.length === 1 ? 'it' : 'them'} first`, { upstreams: users.map((u) => `${org}/${u.repo}:${u.upstream}`) });
    }
    await ctx.events.change((trx) => trx.deleteFrom('credentials').where('id', '=', row.id).execute(), () => [credentialEvent('credential.deleted', row, org, request)]);
    return reply.code(204).send();
  });
}
