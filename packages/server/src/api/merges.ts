/**
 * Merges by API: `POST /api/v1/repos/{org}/{repo}/merges` merges branch `head` into
 * branch `base` and moves `base` (compare-and-swap, optionally on `expectedBase`);
 * `POST .../merges/preview` answers the same without moving anything. Strategies:
 * fast-forward, merge (a merge commit), squash (one commit with the merged tree),
 * rebase (head's commits replayed onto base, see repo/rebase.ts).
 * A conflict is 409 `merge_conflict` with the paths and hunks, and nothing moves.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GroveError } from '../errors.ts';
import type { AppContext } from '../http/context.ts';
import { mergeTrees } from '../repo/merge.ts';
import { Quarantine } from '../repo/quarantine.ts';
import { isAncestor } from '../repo/resolve.ts';
import { MAX_REPLAYED_COMMITS, replayCommits } from '../repo/rebase.ts';
import type { Signature } from '../repo/commit-builder.ts';
import { idempotent } from './idempotency.ts';
import { applyRefUpdate, commitFor, currentRef, requireExpected, requireRefWrite, writeTarget, type WriteTarget } from './ref-writes.ts';
import { errorResponses } from './schemas.ts';

type Strategy = 'fast-forward' | 'merge' | 'squash' | 'rebase';

interface MergeBody {
  base: string;
  head: string;
  strategy?: Strategy;
  message?: string;
  expectedBase?: string;
}

interface MergeAnswer {
  base: string;
  head: string;
  strategy: Strategy;
  /** The new tip of base (for a preview: what it would be, or null when only a tree is known). */
  sha: string;
  tree: string;
  parents: string[];
  fastForward: boolean;
}

async function runMerge(ctx: AppContext, request: FastifyRequest<{ Params: { org: string; repo: string }; Body: MergeBody }>, apply: boolean): Promise<MergeAnswer> {
  const target = await writeTarget(ctx, request, request.params.org, request.params.repo, apply ? 'write' : 'read');
  const { base, head, strategy = 'merge', message, expectedBase } = request.body;
  const ref = `refs/heads/${base}`;
  const current = await currentRef(ctx, target.gitDir, ref);
  if (current === null) throw new GroveError('not_found', `base branch ${base} not found`);
  requireExpected(ref, current, expectedBase);
  const theirs = await commitFor(ctx, target.gitDir, head, 'head');
  if (await isAncestor(ctx.repos.git, target.gitDir, theirs, current)) {
    throw new GroveError('unprocessable', `${base} already contains ${head}: nothing to merge`);
  }
  const fastForward = await isAncestor(ctx.repos.git, target.gitDir, current, theirs);
  if (apply) await requireRefWrite(ctx, target, { ref, kind: 'update', forced: false });
  if (strategy === 'fast-forward') {
    if (!fastForward) throw new GroveError('unprocessable', `${base} cannot be fast-forwarded to ${head}: they have diverged (use strategy merge or squash)`);
    const tree = (await ctx.repos.git.check(['rev-parse', `${theirs}^{tree}`], { gitDir: target.gitDir })).toString().trim();
    if (apply) await applyRefUpdate(ctx, target, { ref, oldOid: current, newOid: theirs }, [{ type: 'merge.completed', payload: { base, head, strategy, sha: theirs } }]);
    return { base, head, strategy, sha: theirs, tree, parents: [], fastForward: true };
  }
  const quarantine = await Quarantine.create(target.gitDir);
  try {
    if (strategy === 'rebase') {
      const answer = await rebaseOnto(ctx, target, quarantine, current, theirs, { base, head, fastForward });
      if (apply) {
        await quarantine.migrate();
        await applyRefUpdate(ctx, target, { ref, oldOid: current, newOid: answer.sha }, [{ type: 'merge.completed', payload: { base, head, strategy, sha: answer.sha } }]);
      }
      return answer;
    }
    const merged = await mergeTrees(ctx.repos.git, target.gitDir, quarantine.env, current, theirs);
    if (!merged.clean) {
      throw new GroveError('merge_conflict', `merging ${head} into ${base} conflicts in ${merged.conflicts.length} path(s); nothing was changed`, { conflicts: merged.conflicts });
    }
    const who = signatureOf(target);
    const parents = strategy === 'merge' ? [current, theirs] : [current];
    const built = await ctx.repos.commits.build(target.gitDir, quarantine, {
      parents,
      tree: merged.tree,
      changes: [],
      message: message ?? (strategy === 'merge' ? `Merge ${head} into ${base}` : `Squash ${head} into ${base}`),
      author: who,
      committer: who,
      allowEmpty: true,
    });
    if (!built.ok) throw new GroveError('unprocessable', built.reason);
    if (apply) {
      await quarantine.migrate();
      await applyRefUpdate(ctx, target, { ref, oldOid: current, newOid: built.sha }, [{ type: 'merge.completed', payload: { base, head, strategy, sha: built.sha } }]);
    }
    return { base, head, strategy, sha: built.sha, tree: built.tree, parents, fastForward };
  } finally {
    await quarantine.remove();
  }
}

