/**
 * Upstreams and sync runs (docs/remote-sync.md):
 *
 *   PUT    /repos/{org}/{repo}/upstreams/{name}          attach or replace (repo admin): checks the URL,
 *                                                       the destination and that the remote answers
 *   GET    /repos/{org}/{repo}/upstreams[/{name}]        configuration and status (read)
 *   DELETE /repos/{org}/{repo}/upstreams/{name}          detach: its tracking and backup refs go too (repo admin)
 *   POST   /repos/{org}/{repo}/upstreams/{name}/resume   resume a paused upstream (repo admin)
 *   POST   /repos/{org}/{repo}/upstreams/{name}/syncs    queue a run (write; a branch-limited key names its refs)
 *   GET    /repos/{org}/{repo}/upstreams/{name}/syncs[/{id}]  runs with per-ref outcomes (read)
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { refGlobsWithinGrants } from '../auth/authorize.ts';
import { isUniqueViolation } from '../db/database.ts';
import { findRepo, type RepoWithOrg } from '../db/repos.ts';
import { GroveError, notFound } from '../errors.ts';
import { ZERO_OID } from '../git/oid.ts';
import { actorOf, type NewEvent } from '../events/types.ts';
import type { AppContext } from '../http/context.ts';
import { checkName } from '../names.ts';
import { OutboundRefusedError } from '../outbound/guarded-fetch.ts';
import { checkRemoteUrl } from '../repo/remote-env.ts';
import { listRemoteRefs, RemoteGitError } from '../repo/remote-git.ts';
import { DEFAULT_RULES, HIDDEN_PREFIX, MIRROR_RULES, parseSyncRules, pushes, type SyncRule } from '../sync/rules.ts';
import { findUpstreamById, newUpstreamRow, remoteAccess, syncRunJson, upstreamJson, type UpstreamWithRepo } from '../sync/upstream-store.ts';
import { principalOf, requireAccess } from './principal.ts';
import { errorResponses, paginationQuery } from './schemas.ts';
import { API_PREFIX } from './prefix.ts';

const ruleSchema = {
  type: 'object',
  required: ['refs', 'direction'],
  additionalProperties: false,
  properties: {
    refs: { type: 'string', description: 'A glob over full ref names: refs/heads/**, refs/heads/agent-7/*, refs/tags/*' },
    direction: { type: 'string', enum: ['pull', 'push', 'both'] },
    onDivergence: { type: 'string', enum: ['skip', 'overwrite', 'keep'], default: 'skip', description: 'skip: report it; overwrite: take the other side, keeping a backup ref; keep: publish the upstream tip as upstream/<branch>' },
    deletions: { type: 'string', enum: ['ignore', 'propagate'], default: 'ignore' },
  },
} as const;

const upstreamSchema = {
  $id: 'Upstream',
  type: 'object',
  required: ['id', 'name', 'org', 'repo', 'url', 'credentialId', 'rules', 'readOnly', 'pollIntervalSeconds', 'pushForward', 'webhook', 'status', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    org: { type: 'string' },
    repo: { type: 'string' },
    url: { type: 'string' },
    credentialId: { type: ['string', 'null'] },
    rules: { type: 'array', items: ruleSchema },
    readOnly: { type: 'boolean', description: 'A read-only mirror: only the sync moves its refs' },
    pollIntervalSeconds: { type: 'integer' },
    pushForward: { type: 'boolean', description: 'Push-rule refs are pushed after every accepted Grove change' },
    webhook: {
      type: 'object',
      properties: {
        url: { type: 'string', description: 'Where the remote sends push webhooks (relative to GROVE_PUBLIC_URL when unset)' },
        secret: { type: 'string', description: 'The HMAC key for the remote (only when the upstream is created)' },
        lastDeliveryAt: { type: ['string', 'null'] },
        healthy: { type: 'boolean', description: 'A delivery arrived within 24 hours (polls then run every 15 minutes)' },
      },
    },
    status: {
      type: 'object',
      properties: {
        state: { type: 'string', enum: ['active', 'paused'] },
        pausedReason: { type: ['string', 'null'], description: 'credential_rejected, remote_not_found, remote_refused, credential_unusable, too_many_failures' },
        consecutiveFailures: { type: 'integer' },
        lastError: { type: ['string', 'null'] },
        lastCheckedAt: { type: ['string', 'null'] },
        lastSuccessAt: { type: ['string', 'null'] },
        nextPollAt: { type: ['string', 'null'] },
      },
    },
    syncRun: { type: 'string', description: 'The run queued by attaching or replacing it' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

const refReportSchema = {
  type: 'object',
  properties: {
    ref: { type: 'string' },
    side: { type: 'string', enum: ['pull', 'push'] },
    outcome: { type: 'string', enum: ['created', 'updated', 'forced', 'deleted', 'unchanged', 'filtered', 'diverged', 'kept', 'rejected', 'stale', 'failed'] },
    before: { type: ['string', 'null'] },
    after: { type: ['string', 'null'] },
    upstream: { type: ['string', 'null'] },
    message: { type: 'string' },
  },
} as const;

const syncRunSchema = {
  $id: 'SyncRun',
  type: 'object',
  required: ['id', 'upstream', 'direction', 'trigger', 'status', 'dryRun', 'counts', 'refs', 'refsTruncated', 'error', 'remoteMessages', 'createdAt'],
  properties: {
    id: { type: 'string' },
    upstream: { type: 'string' },
    direction: { type: 'string', enum: ['pull', 'push', 'both'] },
    trigger: { type: 'string', enum: ['webhook', 'poll', 'push', 'manual'] },
    status: { type: 'string', enum: ['queued', 'running', 'succeeded', 'partial', 'failed'] },
    dryRun: { type: 'boolean' },
    requestedRefs: { type: ['array', 'null'], items: { type: 'string' } },
    counts: { type: 'object', additionalProperties: { type: 'integer' }, description: 'How many refs had each outcome' },
    refs: { type: 'array', items: refReportSchema, description: 'Every ref whose outcome is not a plain unchanged (at most 10,000)' },
    refsTruncated: { type: 'boolean' },
    error: { type: ['object', 'null'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
    remoteMessages: { type: 'array', items: { type: 'string' }, description: "The remote's own messages (remote: lines), credentials removed" },
    createdAt: { type: 'string' },
    startedAt: { type: ['string', 'null'] },
    finishedAt: { type: ['string', 'null'] },
  },
} as const;

const repoParams = { type: 'object', required: ['org', 'repo'], properties: { org: { type: 'string' }, repo: { type: 'string' } } } as const;
const upstreamParams = { type: 'object', required: ['org', 'repo', 'name'], properties: { org: { type: 'string' }, repo: { type: 'string' }, name: { type: 'string', maxLength: 100 } } } as const;
const upstreamErrors = { ...errorResponses, 422: { $ref: 'Error#' }, 424: { $ref: 'Error#' }, 502: { $ref: 'Error#' } } as const;

interface UpstreamBody {
  url: string;
  credentialId?: string | null;
  rules?: unknown[];
  readOnly?: boolean;
  pollIntervalSeconds?: number;
  pushForward?: boolean;
}

export function webhookPath(upstreamId: string): string {
  return `${API_PREFIX}/hooks/upstreams/${upstreamId}`;
}

export async function upstreamRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.addSchema(upstreamSchema);
  app.addSchema(syncRunSchema);
  const remoteOptions = { allowHttp: ctx.config.sync.allowInsecureRemotes };

  async function repoFor(request: FastifyRequest, org: string, repo: string, action: 'read' | 'write' | 'admin'): Promise<RepoWithOrg> {
    requireAccess(request, action, { kind: 'repo', org, repo });
    const row = await findRepo(ctx.db, org, repo);
    if (!row) throw notFound(`repository ${org}/${repo}`);
    return row;
  }

  async function upstreamFor(repo: RepoWithOrg, name: string): Promise<UpstreamWithRepo> {
    const row = await ctx.db.selectFrom('upstreams').select('id').where('repo_id', '=', repo.id).where('name', '=', name).executeTakeFirst();
    const upstream = row === undefined ? undefined : await findUpstreamById(ctx.db, row.id);
    if (upstream === undefined) throw notFound(`upstream ${name} of ${repo.org_name}/${repo.name}`);
    return upstream;
  }

  const json = (row: UpstreamWithRepo) => upstreamJson(row, webhookPath(row.id));
  const event = (type: NewEvent['type'], row: UpstreamWithRepo, request: FastifyRequest): NewEvent => ({ type, org: row.org_name, repo: row.repo_name, repoId: row.repo_id, actor: actorOf(principalOf(request)), payload: json(row) });

  /** Checks the URL, the destination, the credential and that the remote answers; the catalogue error otherwise. */
  async function checkRemote(repo: RepoWithOrg, body: UpstreamBody): Promise<void> {
    const problem = checkRemoteUrl(body.url, remoteOptions);
    if (problem !== null) throw new GroveError('invalid_request', problem);
    if (body.credentialId != null) {
      const credential = await ctx.db.selectFrom('credentials').select('id').where('id', '=', body.credentialId).where('org_id', '=', repo.org_id).executeTakeFirst();
      if (credential === undefined) throw new GroveError('unprocessable', `credentialId: org ${repo.org_name} has no credential ${body.credentialId}`);
    }
    try {
      const access = await remoteAccess(ctx.db, ctx.secrets, ctx.outbound, { url: body.url, credential_id: body.credentialId ?? null });
      await listRemoteRefs(ctx.repos.git, access, remoteOptions);
    } catch (error) {
      if (error instanceof OutboundRefusedError) throw new GroveError('unprocessable', `url: ${error.message}`);
      if ((error as NodeJS.ErrnoException).code === 'ENOTFOUND') throw new GroveError('remote_unreachable', `url: ${new URL(body.url).hostname} does not resolve`);
      if (!(error instanceof RemoteGitError)) throw error;
      if (error.failure === 'credential_rejected') throw new GroveError('credential_rejected', `the remote refused the credential: ${error.message}`);
      throw new GroveError('remote_unreachable', `the remote did not answer as a git server: ${error.message}`);
    }
  }

  app.put<{ Params: { org: string; repo: string; name: string }; Body: UpstreamBody }>('/repos/:org/:repo/upstreams/:name', {
    schema: {
      tags: ['remote sync'],
      summary: 'Attach an upstream, or replace its configuration; queues a sync run',
      params: upstreamParams,
      body: {
        type: 'object',
        required: ['url'],
        additionalProperties: false,
        properties: {
          url: { type: 'string', maxLength: 2000, description: 'https URL of the remote repository, without credentials' },
          credentialId: { type: ['string', 'null'], maxLength: 100 },
          rules: { type: 'array', minItems: 1, maxItems: 50, items: ruleSchema, description: 'Ordered; the first match decides. Default: pull every branch and tag, fast-forward only' },
          readOnly: { type: 'boolean', default: false, description: 'Mirror: the remote is the truth; pushes and API writes are refused' },
          pollIntervalSeconds: { type: 'integer', minimum: 10, maximum: 86_400 },
          pushForward: { type: 'boolean', default: true },
        },
      },
      response: { 200: { $ref: 'Upstream#' }, 201: { $ref: 'Upstream#' }, ...upstreamErrors },
    },
  }, async (request, reply) => {
    const { org, repo, name } = request.params;
    const repoRow = await repoFor(request, org, repo, 'admin');
    const nameProblem = checkName('upstream', name);
    if (nameProblem) throw new GroveError('invalid_name', nameProblem);
    const body = request.body;
    const readOnly = body.readOnly === true;
    let rules: readonly SyncRule[] = readOnly ? MIRROR_RULES : DEFAULT_RULES;
    if (body.rules !== undefined) {
      const parsed = parseSyncRules(body.rules);
      if ('error' in parsed) throw new GroveError('invalid_request', parsed.error);
      rules = parsed.rules;
    }
    if (readOnly && rules.some((rule) => pushes(rule))) throw new GroveError('invalid_request', 'a read-only mirror only pulls: its rules may not push');
    await checkRemote(repoRow, body);
    const existing = await ctx.db.selectFrom('upstreams').selectAll().where('repo_id', '=', repoRow.id).where('name', '=', name).executeTakeFirst();
    const now = new Date().toISOString();
    const settings = {
      url: body.url,
      credential_id: body.credentialId ?? null,
      rules: JSON.stringify(rules),
      read_only: readOnly ? 1 : 0,
      poll_interval_s: body.pollIntervalSeconds ?? existing?.poll_interval_s ?? ctx.config.sync.pollSeconds,
      push_forward: body.pushForward === false ? 0 : 1,
      updated_at: now,
    };
    let webhookSecret: string | null = null;
    let id: string;
    if (existing === undefined) {
      const made = newUpstreamRow(ctx.secrets, { repo_id: repoRow.id, name, ...settings }, now);
      const row = made.row;
      webhookSecret = made.webhookSecret;
      id = row.id;
      try {
        await ctx.events.change((trx) => trx.insertInto('upstreams').values(row).execute(), () => [event('upstream.created', { ...row, org_name: org, repo_name: repo, default_branch: repoRow.default_branch }, request)]);
      } catch (error) {
        if (isUniqueViolation(error)) throw new GroveError('already_exists', `upstream ${name} was attached meanwhile; send the request again to replace it`);
        throw error;
      }
    } else {
      id = existing.id;
      // A new configuration starts afresh: active, polled now.
      const changes = { ...settings, state: 'active' as const, paused_reason: null, consecutive_failures: 0, next_poll_at: now, last_error: null, poll_digest: null };
      await ctx.events.change((trx) => trx.updateTable('upstreams').set(changes).where('id', '=', id).execute(), () => [event('upstream.updated', { ...existing, ...changes, org_name: org, repo_name: repo, default_branch: repoRow.default_branch }, request)]);
    }
    const run = await ctx.sync.request(id, { direction: 'both', trigger: 'manual' });
    const row = (await findUpstreamById(ctx.db, id))!;
    const answer = json(row);
    return reply.code(existing === undefined ? 201 : 200).send({ ...answer, webhook: { ...answer.webhook, ...(webhookSecret !== null ? { secret: webhookSecret } : {}) }, syncRun: run.id });
  });

  app.get<{ Params: { org: string; repo: string } }>('/repos/:org/:repo/upstreams', {
    schema: { tags: ['remote sync'], summary: "A repository's upstreams with their status", params: repoParams, response: { 200: { type: 'object', properties: { items: { type: 'array', items: { $ref: 'Upstream#' } } } }, ...errorResponses } },
  }, async (request) => {
    const repoRow = await repoFor(request, request.params.org, request.params.repo, 'read');
    const ids = await ctx.db.selectFrom('upstreams').select('id').where('repo_id', '=', repoRow.id).orderBy('name').execute();
    const rows = await Promise.all(ids.map(({ id }) => findUpstreamById(ctx.db, id)));
    return { items: rows.filter((r): r is UpstreamWithRepo => r !== undefined).map(json) };
  });

  app.get<{ Params: { org: string; repo: string; name: string } }>('/repos/:org/:repo/upstreams/:name', {
    schema: { tags: ['remote sync'], summary: 'An upstream: configuration and status', params: upstreamParams, response: { 200: { $ref: 'Upstream#' }, ...errorResponses } },
  }, async (request) => {
    const repoRow = await repoFor(request, request.params.org, request.params.repo, 'read');
    return json(await upstreamFor(repoRow, request.params.name));
  });

  app.delete<{ Params: { org: string; repo: string; name: string } }>('/repos/:org/:repo/upstreams/:name', {
    schema: { tags: ['remote sync'], summary: 'Detach an upstream: its runs, tracking refs and backup refs are removed', params: upstreamParams, response: { 204: { type: 'null' }, ...errorResponses } },
  }, async (request, reply) => {
    const repoRow = await repoFor(request, request.params.org, request.params.repo, 'admin');
    const upstream = await upstreamFor(repoRow, request.params.name);
    await ctx.events.change((trx) => trx.deleteFrom('upstreams').where('id', '=', upstream.id).execute(), () => [event('upstream.deleted', upstream, request)]);
    await ctx.sync.forget(upstream.id);
    // Its refs go after the row (a run that starts meanwhile finds no upstream).
    const gitDir = ctx.repos.gitDir(repoRow.id);
    await ctx.repoCache.ensure({ id: repoRow.id, gitDir, defaultBranch: repoRow.default_branch });
    const snapshot = await ctx.repos.refs.read(gitDir);
    const own = snapshot.hidden.filter((r) => r.name.startsWith(`${HIDDEN_PREFIX}upstreams/${upstream.id}/`) || r.name.startsWith(`${HIDDEN_PREFIX}backups/${upstream.id}/`));
    if (own.length > 0) await ctx.refStore.apply({ id: repoRow.id, gitDir }, own.map((r) => ({ ref: r.name, oldOid: r.oid, newOid: ZERO_OID })));
    return reply.code(204).send();
  });

  app.post<{ Params: { org: string; repo: string; name: string } }>('/repos/:org/:repo/upstreams/:name/resume', {
    schema: { tags: ['remote sync'], summary: 'Resume a paused upstream now (a rotated credential resumes its upstreams by itself)', params: upstreamParams, response: { 200: { $ref: 'Upstream#' }, ...errorResponses } },
  }, async (request) => {
    const repoRow = await repoFor(request, request.params.org, request.params.repo, 'admin');
    const upstream = await upstreamFor(repoRow, request.params.name);
    await ctx.sync.resume(upstream.id);
    return json((await findUpstreamById(ctx.db, upstream.id))!);
  });

  app.post<{ Params: { org: string; repo: string; name: string }; Body: { direction?: 'pull' | 'push' | 'both'; refs?: string[]; dryRun?: boolean } | undefined }>('/repos/:org/:repo/upstreams/:name/syncs', {
    schema: {
      tags: ['remote sync'],
      summary: 'Queue a sync run (joins the run already queued, if any); 202 with the run',
      params: upstreamParams,
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          direction: { type: 'string', enum: ['pull', 'push', 'both'], default: 'both' },
          refs: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'string', maxLength: 255 }, description: 'Only refs matching these globs (refs/heads/agent-7/**)' },
          dryRun: { type: 'boolean', default: false, description: 'Decide and report every ref; change nothing on either side' },
        },
      },
      response: { 202: { $ref: 'SyncRun#' }, ...upstreamErrors },
    },
  }, async (request, reply) => {
    const { org, repo, name } = request.params;
    const repoRow = await repoFor(request, org, repo, 'write');
    const upstream = await upstreamFor(repoRow, name);
    const body = request.body ?? {};
    const direction = body.direction ?? 'both';
    const refs = body.refs ?? null;
    for (const glob of refs ?? []) {
      if (!glob.startsWith('refs/heads/') && !glob.startsWith('refs/tags/')) throw new GroveError('invalid_request', `refs: ${JSON.stringify(glob)} must start with refs/heads/ or refs/tags/`);
    }
    const denial = refGlobsWithinGrants(principalOf(request), org, repo, refs);
    if (denial !== null) throw new GroveError('forbidden', denial);
    if (upstream.state === 'paused') throw new GroveError('upstream_paused', `upstream ${name} is paused (${upstream.paused_reason ?? 'paused'}): ${upstream.last_error ?? ''}`.trim(), { reason: upstream.paused_reason });
    if (upstream.read_only === 1 && direction === 'push') throw new GroveError('unprocessable', `upstream ${name} is a read-only mirror: it only pulls`);
    const run = await ctx.sync.request(upstream.id, { direction, trigger: 'manual', refs, dryRun: body.dryRun ?? false });
    return reply.code(202).send(syncRunJson(run, upstream.name));
  });

  app.get<{ Params: { org: string; repo: string; name: string }; Querystring: { limit: number; cursor?: string } }>('/repos/:org/:repo/upstreams/:name/syncs', {
    schema: {
      tags: ['remote sync'],
      summary: "An upstream's sync runs, newest first (a poll that found nothing to do writes none)",
      params: upstreamParams,
      querystring: paginationQuery,
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: { $ref: 'SyncRun#' } }, nextCursor: { type: ['string', 'null'] } } }, ...errorResponses },
    },
  }, async (request) => {
    const repoRow = await repoFor(request, request.params.org, request.params.repo, 'read');
    const upstream = await upstreamFor(repoRow, request.params.name);
    const { limit, cursor } = request.query;
    let query = ctx.db.selectFrom('sync_runs').selectAll().where('upstream_id', '=', upstream.id).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1);
    if (cursor !== undefined) {
      const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('\n');
      if (at === undefined || id === undefined) throw new GroveError('invalid_request', 'cursor is not one this server issued');
      query = query.where((eb) => eb.or([eb('created_at', '<', at), eb.and([eb('created_at', '=', at), eb('id', '<', id)])]));
    }
    const rows = await query.execute();
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items: items.map((r) => syncRunJson(r, upstream.name)), nextCursor: rows.length > limit && last ? Buffer.from(`${last.created_at}\n${last.id}`).toString('base64url') : null };
  });

  app.get<{ Params: { org: string; repo: string; name: string; id: string } }>('/repos/:org/:repo/upstreams/:name/syncs/:id', {
    schema: { tags: ['remote sync'], summary: 'A sync run: status, counts, per-ref outcomes, redacted errors and remote messages', params: { type: 'object', required: ['org', 'repo', 'name', 'id'], properties: { ...upstreamParams.properties, id: { type: 'string', maxLength: 100 } } }, response: { 200: { $ref: 'SyncRun#' }, ...errorResponses } },
  }, async (request) => {
    const repoRow = await repoFor(request, request.params.org, request.params.repo, 'read');
    const upstream = await upstreamFor(repoRow, request.params.name);
    const run = await ctx.db.selectFrom('sync_runs').selectAll().where('id', '=', request.params.id).where('upstream_id', '=', upstream.id).executeTakeFirst();
    if (run === undefined) throw notFound(`sync run ${request.params.id}`);
    return syncRunJson(run, upstream.name);
  });
}
