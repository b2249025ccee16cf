/**
 * History without a clone: `GET /repos/{org}/{repo}/commits?ref=&path=&limit=&cursor=`
 * (newest first, paginated), `GET .../commits/{sha}` (one commit and the files it
 * changed) and `GET .../blame/{path}?ref=`. Read scope.
 */
import type { FastifyInstance } from 'fastify';
import { GroveError, notFound } from '../errors.ts';
import type { AppContext } from '../http/context.ts';
import { BIG_BLOB_BYTES, isBigBlob } from '../repo/big-blob.ts';
import { blame, commitWithChanges, listCommits, readCommit } from '../repo/history.ts';
import { resolveRevision } from '../repo/read-objects.ts';
import { busyAsUnavailable, clientSignal, commitSchema, normalizePath, openForRead, repoParams, resolveRead, storedSize } from './read-common.ts';
import { errorResponses } from './schemas.ts';

/** Files listed for one commit; `truncated` says when there were more. */
export const MAX_COMMIT_FILES = 3000;

const readErrors = { ...errorResponses, 503: { $ref: 'Error#' } } as const;

export const fileStatSchema = {
  type: 'object',
  required: ['path', 'status', 'additions', 'deletions', 'binary'],
  properties: {
    path: { type: 'string' },
    previousPath: { type: 'string', description: 'The path before a rename or copy' },
    status: { type: 'string', enum: ['added', 'modified', 'deleted', 'renamed', 'copied', 'typechange'] },
    additions: { type: 'integer' },
    deletions: { type: 'integer' },
    binary: { type: 'boolean' },
    oldSize: { type: 'integer', description: 'Binary files: the size in bytes before the change (absent when the file was added)' },
    newSize: { type: 'integer', description: 'Binary files: the size in bytes after the change (absent when the file was deleted)' },
  },
} as const;

/** Cursor of the commit listing: the commit the first page started from and how many to skip, so pages stay put while the branch moves. */
function encodeLogCursor(commit: string, skip: number): string {
  return Buffer.from(JSON.stringify({ c: commit, s: skip }), 'utf8').toString('base64url');
}

function decodeLogCursor(cursor: string): { commit: string; skip: number } {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { c?: unknown; s?: unknown };
    if (typeof parsed.c === 'string' && /^[0-9a-f]{40}$/.test(parsed.c) && Number.isSafeInteger(parsed.s) && (parsed.s as number) >= 0) {
      return { commit: parsed.c, skip: parsed.s as number };
    }
  } catch {
    // fall through
  }
  throw new GroveError('invalid_request', 'cursor is not one this server issued');
}

