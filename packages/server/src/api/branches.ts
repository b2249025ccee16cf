/**
 * Branches and tags by API: list (paginated, prefix filter), get, create at a
 * commit, move with `expectedSha`, delete with `expectedSha`. Every change goes
 * through authorizeRefUpdate() and the one compare-and-swap transaction, as pushes do.
 * Branches may carry a TTL: the sweeper deletes them within a minute of expiry.
 */
import type { FastifyInstance } from 'fastify';
import { GroveError } from '../errors.ts';
import { checkWritableRefName } from '../git/ref-name.ts';
import type { AppContext } from '../http/context.ts';
import { parseTtl } from '../auth/ttl.ts';
import { deleteBranchTtl, findBranchTtl, forgetBranchTtls, setBranchTtl } from '../db/branch-ttls.ts';
import { createAnnotatedTag } from '../repo/tags.ts';
import { isAncestor } from '../repo/resolve.ts';
import type { RefSnapshot } from '../repo/ref-snapshot.ts';
import { applyRefUpdate, commitFor, currentRef, requireExpected, requireRefWrite, writeTarget, ZERO_OID } from './ref-writes.ts';
import { errorResponses } from './schemas.ts';

type Kind = 'branch' | 'tag';
const PREFIX: Record<Kind, string> = { branch: 'refs/heads/', tag: 'refs/tags/' };
const MAX_BRANCH_TTL_SECONDS = 366 * 86400;

function refName(kind: Kind, name: string): string {
  const ref = `${PREFIX[kind]}${name}`;
  const problem = checkWritableRefName(ref);
  if (problem) throw new GroveError('invalid_name', `${kind} name ${JSON.stringify(name)} is invalid: ${problem}`);
  return ref;
}

function listRefs(snapshot: RefSnapshot, kind: Kind, prefix: string, after: string | null, limit: number) {
  const start = PREFIX[kind] + prefix;
  const matching = snapshot.refs.filter((r) => r.name.startsWith(start) && (after === null || r.name.slice(PREFIX[kind].length) > after));
  const page = matching.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => ({ name: r.name.slice(PREFIX[kind].length), sha: r.oid, ...(kind === 'tag' ? { target: r.peeled ?? r.oid, annotated: r.peeled !== null } : {}) })),
    nextCursor: matching.length > limit && last ? Buffer.from(last.name.slice(PREFIX[kind].length)).toString('base64url') : null,
  };
}

const params = { type: 'object', required: ['org', 'repo'], properties: { org: { type: 'string' }, repo: { type: 'string' } } } as const;
const namedParams = { type: 'object', required: ['org', 'repo', '*'], properties: { org: { type: 'string' }, repo: { type: 'string' }, '*': { type: 'string', description: 'Branch or tag name (may contain /)' } } } as const;
const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    prefix: { type: 'string', default: '', description: 'Only names starting with this' },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    cursor: { type: 'string', maxLength: 2000 },
  },
} as const;
const expectedQuery = { type: 'object', additionalProperties: false, properties: { expectedSha: { type: 'string', pattern: '^[0-9a-f]{40}$' } } } as const;

const branchSchema = {
  $id: 'Branch',
  type: 'object',
  required: ['name', 'sha'],
  properties: { name: { type: 'string' }, sha: { type: 'string' }, expiresAt: { type: ['string', 'null'], format: 'date-time' } },
} as const;
const tagSchema = {
  $id: 'Tag',
  type: 'object',
  required: ['name', 'sha', 'target', 'annotated'],
  properties: { name: { type: 'string' }, sha: { type: 'string', description: 'The tag ref value (the tag object for annotated tags)' }, target: { type: 'string', description: 'The commit it finally points at' }, annotated: { type: 'boolean' } },
} as const;

function decodeAfter(cursor: string | undefined): string | null {
  return cursor === undefined ? null : Buffer.from(cursor, 'base64url').toString('utf8');
}

