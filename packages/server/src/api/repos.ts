/**
 * Repos: `POST/GET /api/v1/orgs/{org}/repos`, `GET/PATCH/DELETE /api/v1/repos/{org}/{repo}`.
 * A repo is a row plus a bare repository named by the row's id; creation writes the
 * row first and removes it again if the repository cannot be made.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isUniqueViolation } from '../db/database.ts';
import { findOrgByName } from '../db/orgs.ts';
import { findRepo, listRepos, updateRepo, type RepoRow } from '../db/repos.ts';
import { createRepository, deleteRepository } from '../services/repositories.ts';
import { MAX_KEY_TTL_SECONDS, parseTtl } from '../auth/ttl.ts';
import { GroveError, notFound } from '../errors.ts';
import { checkWritableRefName } from '../git/ref-name.ts';
import { checkName } from '../names.ts';
import type { AppContext } from '../http/context.ts';
import { decodeCursor, page } from './pagination.ts';
import { principalOf, requireAccess } from './principal.ts';
import type { Principal } from '../auth/principal.ts';
import { actorOf } from '../events/types.ts';
import { errorResponses, pageOf, paginationQuery, repoSchema } from './schemas.ts';
import { checkRemoteUrl } from '../repo/remote-env.ts';
import { OutboundRefusedError } from '../outbound/guarded-fetch.ts';
import { importJson } from '../services/imports.ts';
import { webhookPath } from './upstreams.ts';

const MAX_DESCRIPTION = 1000;

/** An import's URL, destination and credential, checked before anything is made. */
async function checkImport(ctx: AppContext, orgId: string, spec: { url: string; credentialId?: string | null }): Promise<void> {
  const problem = checkRemoteUrl(spec.url, { allowHttp: ctx.config.sync.allowInsecureRemotes });
  if (problem !== null) throw new GroveError('invalid_request', `import.${problem}`);
  if (spec.credentialId != null) {
    const credential = await ctx.db.selectFrom('credentials').select('id').where('id', '=', spec.credentialId).where('org_id', '=', orgId).executeTakeFirst();
    if (credential === undefined) throw new GroveError('unprocessable', `import.credentialId: no credential ${spec.credentialId} in this org`);
  }
  try {
    await ctx.outbound.pin(new URL(spec.url).hostname);
  } catch (error) {
    if (error instanceof OutboundRefusedError) throw new GroveError('unprocessable', `import.url: ${error.message}`);
    if ((error as NodeJS.ErrnoException).code === 'ENOTFOUND') throw new GroveError('remote_unreachable', `import.url: ${new URL(spec.url).hostname} does not resolve`);
    throw error;
  }
}

function checkBranch(branch: string): void {
  if (branch === '') throw new GroveError('invalid_name', 'defaultBranch must not be empty');
  const problem = checkWritableRefName(`refs/heads/${branch}`);
  if (problem) throw new GroveError('invalid_name', `defaultBranch ${JSON.stringify(branch)} is not a valid branch name: ${problem.replace(/^funny refname \(?|\)$/g, '') || 'invalid'}`);
}

function baseUrl(ctx: AppContext, request: FastifyRequest): string {
  return ctx.config.publicUrl ?? `${request.protocol}://${request.host}`;
}

function repoJson(row: RepoRow, org: string, base: string) {
  return {
    id: row.id,
    org,
    name: row.name,
    defaultBranch: row.default_branch,
    description: row.description,
    cloneUrl: `${base}/${org}/${row.name}.git`,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    forkOf: row.fork_of,
    expiresAt: row.expires_at,
  };
}

/** undefined = every repo of the org; otherwise only the repos the principal's grants name. */
function visibleRepos(principal: Principal, org: string): string[] | undefined {
  if (principal.kind === 'root') return undefined;
  const grants = principal.resources.filter((g) => g.org === org);
  if (grants.some((g) => g.repo === undefined)) return undefined;
  return [...new Set(grants.map((g) => g.repo!))];
}

