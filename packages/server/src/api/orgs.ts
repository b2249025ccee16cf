/** Orgs: `POST/GET /api/v1/orgs`, `GET/DELETE /api/v1/orgs/{org}`. */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { isUniqueViolation } from '../db/database.ts';
import { deleteEmptyOrg, findOrgByName, insertOrg, listOrgs, type OrgRow } from '../db/orgs.ts';
import { GroveError, notFound } from '../errors.ts';
import { actorOf } from '../events/types.ts';
import { checkName } from '../names.ts';
import type { AppContext } from '../http/context.ts';
import { decodeCursor, page } from './pagination.ts';
import { principalOf, requireAccess } from './principal.ts';
import { errorResponses, pageOf, paginationQuery } from './schemas.ts';

export function orgJson(row: OrgRow) {
  return { id: row.id, name: row.name, createdAt: row.created_at };
}

const orgParams = { type: 'object', required: ['org'], properties: { org: { type: 'string' } } } as const;

export async function orgRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.post<{ Body: { name: string } }>('/orgs', {
    schema: {
      tags: ['orgs'],
      summary: 'Create an organization',
      body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string' } } },
      response: { 201: { $ref: 'Org#' }, ...errorResponses },
    },
  }, async (request, reply) => {
    requireAccess(request, 'admin', { kind: 'server' });
    const { name } = request.body;
    const problem = checkName('org', name);
    if (problem) throw new GroveError('invalid_name', problem);
    const row: OrgRow = { id: randomUUID().replaceAll('-', ''), name, created_at: new Date().toISOString() };
    try {
      const actor = actorOf(principalOf(request));
      await ctx.events.change((trx) => insertOrg(ctx.db, row, trx), () => [{ type: 'org.created', org: name, repo: null, actor, payload: { id: row.id } }]);
    } catch (error) {
      if (isUniqueViolation(error)) throw new GroveError('already_exists', `org ${name} already exists`);
      throw error;
    }
    return reply.code(201).send(orgJson(row));
  });

  app.get<{ Querystring: { limit: number; cursor?: string } }>('/orgs', {
    schema: {
      tags: ['orgs'],
      summary: 'List organizations (paginated by name); a key sees the orgs of its resources',
      querystring: paginationQuery,
      response: { 200: pageOf('Org#'), ...errorResponses },
    },
  }, async (request) => {
    const principal = principalOf(request);
    const { limit, cursor } = request.query;
    const visible = principal.kind === 'root' ? undefined : [...new Set(principal.resources.map((g) => g.org))];
    const rows = await listOrgs(ctx.db, decodeCursor(cursor), limit + 1, visible);
    return page(rows, limit, orgJson);
  });

  app.get<{ Params: { org: string } }>('/orgs/:org', {
    schema: { tags: ['orgs'], summary: 'Get an organization', params: orgParams, response: { 200: { $ref: 'Org#' }, ...errorResponses } },
  }, async (request) => {
    requireAccess(request, 'read', { kind: 'org', org: request.params.org });
    const row = await findOrgByName(ctx.db, request.params.org);
    if (!row) throw notFound(`org ${request.params.org}`);
    return orgJson(row);
  });

  app.delete<{ Params: { org: string } }>('/orgs/:org', {
    schema: {
      tags: ['orgs'],
      summary: 'Delete an organization that has no repositories',
      params: orgParams,
      response: { 204: { type: 'null' }, ...errorResponses },
    },
  }, async (request, reply) => {
    requireAccess(request, 'admin', { kind: 'org', org: request.params.org });
    const row = await findOrgByName(ctx.db, request.params.org);
    if (!row) throw notFound(`org ${request.params.org}`);
    const actor = actorOf(principalOf(request));
    const deleted = await ctx.events.change(
      (trx) => deleteEmptyOrg(ctx.db, trx, row, new Date().toISOString()),
      (done) => (done ? [{ type: 'org.deleted', org: row.name, repo: null, actor, payload: { id: row.id } }] : []),
    );
    if (!deleted) {
      throw new GroveError('org_not_empty', `org ${row.name} still has repositories; delete them first`);
    }
    return reply.code(204).send();
  });
}