export async function branchRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.addSchema(branchSchema);
  app.addSchema(tagSchema);

  for (const kind of ['branch', 'tag'] as const) {
    const plural = kind === 'branch' ? 'branches' : 'tags';
    const itemRef = kind === 'branch' ? 'Branch#' : 'Tag#';

    app.get<{ Params: { org: string; repo: string }; Querystring: { prefix: string; limit: number; cursor?: string } }>(`/repos/:org/:repo/${plural}`, {
      schema: {
        tags: [plural],
        summary: `List ${plural} (by name, paginated, optional prefix)`,
        params,
        querystring: listQuery,
        response: { 200: { type: 'object', required: ['items', 'nextCursor'], properties: { items: { type: 'array', items: { $ref: itemRef } }, nextCursor: { type: ['string', 'null'] } } }, ...errorResponses },
      },
    }, async (request) => {
      const target = await writeTarget(ctx, request, request.params.org, request.params.repo, 'read');
      const { prefix, limit, cursor } = request.query;
      return listRefs(await ctx.repos.refs.read(target.gitDir), kind, prefix, decodeAfter(cursor), limit);
    });

    app.get<{ Params: { org: string; repo: string; '*': string } }>(`/repos/:org/:repo/${plural}/*`, {
      schema: { tags: [plural], summary: `Get a ${kind}`, params: namedParams, response: { 200: { $ref: itemRef }, ...errorResponses } },
    }, async (request) => {
      const target = await writeTarget(ctx, request, request.params.org, request.params.repo, 'read');
      const ref = refName(kind, request.params['*']);
      const entry = (await ctx.repos.refs.read(target.gitDir)).refs.find((r) => r.name === ref);
      if (!entry) throw new GroveError('not_found', `${kind} ${request.params['*']} not found`);
      if (kind === 'tag') return { name: request.params['*'], sha: entry.oid, target: entry.peeled ?? entry.oid, annotated: entry.peeled !== null };
      const ttl = await findBranchTtl(ctx.db, target.row.id, ref);
      return { name: request.params['*'], sha: entry.oid, expiresAt: ttl?.expires_at ?? null };
    });

    app.post<{ Params: { org: string; repo: string }; Body: { name: string; sha: string; ttl?: string | number; message?: string } }>(`/repos/:org/:repo/${plural}`, {
      schema: {
        tags: [plural],
        summary: kind === 'branch' ? 'Create a branch at a commit (optionally with a TTL)' : 'Create a tag (annotated when a message is given)',
        params,
        body: {
          type: 'object',
          required: ['name', 'sha'],
          additionalProperties: false,
          properties: kind === 'branch'
            ? { name: { type: 'string' }, sha: { type: 'string', description: 'Commit id, branch or tag' }, ttl: { type: ['string', 'integer'], description: 'Delete the branch after 90s, 30m, 1h, 7d or N seconds' } }
            : { name: { type: 'string' }, sha: { type: 'string', description: 'Commit id, branch or tag' }, message: { type: 'string', minLength: 1, maxLength: 65536 } },
        },
        response: { 201: { $ref: itemRef }, ...errorResponses },
      },
    }, async (request, reply) => {
      const target = await writeTarget(ctx, request, request.params.org, request.params.repo);
      const { name, sha, ttl, message } = request.body;
      const ref = refName(kind, name);
      let expiresAt: string | null = null;
      if (ttl !== undefined) {
        const seconds = parseTtl(ttl);
        if (seconds === null || seconds > MAX_BRANCH_TTL_SECONDS) throw new GroveError('invalid_request', 'ttl must be like "90s", "30m", "1h", "7d" or seconds, at most 366 days');
        expiresAt = new Date(Date.now() + seconds * 1000).toISOString();
      }
      const commit = await commitFor(ctx, target.gitDir, sha, 'sha');
      await requireRefWrite(ctx, target, { ref, kind: 'create' });
      if ((await currentRef(ctx, target.gitDir, ref)) !== null) throw new GroveError('already_exists', `${kind} ${name} already exists`);
      let value = commit;
      if (kind === 'tag' && message !== undefined) {
        const signer = target.principal.kind === 'key' ? (target.principal.name ?? target.principal.id) : 'Grove';
        value = await createAnnotatedTag(ctx.repos.git, target.gitDir, { name, target: commit, message, tagger: { name: signer, email: 'grove@grove.invalid' } });
      }
      await applyRefUpdate(ctx, target, { ref, oldOid: ZERO_OID, newOid: value });
      if (expiresAt !== null) await setBranchTtl(ctx.db, { repo_id: target.row.id, ref, sha: value, expires_at: expiresAt });
      else await forgetBranchTtls(ctx.db, target.row.id, [ref]);
      const body = kind === 'branch' ? { name, sha: value, expiresAt } : { name, sha: value, target: commit, annotated: value !== commit };
      return reply.code(201).send(body);
    });

    if (kind === 'branch') {
      app.patch<{ Params: { org: string; repo: string; '*': string }; Body: { sha: string; expectedSha: string } }>(`/repos/:org/:repo/branches/*`, {
        schema: {
          tags: ['branches'],
          summary: 'Move a branch to another commit, if it is still at expectedSha',
          params: namedParams,
          body: { type: 'object', required: ['sha', 'expectedSha'], additionalProperties: false, properties: { sha: { type: 'string' }, expectedSha: { type: 'string', pattern: '^[0-9a-f]{40}$' } } },
          response: { 200: { $ref: 'Branch#' }, ...errorResponses },
        },
      }, async (request) => {
        const target = await writeTarget(ctx, request, request.params.org, request.params.repo);
        const ref = refName('branch', request.params['*']);
        const current = await currentRef(ctx, target.gitDir, ref);
        if (current === null) throw new GroveError('not_found', `branch ${request.params['*']} not found`);
        requireExpected(ref, current, request.body.expectedSha);
        const commit = await commitFor(ctx, target.gitDir, request.body.sha, 'sha');
        const forced = !(await isAncestor(ctx.repos.git, target.gitDir, current, commit));
        await requireRefWrite(ctx, target, { ref, kind: 'update', forced });
        await applyRefUpdate(ctx, target, { ref, oldOid: current, newOid: commit }, [{ type: 'push', payload: { source: 'api', forced } }]);
        const ttl = await findBranchTtl(ctx.db, target.row.id, ref);
        return { name: request.params['*'], sha: commit, expiresAt: ttl?.expires_at ?? null };
      });
    }

    app.delete<{ Params: { org: string; repo: string; '*': string }; Querystring: { expectedSha?: string } }>(`/repos/:org/:repo/${plural}/*`, {
      schema: { tags: [plural], summary: `Delete a ${kind} (if still at expectedSha, when given)`, params: namedParams, querystring: expectedQuery, response: { 204: { type: 'null' }, ...errorResponses } },
    }, async (request, reply) => {
      const target = await writeTarget(ctx, request, request.params.org, request.params.repo);
      const ref = refName(kind, request.params['*']);
      const snapshot = await ctx.repos.refs.read(target.gitDir);
      const current = snapshot.refs.find((r) => r.name === ref)?.oid ?? null;
      if (current === null) throw new GroveError('not_found', `${kind} ${request.params['*']} not found`);
      requireExpected(ref, current, request.query.expectedSha);
      if (snapshot.head?.target === ref) throw new GroveError('unprocessable', `${request.params['*']} is the default branch; change the default branch first`);
      await requireRefWrite(ctx, target, { ref, kind: 'delete' });
      await applyRefUpdate(ctx, target, { ref, oldOid: current, newOid: ZERO_OID });
      await deleteBranchTtl(ctx.db, target.row.id, ref);
      return reply.code(204).send();
    });
  }
}

