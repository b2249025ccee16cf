/**
 * Diffs without a clone: `GET /repos/{org}/{repo}/compare/{base}...{head}` with
 * three-dot semantics (what head adds since it forked from base). JSON with files,
 * statuses, line counts and hunks within limits, or the unified diff streamed with
 * `Accept: text/x-diff`. Read scope.
 */
import type { FastifyInstance } from 'fastify';
import { GroveError } from '../errors.ts';
import type { AppContext } from '../http/context.ts';
import { compareCommits, streamUnifiedDiff } from '../repo/diff.ts';
import { busyAsUnavailable, clientSignal, commitSchema, openForRead, repoParams, resolveRead, storedSize } from './read-common.ts';
import { fileStatSchema } from './history.ts';
import { errorResponses } from './schemas.ts';

export const COMPARE_LIMITS = {
  defaultFiles: 300,
  maxFiles: 3000,
  defaultLines: 20_000,
  maxLines: 200_000,
  /** Bytes of hunk text in one answer. */
  maxBytes: 8 * 1024 * 1024,
  /** Commits listed, newest first. */
  maxCommits: 250,
} as const;

const hunkSchema = {
  type: 'object',
  required: ['oldStart', 'oldLines', 'newStart', 'newLines', 'header', 'lines'],
  properties: {
    oldStart: { type: 'integer' },
    oldLines: { type: 'integer' },
    newStart: { type: 'integer' },
    newLines: { type: 'integer' },
    header: { type: 'string', description: 'The @@ line' },
    lines: { type: 'array', items: { type: 'string' }, description: 'Prefixed "+", "-", " ", or "\\" (no newline at end of file)' },
  },
} as const;

const comparisonSchema = {
  type: 'object',
  required: ['base', 'head', 'mergeBase', 'commits', 'files', 'truncated'],
  properties: {
    base: { type: 'string', description: 'The commit base names' },
    head: { type: 'string', description: 'The commit head names' },
    mergeBase: { type: ['string', 'null'], description: 'null for unrelated histories (the diff is then against nothing)' },
    commits: { type: 'array', items: commitSchema, description: `Commits in head and not in base, newest first (at most ${COMPARE_LIMITS.maxCommits})` },
    files: {
      type: 'array',
      items: {
        type: 'object',
        required: [...fileStatSchema.required, 'hunks', 'truncated'],
        properties: { ...fileStatSchema.properties, hunks: { type: 'array', items: hunkSchema }, truncated: { type: 'boolean', description: 'Hunks left out by the line limit' } },
      },
    },
    truncated: { type: 'boolean', description: 'True when a limit left out commits, files or hunks' },
  },
} as const;

const DIFF_TYPES = /\btext\/x-(diff|patch)\b/i;

export async function compareRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Params: { org: string; repo: string; '*': string }; Querystring: { maxFiles: number; maxLines: number } }>('/repos/:org/:repo/compare/*', {
    schema: {
      tags: ['history'],
      summary: 'Compare two refs, base...head: JSON, or the unified diff with Accept: text/x-diff',
      description: 'Three-dot semantics: the commits in head and not in base, and the diff from their merge base to head, with renames detected. The unified diff (Accept: text/x-diff) is streamed whole, with full ids and binary patches, and applies with git apply.',
      params: { type: 'object', required: ['org', 'repo', '*'], properties: { ...repoParams, '*': { type: 'string', description: '{base}...{head}: branches, tags or commit shas' } } },
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          maxFiles: { type: 'integer', minimum: 1, maximum: COMPARE_LIMITS.maxFiles, default: COMPARE_LIMITS.defaultFiles, description: 'Files listed' },
          maxLines: { type: 'integer', minimum: 1, maximum: COMPARE_LIMITS.maxLines, default: COMPARE_LIMITS.defaultLines, description: 'Hunk lines over all files' },
        },
      },
      response: {
        200: { description: 'The comparison', content: { 'application/json': { schema: comparisonSchema }, 'text/x-diff': { schema: { type: 'string' } } } },
        ...errorResponses,
        503: { $ref: 'Error#' },
      },
    },
  }, async (request, reply) => {
    const { org, repo } = request.params;
    const target = await openForRead(ctx, request, org, repo);
    const spec = request.params['*'];
    const dots = spec.indexOf('...');
    if (dots <= 0 || dots + 3 >= spec.length) throw new GroveError('invalid_request', `compare needs {base}...{head}, got ${JSON.stringify(spec.slice(0, 200))}`);
    const [baseRef, headRef] = [spec.slice(0, dots), spec.slice(dots + 3)];
    const signal = clientSignal(ctx, request, reply);
    try {
      const [base, head] = await Promise.all([resolveRead(ctx, target, baseRef, [], signal), resolveRead(ctx, target, headRef, [], signal)]);
      if (DIFF_TYPES.test(request.headers.accept ?? '')) {
        const stream = await streamUnifiedDiff(ctx.repos.git, target.gitDir, base.commit, head.commit, signal);
        return reply.code(200).headers({ 'Content-Type': 'text/x-diff; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }).send(stream);
      }
      const { maxFiles, maxLines } = request.query;
      return await compareCommits(ctx.repos.git, target.gitDir, base.commit, head.commit, { maxFiles, maxLines, maxBytes: COMPARE_LIMITS.maxBytes, maxCommits: COMPARE_LIMITS.maxCommits }, signal, storedSize(ctx, target));
    } catch (error) {
      throw busyAsUnavailable(error, reply);
    }
  });
}
