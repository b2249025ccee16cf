/** The audit log: `GET /api/v1/orgs/{org}/audit?key=&repo=&action=&since=&until=&limit=&cursor=` (org admin). */
import type { FastifyInstance } from 'fastify';
import { GroveError } from '../errors.ts';
import type { AppContext } from '../http/context.ts';
import { requireAccess } from './principal.ts';
import { errorResponses } from './schemas.ts';

const auditEntrySchema = {
  $id: 'AuditEntry',
  type: 'object',
  properties: {
    id: { type: 'integer' },
    time: { type: 'string', format: 'date-time' },
    org: { type: ['string', 'null'] },
    repo: { type: ['string', 'null'] },
    action: { type: 'string', description: 'git.fetch, git.push, git.connect (refusals), or "<METHOD> <route>" for API mutations' },
    keyId: { type: ['string', 'null'], description: '"root", a key id, or signed:<org>:<jti>' },
    ip: { type: ['string', 'null'] },
    userAgent: { type: ['string', 'null'] },
    outcome: { type: 'string', enum: ['ok', 'denied', 'failed'] },
    status: { type: 'integer' },
    bytesIn: { type: 'integer' },
    bytesOut: { type: 'integer' },
    durationMs: { type: 'integer' },
  },
} as const;

interface AuditQuery {
  key?: string;
  repo?: string;
  action?: string;
  since?: string;
  until?: string;
  limit: number;
  cursor?: string;
}

export async function auditRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.addSchema(auditEntrySchema);
  app.get<{ Params: { org: string }; Querystring: AuditQuery }>('/orgs/:org/audit', {
    schema: {
      tags: ['audit'],
      summary: "An org's audit log, newest first: git transfers and API mutations, allowed and denied",
      params: { type: 'object', required: ['org'], properties: { org: { type: 'string' } } },
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          key: { type: 'string' },
          repo: { type: 'string' },
          action: { type: 'string' },
          since: { type: 'string', format: 'date-time' },
          until: { type: 'string', format: 'date-time' },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          cursor: { type: 'string', maxLength: 40 },
        },
      },
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: { $ref: 'AuditEntry#' } }, nextCursor: { type: ['string', 'null'] } } }, ...errorResponses },
    },
  }, async (request) => {
    const { org } = request.params;
    requireAccess(request, 'admin', { kind: 'org', org });
    await ctx.audit.flush(); // read your writes: entries are written in batches
    const { key, repo, action, since, until, limit, cursor } = request.query;
    let query = ctx.db.selectFrom('audit_log').selectAll().where('org', '=', org).orderBy('seq', 'desc').limit(limit + 1);
    if (key !== undefined) query = query.where('key_id', '=', key);
    if (repo !== undefined) query = query.where('repo', '=', repo);
    if (action !== undefined) query = query.where('action', '=', action);
    if (since !== undefined) query = query.where('created_at', '>=', new Date(since).toISOString());
    if (until !== undefined) query = query.where('created_at', '<', new Date(until).toISOString());
    if (cursor !== undefined) {
      const before = Number(cursor);
      if (!Number.isSafeInteger(before)) throw new GroveError('invalid_request', 'cursor is not one this server issued');
      query = query.where('seq', '<', before);
    }
    const rows = await query.execute();
    const items = rows.slice(0, limit);
    return {
      items: items.map((r) => ({
        id: r.seq,
        time: r.created_at,
        org: r.org,
        repo: r.repo,
        action: r.action,
        keyId: r.key_id,
        ip: r.ip,
        userAgent: r.user_agent,
        outcome: r.outcome,
        status: r.status,
        bytesIn: r.bytes_in,
        bytesOut: r.bytes_out,
        durationMs: r.duration_ms,
      })),
      nextCursor: rows.length > limit ? String(items[items.length - 1]!.seq) : null,
    };
  });
}