export async function historyRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Params: { org: string; repo: string }; Querystring: { ref?: string; path?: string; limit: number; cursor?: string } }>('/repos/:org/:repo/commits', {
    schema: {
      tags: ['history'],
      summary: 'List commits reachable from a ref, newest first (paginated); with path, only those that change it',
      params: { type: 'object', required: ['org', 'repo'], properties: repoParams },
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ref: { type: 'string', description: 'Branch, tag or commit sha (default: the default branch); ignored with a cursor' },
          path: { type: 'string', description: 'Only commits that change this file or directory' },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100, description: 'Page size' },
          cursor: { type: 'string', maxLength: 400, description: 'nextCursor from the previous page' },
        },
      },
      response: {
        200: { type: 'object', required: ['items', 'nextCursor'], properties: { items: { type: 'array', items: commitSchema }, nextCursor: { type: ['string', 'null'] } } },
        ...readErrors,
      },
    },
  }, async (request, reply) => {
    const { org, repo } = request.params;
    const target = await openForRead(ctx, request, org, repo);
    const path = normalizePath(request.query.path);
    const { limit, cursor } = request.query;
    const signal = clientSignal(ctx, request, reply);
    try {
      let start: { commit: string; skip: number };
      if (cursor !== undefined && cursor !== '') {
        start = decodeLogCursor(cursor);
        if ((await resolveRevision(ctx.repos.git, target.gitDir, start.commit, [], signal))?.commit !== start.commit) {
          throw new GroveError('invalid_request', 'cursor is not one this server issued for this repository');
        }
      } else {
        start = { commit: (await resolveRead(ctx, target, request.query.ref, [], signal)).commit, skip: 0 };
      }
      const commits = await listCommits(ctx.repos.git, target.gitDir, { tips: [start.commit], path, skip: start.skip, limit: limit + 1, signal });
      const items = commits.slice(0, limit);
      return { items, nextCursor: commits.length > limit ? encodeLogCursor(start.commit, start.skip + limit) : null };
    } catch (error) {
      throw busyAsUnavailable(error, reply);
    }
  });

  app.get<{ Params: { org: string; repo: string; sha: string } }>('/repos/:org/:repo/commits/:sha', {
    schema: {
      tags: ['history'],
      summary: 'Get a commit and the files it changed against its first parent',
      params: { type: 'object', required: ['org', 'repo', 'sha'], properties: { ...repoParams, sha: { type: 'string', description: 'A commit sha (full or abbreviated) or a branch or tag' } } },
      response: {
        200: {
          type: 'object',
          required: [...commitSchema.required, 'files', 'truncated'],
          properties: {
            ...commitSchema.properties,
            files: { type: 'array', items: fileStatSchema },
            truncated: { type: 'boolean', description: `True when more than ${MAX_COMMIT_FILES} files changed` },
          },
        },
        ...readErrors,
      },
    },
  }, async (request, reply) => {
    const { org, repo, sha } = request.params;
    const target = await openForRead(ctx, request, org, repo);
    const signal = clientSignal(ctx, request, reply);
    try {
      const read = await resolveRead(ctx, target, sha, [], signal);
      const commit = await readCommit(ctx.repos.git, target.gitDir, read.commit, signal);
      if (commit === null) throw notFound(`commit ${sha}`);
      const changes = await commitWithChanges(ctx.repos.git, target.gitDir, commit, signal, storedSize(ctx, target));
      const files = changes.slice(0, MAX_COMMIT_FILES).map(({ path, previousPath, status, additions, deletions, binary, oldSize, newSize }) => ({
        path, ...(previousPath !== undefined ? { previousPath } : {}), status, additions, deletions, binary,
        ...(oldSize !== undefined ? { oldSize } : {}), ...(newSize !== undefined ? { newSize } : {}),
      }));
      return { ...commit, files, truncated: changes.length > files.length };
    } catch (error) {
      throw busyAsUnavailable(error, reply);
    }
  });

  app.get<{ Params: { org: string; repo: string; '*': string }; Querystring: { ref?: string } }>('/repos/:org/:repo/blame/*', {
    schema: {
      tags: ['history'],
      summary: 'Which commit last changed each line of a file (git blame)',
      params: { type: 'object', required: ['org', 'repo', '*'], properties: { ...repoParams, '*': { type: 'string', description: 'Path of the file' } } },
      querystring: { type: 'object', additionalProperties: false, properties: { ref: { type: 'string', description: 'Branch, tag or commit sha (default: the default branch)' } } },
      response: {
        200: {
          type: 'object',
          required: ['path', 'ref', 'sha', 'ranges'],
          properties: {
            path: { type: 'string' },
            ref: { type: 'string' },
            sha: { type: 'string', description: 'The commit read' },
            ranges: {
              type: 'array',
              description: 'Consecutive lines last changed by one commit, in file order; together they cover every line',
              items: {
                type: 'object',
                required: ['start', 'lines', 'commit'],
                properties: {
                  start: { type: 'integer', description: 'First line, 1-based' },
                  lines: { type: 'integer' },
                  commit: {
                    type: 'object',
                    required: ['sha', 'author', 'date', 'summary'],
                    properties: {
                      sha: { type: 'string' },
                      author: { type: 'object', required: ['name', 'email'], properties: { name: { type: 'string' }, email: { type: 'string' } } },
                      date: { type: 'string', description: 'Author date, ISO 8601 with the original offset' },
                      summary: { type: 'string', description: 'First line of the message' },
                    },
                  },
                },
              },
            },
          },
        },
        ...readErrors,
        422: { $ref: 'Error#' },
      },
    },
  }, async (request, reply) => {
    const { org, repo } = request.params;
    const target = await openForRead(ctx, request, org, repo);
    const path = normalizePath(request.params['*']);
    if (path === '') throw new GroveError('invalid_request', 'name the file to blame: blame/{path}');
    const signal = clientSignal(ctx, request, reply);
    try {
      const read = await resolveRead(ctx, target, request.query.ref, [path], signal);
      const file = read.objects[0];
      if (file?.type !== 'blob') throw notFound(`file ${JSON.stringify(path)} at ${read.ref}`);
      if (isBigBlob(file.size)) throw new GroveError('unprocessable', `${path} is ${file.size} bytes: blame is refused for files of ${BIG_BLOB_BYTES} bytes or more (read ranges of it with contents or blobs)`);
      const ranges = await blame(ctx.repos.git, target.gitDir, read.commit, path, signal);
      return { path, ref: read.ref, sha: read.commit, ranges };
    } catch (error) {
      throw busyAsUnavailable(error, reply);
    }
  });
}