const importSchema = {
  $id: 'RepoImport',
  type: 'object',
  required: ['id', 'repo', 'url', 'mirror', 'status', 'progress', 'refs', 'error', 'createdAt', 'finishedAt'],
  properties: {
    id: { type: 'string' },
    repo: { type: 'string' },
    url: { type: 'string' },
    mirror: { type: 'boolean' },
    status: { type: 'string', enum: ['importing', 'succeeded', 'failed'] },
    progress: { type: 'integer', minimum: 0, maximum: 100 },
    refs: { type: 'integer', description: 'Branches and tags imported' },
    error: { type: ['object', 'null'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
    webhook: { type: 'object', description: "A mirror's webhook (only in the answer that started it)", properties: { url: { type: 'string' }, secret: { type: 'string' } } },
    createdAt: { type: 'string' },
    finishedAt: { type: ['string', 'null'] },
  },
} as const;

const repoParams = { type: 'object', required: ['org', 'repo'], properties: { org: { type: 'string' }, repo: { type: 'string' } } } as const;

interface CreateRepoBody {
  name: string;
  defaultBranch?: string;
  description?: string;
  from?: string;
  snapshot?: boolean;
  ttl?: string | number;
  import?: { url: string; credentialId?: string | null; mirror?: boolean };
}

interface UpdateRepoBody {
  name?: string;
  defaultBranch?: string;
  description?: string;
}

export async function repoRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.post<{ Params: { org: string }; Body: CreateRepoBody }>('/orgs/:org/repos', {
    schema: {
      tags: ['repos'],
      summary: 'Create a repository: empty, a fork (`from`), a snapshot (`from` + `snapshot`), optionally ephemeral (`ttl`)',
      params: { type: 'object', required: ['org'], properties: { org: { type: 'string' } } },
      body: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          name: { type: 'string' },
          defaultBranch: { type: 'string', description: 'Branch HEAD points at (default main, or the source\'s for a fork)' },
          description: { type: 'string', maxLength: MAX_DESCRIPTION },
          from: { type: 'string', description: 'org/repo to fork: instant, shares objects; same org only' },
          snapshot: { type: 'boolean', description: 'With from: one root commit holding the source\'s tree, no history' },
          ttl: { type: ['string', 'integer'], description: 'Delete the repository after 90s, 30m, 1h, 7d or N seconds' },
          import: {
            type: 'object',
            required: ['url'],
            additionalProperties: false,
            description: 'Import a remote repository with its whole history: answered 202 at once, the repository is importing until it is done (GET /orgs/{org}/imports/{id})',
            properties: {
              url: { type: 'string', maxLength: 2000, description: 'https URL of the remote repository, without credentials' },
              credentialId: { type: ['string', 'null'], maxLength: 100 },
              mirror: { type: 'boolean', default: false, description: 'Keep following it as a read-only mirror (upstream origin)' },
            },
          },
        },
      },
      response: {
        201: { $ref: 'Repo#' },
        202: { type: 'object', description: 'An import was started', properties: { ...repoSchema.properties, import: { $ref: 'RepoImport#' } } },
        ...errorResponses,
        422: { $ref: 'Error#' },
      },
    },
  }, async (request, reply) => {
    const { org } = request.params;
    const { name, defaultBranch, description = '', from, snapshot = false, ttl } = request.body;
    requireAccess(request, 'admin', { kind: 'org', org });
    const problem = checkName('repo', name);
    if (problem) throw new GroveError('invalid_name', problem);
    if (defaultBranch !== undefined) checkBranch(defaultBranch);
    if (snapshot && from === undefined) throw new GroveError('invalid_request', 'snapshot needs from');
    if (request.body.import !== undefined && from !== undefined) throw new GroveError('invalid_request', 'a repository is either a fork (from) or an import, not both');
    let expiresAt: string | null = null;
    if (ttl !== undefined) {
      const seconds = parseTtl(ttl);
      if (seconds === null || seconds > MAX_KEY_TTL_SECONDS) throw new GroveError('invalid_request', 'ttl must be like "90s", "30m", "1h", "7d" or seconds, at most 366 days');
      expiresAt = new Date(Date.now() + seconds * 1000).toISOString();
    }
    const orgRow = await findOrgByName(ctx.db, org);
    if (!orgRow) throw notFound(`org ${org}`);
    let source: { row: RepoRow; snapshot: boolean } | undefined;
    if (from !== undefined) {
      const [sourceOrg, sourceName, ...rest] = from.split('/');
      if (!sourceOrg || !sourceName || rest.length > 0) throw new GroveError('invalid_request', 'from must be org/repo');
      requireAccess(request, 'read', { kind: 'repo', org: sourceOrg, repo: sourceName });
      const sourceRow = await findRepo(ctx.db, sourceOrg, sourceName);
      if (!sourceRow) throw notFound(`repository ${from}`);
      if (sourceOrg !== org) throw new GroveError('unprocessable', 'forks share objects, so they are made within one org only');
      source = { row: sourceRow, snapshot };
    }
    const spec = request.body.import;
    if (spec !== undefined) await checkImport(ctx, orgRow.id, spec);
    const row = await createRepository(ctx, { orgId: orgRow.id, org, name, defaultBranch, description, expiresAt, source }, (made) => ({
      type: 'repo.created', org, repo: name, repoId: made.id, actor: actorOf(principalOf(request)), payload: { id: made.id, from: from ?? null, snapshot, expiresAt, ...(spec !== undefined ? { import: spec.url } : {}) },
    }));
    if (spec !== undefined) {
      const started = await ctx.imports.start(ctx, row, org, { url: spec.url, credentialId: spec.credentialId ?? null, mirror: spec.mirror === true }, principalOf(request));
      return reply.code(202).send({ ...repoJson(row, org, baseUrl(ctx, request)), import: { ...importJson(started.record), ...(started.webhookSecret !== null ? { webhook: { url: webhookPath(started.upstreamId!), secret: started.webhookSecret } } : {}) } });
    }
    return reply.code(201).send(repoJson(row, org, baseUrl(ctx, request)));
  });

  app.addSchema(importSchema);

  app.get<{ Params: { org: string; id: string } }>('/orgs/:org/imports/:id', {
    schema: {
      tags: ['repos'],
      summary: 'An import: status (importing, succeeded, failed), progress 0–100, refs, the error of a failed one',
      params: { type: 'object', required: ['org', 'id'], properties: { org: { type: 'string' }, id: { type: 'string', maxLength: 100 } } },
      response: { 200: { $ref: 'RepoImport#' }, ...errorResponses },
    },
  }, async (request) => {
    const { org, id } = request.params;
    requireAccess(request, 'read', { kind: 'org', org });
    const orgRow = await findOrgByName(ctx.db, org);
    if (!orgRow) throw notFound(`org ${org}`);
    const row = await ctx.db.selectFrom('repo_imports').selectAll().where('id', '=', id).where('org_id', '=', orgRow.id).executeTakeFirst();
    if (!row) throw notFound(`import ${id}`);
    requireAccess(request, 'read', { kind: 'repo', org, repo: row.repo_name });
    const live = row.status === 'importing' ? ctx.imports.progressOf(row.repo_id) : null;
    return importJson(live === null ? row : { ...row, progress: Math.max(row.progress, live) });
  });

  app.get<{ Params: { org: string }; Querystring: { limit: number; cursor?: string } }>('/orgs/:org/repos', {
    schema: {
      tags: ['repos'],
      summary: "List an organization's repositories (paginated by name)",
      params: { type: 'object', required: ['org'], properties: { org: { type: 'string' } } },
      querystring: paginationQuery,
      response: { 200: pageOf('Repo#'), ...errorResponses },
    },
  }, async (request) => {
    const { org } = request.params;
    requireAccess(request, 'read', { kind: 'org', org });
    const orgRow = await findOrgByName(ctx.db, org);
    if (!orgRow) throw notFound(`org ${org}`);
    const { limit, cursor } = request.query;
    const rows = await listRepos(ctx.db, orgRow.id, decodeCursor(cursor), limit + 1, visibleRepos(principalOf(request), org));
    const base = baseUrl(ctx, request);
    return page(rows, limit, (row) => repoJson(row, org, base));
  });

  app.get<{ Params: { org: string; repo: string } }>('/repos/:org/:repo', {
    schema: { tags: ['repos'], summary: 'Get a repository', params: repoParams, response: { 200: { $ref: 'Repo#' }, ...errorResponses } },
  }, async (request) => {
    const { org, repo } = request.params;
    requireAccess(request, 'read', { kind: 'repo', org, repo });
    const row = await findRepo(ctx.db, org, repo);
    if (!row) throw notFound(`repository ${org}/${repo}`);
    return repoJson(row, org, baseUrl(ctx, request));
  });

  app.patch<{ Params: { org: string; repo: string }; Body: UpdateRepoBody }>('/repos/:org/:repo', {
    schema: {
      tags: ['repos'],
      summary: 'Rename a repository, change its default branch or description',
      params: repoParams,
      body: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        properties: { name: { type: 'string' }, defaultBranch: { type: 'string' }, description: { type: 'string', maxLength: MAX_DESCRIPTION } },
      },
      response: { 200: { $ref: 'Repo#' }, ...errorResponses },
    },
  }, async (request) => {
    const { org, repo } = request.params;
    requireAccess(request, 'admin', { kind: 'repo', org, repo });
    const row = await findRepo(ctx.db, org, repo);
    if (!row) throw notFound(`repository ${org}/${repo}`);
    const { name, defaultBranch, description } = request.body;
    if (name !== undefined) {
      const problem = checkName('repo', name);
      if (problem) throw new GroveError('invalid_name', problem);
    }
    if (defaultBranch !== undefined) checkBranch(defaultBranch);
    const changes = {
      updated_at: new Date().toISOString(),
      ...(name !== undefined ? { name } : {}),
      ...(defaultBranch !== undefined ? { default_branch: defaultBranch } : {}),
      ...(description !== undefined ? { description } : {}),
    };
    try {
      await updateRepo(ctx.db, row.id, changes);
    } catch (error) {
      if (isUniqueViolation(error)) throw new GroveError('already_exists', `repository ${org}/${name} already exists`);
      throw error;
    }
    if (defaultBranch !== undefined && defaultBranch !== row.default_branch) await ctx.repos.setDefaultBranch(row.id, defaultBranch);
    return repoJson({ ...row, ...changes }, org, baseUrl(ctx, request));
  });

  app.delete<{ Params: { org: string; repo: string } }>('/repos/:org/:repo', {
    schema: { tags: ['repos'], summary: 'Delete a repository and all its data', params: repoParams, response: { 204: { type: 'null' }, ...errorResponses } },
  }, async (request, reply) => {
    const { org, repo } = request.params;
    requireAccess(request, 'admin', { kind: 'repo', org, repo });
    const row = await findRepo(ctx.db, org, repo);
    if (!row) throw notFound(`repository ${org}/${repo}`);
    await deleteRepository(ctx, row, { type: 'repo.deleted', org, repo, repoId: row.id, actor: actorOf(principalOf(request)), payload: { id: row.id } });
    return reply.code(204).send();
  });
}
