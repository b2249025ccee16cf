/**
 * `POST /api/v1/repos/{org}/{repo}/fsck`: checks a repository's objects with `git fsck
 * --strict`, accounting for big blobs the chunk store holds in git's place
 * (repo/fsck.ts). A repository admin's.
 */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../http/context.ts';
import { fsckRepository } from '../repo/fsck.ts';
import { requireAccess } from './principal.ts';
import { busyAsUnavailable, clientSignal, openForRead, repoParams } from './read-common.ts';
import { errorResponses } from './schemas.ts';

const problemSchema = {
  type: 'object',
  required: ['kind', 'message'],
  properties: {
    kind: { type: 'string', enum: ['git', 'missing', 'store'], description: "git: reported by git fsck; missing: a blob neither git nor the chunk store holds for the repository; store: the chunk store's copy does not hash to its id" },
    oid: { type: 'string' },
    message: { type: 'string' },
  },
} as const;

export async function fsckRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.post<{ Params: { org: string; repo: string } }>('/repos/:org/:repo/fsck', {
    schema: {
      tags: ['repos'],
      summary: "Check a repository's objects (git fsck --strict, with big blobs verified in the chunk store)",
      description:
        'Runs git fsck --strict on the repository. Big blobs evicted from git to the chunk store (docs/large-files.md) are accepted where the store holds them for this repository, ' +
        'after their bytes are read back from the store and hashed to their id. Answers 200 whether or not problems were found; `ok` says which. Reads every object: on a big repository it takes a while.',
      params: { type: 'object', required: ['org', 'repo'], properties: repoParams },
      response: {
        200: {
          type: 'object',
          required: ['ok', 'problems', 'moreProblems', 'storedBlobs'],
          properties: {
            ok: { type: 'boolean', description: 'True when git and the chunk store together hold every object, undamaged' },
            problems: { type: 'array', items: problemSchema, description: 'At most 100' },
            moreProblems: { type: 'integer', description: 'Problems beyond those listed' },
            storedBlobs: {
              type: 'object',
              required: ['count', 'bytes'],
              properties: { count: { type: 'integer' }, bytes: { type: 'integer' } },
              description: 'Blobs git lacks that the chunk store holds for the repository, each verified',
            },
          },
        },
        ...errorResponses,
      },
    },
  }, async (request, reply) => {
    const { org, repo } = request.params;
    requireAccess(request, 'admin', { kind: 'repo', org, repo });
    const target = await openForRead(ctx, request, org, repo);
    const store = {
      heldSize: (oid: string) => ctx.bigstore.heldFor(target.repoId, oid)?.size ?? null,
      open: (oid: string) => ctx.bigstore.open(oid, null),
    };
    try {
      return await fsckRepository(ctx.repos.git, target.gitDir, store, clientSignal(ctx, request, reply));
    } catch (error) {
      throw busyAsUnavailable(error, reply);
    }
  });
}
