/** Repo ref policies: `GET/PUT /api/v1/repos/{org}/{repo}/policies`. */
import type { FastifyInstance } from 'fastify';
import { parseRefRules } from '../auth/ref-rules.ts';
import { readRefRules, writePolicyRules } from '../db/policies.ts';
import { findRepo } from '../db/repos.ts';
import { GroveError, notFound } from '../errors.ts';
import { actorOf } from '../events/types.ts';
import type { AppContext } from '../http/context.ts';
import { principalOf, requireAccess } from './principal.ts';
import { errorResponses } from './schemas.ts';

const policySchema = {
  $id: 'RefPolicy',
  type: 'object',
  required: ['rules'],
  properties: {
    rules: {
      type: 'array',
      items: {
        type: 'object',
        required: ['pattern'],
        properties: {
          pattern: { type: 'string', description: 'Branch glob, as in key branches (main, release/*, feature/**)' },
          protected: { type: 'boolean', description: 'Only admin keys may move or delete matching branches' },
          noForcePush: { type: 'boolean', description: 'Non-fast-forward updates are refused (detected by ancestry)' },
          noDelete: { type: 'boolean', description: 'Deletion is refused' },
        },
      },
    },
  },
} as const;

const repoParams = { type: 'object', required: ['org', 'repo'], properties: { org: { type: 'string' }, repo: { type: 'string' } } } as const;

export async function policyRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.addSchema(policySchema);

  app.get<{ Params: { org: string; repo: string } }>('/repos/:org/:repo/policies', {
    schema: { tags: ['policies'], summary: "Get a repository's ref policy rules", params: repoParams, response: { 200: { $ref: 'RefPolicy#' }, ...errorResponses } },
  }, async (request) => {
    const { org, repo } = request.params;
    requireAccess(request, 'read', { kind: 'repo', org, repo });
    const row = await findRepo(ctx.db, org, repo);
    if (!row) throw notFound(`repository ${org}/${repo}`);
    return { rules: await readRefRules(ctx.db, row.id) };
  });

  app.put<{ Params: { org: string; repo: string }; Body: { rules: unknown } }>('/repos/:org/:repo/policies', {
    schema: {
      tags: ['policies'],
      summary: "Replace a repository's ref policy rules (admin)",
      params: repoParams,
      body: { type: 'object', required: ['rules'], additionalProperties: false, properties: { rules: { type: 'array' } } },
      response: { 200: { $ref: 'RefPolicy#' }, ...errorResponses },
    },
  }, async (request) => {
    const { org, repo } = request.params;
    requireAccess(request, 'admin', { kind: 'repo', org, repo });
    const row = await findRepo(ctx.db, org, repo);
    if (!row) throw notFound(`repository ${org}/${repo}`);
    const parsed = parseRefRules(request.body.rules);
    if ('error' in parsed) throw new GroveError('invalid_request', parsed.error);
    await ctx.events.change((trx) => writePolicyRules(trx, row.id, JSON.stringify(parsed.rules), new Date().toISOString()), () => [
      { type: 'policy.updated', org, repo, repoId: row.id, actor: actorOf(principalOf(request)), payload: { rules: parsed.rules } },
    ]);
    return { rules: parsed.rules };
  });
}