/** Replays head's own commits (merges dropped, as git rebase does) onto base. */
async function rebaseOnto(ctx: AppContext, target: WriteTarget, quarantine: Quarantine, current: string, theirs: string, names: { base: string; head: string; fastForward: boolean }): Promise<MergeAnswer> {
  const list = await ctx.repos.git.check(['rev-list', '--reverse', '--no-merges', `--max-count=${MAX_REPLAYED_COMMITS + 1}`, `${current}..${theirs}`], { gitDir: target.gitDir });
  const commits = list.toString().trim().split('\n').filter(Boolean);
  if (commits.length > MAX_REPLAYED_COMMITS) throw new GroveError('unprocessable', `rebase replays at most ${MAX_REPLAYED_COMMITS} commits`);
  const who = signatureOf(target);
  const replay = await replayCommits(ctx.repos.git, target.gitDir, quarantine.env, current, commits, who);
  if (!replay.ok) {
    if ('conflicts' in replay) {
      throw new GroveError('merge_conflict', `replaying ${replay.commit} onto ${names.base} conflicts in ${replay.conflicts.length} path(s); nothing was changed`, { commit: replay.commit, conflicts: replay.conflicts });
    }
    throw new GroveError('unprocessable', replay.reason);
  }
  return { base: names.base, head: names.head, strategy: 'rebase', sha: replay.tip, tree: replay.tree, parents: [], fastForward: names.fastForward };
}

function signatureOf(target: WriteTarget): Signature {
  return target.principal.kind === 'key'
    ? { name: target.principal.name ?? target.principal.id, email: `${target.principal.id}@grove.invalid` }
    : { name: 'Grove', email: 'root@grove.invalid' };
}

const mergeBody = {
  type: 'object',
  required: ['base', 'head'],
  additionalProperties: false,
  properties: {
    base: { type: 'string', description: 'The branch that moves' },
    head: { type: 'string', description: 'The branch (or commit) merged into it' },
    strategy: { type: 'string', enum: ['fast-forward', 'merge', 'squash', 'rebase'], default: 'merge', description: 'rebase replays head\'s commits (merges dropped) onto base' },
    message: { type: 'string', minLength: 1, maxLength: 65536 },
    expectedBase: { type: 'string', pattern: '^[0-9a-f]{40}$', description: 'Merge only if base is still here' },
  },
} as const;

const mergeSchema = {
  $id: 'MergeResult',
  type: 'object',
  required: ['base', 'head', 'strategy', 'sha', 'tree', 'parents', 'fastForward'],
  properties: {
    base: { type: 'string' },
    head: { type: 'string' },
    strategy: { type: 'string' },
    sha: { type: 'string', description: 'The new tip of base (in a preview: the commit it would get)' },
    tree: { type: 'string' },
    parents: { type: 'array', items: { type: 'string' } },
    fastForward: { type: 'boolean', description: 'Whether base could be fast-forwarded to head' },
  },
} as const;

const params = { type: 'object', required: ['org', 'repo'], properties: { org: { type: 'string' }, repo: { type: 'string' } } } as const;

export async function mergeRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.addSchema(mergeSchema);
  app.post<{ Params: { org: string; repo: string }; Body: MergeBody }>('/repos/:org/:repo/merges', {
    schema: {
      tags: ['merges'],
      summary: 'Merge a branch into another and move it (409 merge_conflict with paths and hunks; nothing moves)',
      params,
      body: mergeBody,
      response: { 201: { $ref: 'MergeResult#' }, ...errorResponses, 422: { $ref: 'Error#' } },
    },
  }, async (request, reply) => idempotent(ctx, request, reply, async () => ({ status: 201, body: await runMerge(ctx, request, true) })));

  app.post<{ Params: { org: string; repo: string }; Body: MergeBody }>('/repos/:org/:repo/merges/preview', {
    schema: {
      tags: ['merges'],
      summary: 'Answer what a merge would do, without moving anything',
      params,
      body: mergeBody,
      response: { 200: { $ref: 'MergeResult#' }, ...errorResponses, 422: { $ref: 'Error#' } },
    },
  }, async (request) => runMerge(ctx, request, false));
}
