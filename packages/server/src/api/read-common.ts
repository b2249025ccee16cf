/**
 * What the read routes (contents, tree, archive, commits, blame, compare) share:
 * opening a repository behind the read gate, validating refs and paths before they
 * get anywhere near git, resolving a ref to a commit, and the JSON schemas of
 * commits and tree entries.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { findRepo } from '../db/repos.ts';
import { GroveError, notFound } from '../errors.ts';
import { checkRefFormat } from '../git/ref-name.ts';
import type { AppContext } from '../http/context.ts';
import { LimiterTimeoutError } from '../repo/limiter.ts';
import { resolveRevision, revisionOf, type ObjectInfo } from '../repo/read-objects.ts';
import { mayLackBlobs } from '../repo/evict-blobs.ts';
import { blobAtPath } from '../repo/path-reader.ts';
import { requireAccess } from './principal.ts';

export interface ReadTarget {
  readonly repoId: string;
  readonly gitDir: string;
  readonly defaultBranch: string;
  readonly repoName: string;
}

/** The read gate and the repository's location; 404 for a repository the caller may not see. */
export async function openForRead(ctx: AppContext, request: FastifyRequest, org: string, repo: string): Promise<ReadTarget> {
  requireAccess(request, 'read', { kind: 'repo', org, repo });
  const row = await findRepo(ctx.db, org, repo);
  if (!row) throw notFound(`repository ${org}/${repo}`);
  const gitDir = ctx.repos.gitDir(row.id);
  await ctx.repoCache.ensure({ id: row.id, gitDir, defaultBranch: row.default_branch }, request.answered);
  return { repoId: row.id, gitDir, defaultBranch: row.default_branch, repoName: row.name };
}

const MAX_REF_BYTES = 1024;
const MAX_PATH_BYTES = 4096;

/** 400 unless `ref` is a full or abbreviated id, HEAD, or a valid branch, tag or full ref name. */
export function checkRef(ref: string, what = 'ref'): void {
  const bad = (why: string) => new GroveError('invalid_request', `${what} ${JSON.stringify(ref.slice(0, 200))} is not a valid ref: ${why}`);
  if (ref === '') throw bad('it is empty');
  if (Buffer.byteLength(ref, 'utf8') > MAX_REF_BYTES) throw bad(`longer than ${MAX_REF_BYTES} bytes`);
  if (ref.startsWith('-')) throw bad('it starts with -');
  if (ref === 'HEAD' || /^[0-9a-f]{4,40}$/.test(ref)) return;
  const problem = checkRefFormat(ref.startsWith('refs/') ? ref : `refs/heads/${ref}`);
  if (problem) throw bad(problem);
}

/**
 * A repository path without leading or trailing slashes ('' is the root). 400 for
 * `.` or `..` components, empty components, a newline or NUL, or over 4096 bytes.
 */
export function normalizePath(path: string | undefined): string {
  const trimmed = (path ?? '').replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  const bad = (why: string) => new GroveError('invalid_request', `path ${JSON.stringify(trimmed.slice(0, 200))} is not valid: ${why}`);
  if (Buffer.byteLength(trimmed, 'utf8') > MAX_PATH_BYTES) throw bad(`longer than ${MAX_PATH_BYTES} bytes`);
  if (/[\n\0]/.test(trimmed)) throw bad('it contains a newline or NUL');
  for (const part of trimmed.split('/')) {
    if (part === '') throw bad('it contains an empty component (//)');
    if (part === '.' || part === '..') throw bad(`it contains a ${part} component`);
  }
  return trimmed;
}

export interface ResolvedRead {
  /** The ref as asked for (or the default branch). */
  readonly ref: string;
  readonly commit: string;
  readonly objects: (ObjectInfo | null)[];
}

/** The ref as asked for (default: the default branch) and the hex revision it names; 400 for an unsafe ref, 404 for an unknown one. */
export async function revisionFor(ctx: AppContext, target: ReadTarget, ref: string | undefined): Promise<{ ref: string; revision: string }> {
  const name = ref ?? target.defaultBranch;
  checkRef(name);
  const snapshot = await ctx.repos.refs.read(target.gitDir);
  const revision = revisionOf(snapshot, name);
  if (revision === null) throw refNotFound(ref, name);
  return { ref: name, revision };
}

export function refNotFound(ref: string | undefined, name: string): GroveError {
  return notFound(ref === undefined ? `default branch ${name} (the repository is empty)` : `ref ${name}`);
}

/** Resolves `ref` (default: the default branch) to a commit and looks up paths in it; 404 when the ref names no commit. */
export async function resolveRead(ctx: AppContext, target: ReadTarget, ref: string | undefined, paths: readonly string[] = [], signal?: AbortSignal): Promise<ResolvedRead> {
  const { ref: name, revision } = await revisionFor(ctx, target, ref);
  const resolved = await resolveRevision(ctx.repos.git, target.gitDir, revision, paths, signal);
  if (resolved === null) throw refNotFound(ref, name);
  // A path git names no object for may hold a big blob evicted to the chunk store.
  const objects = await Promise.all(resolved.objects.map(async (object, i) => {
    if (object !== null || paths[i] === '' || !(await mayLackBlobs(target.gitDir))) return object;
    const oid = await blobAtPath(ctx.repos.git, target.gitDir, resolved.commit, paths[i]!, signal);
    return oid === null ? null : ctx.bigstore.heldFor(target.repoId, oid);
  }));
  return { ref: name, commit: resolved.commit, objects };
}

/** The size of a big blob the chunk store holds for the repository (git may lack it: evicted). */
export function storedSize(ctx: AppContext, target: ReadTarget): (oid: string) => number | undefined {
  return (oid) => ctx.bigstore.heldFor(target.repoId, oid)?.size;
}

/**
 * Aborted when the client goes away, so git children working for it are killed; a
 * client that stops reading for the idle timeout is cut off (it would hold a git
 * process slot).
 */
export function clientSignal(ctx: AppContext, request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  request.raw.setTimeout(ctx.config.idleTimeoutMs, () => {
    controller.abort(new Error('idle timeout'));
    request.raw.socket.destroy();
  });
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client went away'));
  });
  return controller.signal;
}

/** A full git process queue is a retryable 503, not a server error. */
export function busyAsUnavailable(error: unknown, reply: FastifyReply): unknown {
  if (!(error instanceof LimiterTimeoutError)) return error;
  void reply.header('Retry-After', '5');
  return new GroveError('unavailable', 'the server is busy (git process queue timed out); retry shortly');
}

export const repoParams = { org: { type: 'string' }, repo: { type: 'string' } } as const;

const signatureSchema = {
  type: 'object',
  required: ['name', 'email', 'date'],
  properties: { name: { type: 'string' }, email: { type: 'string' }, date: { type: 'string', description: 'ISO 8601 with the original offset' } },
} as const;

export const commitSchema = {
  type: 'object',
  required: ['sha', 'parents', 'tree', 'message', 'author', 'committer'],
  properties: {
    sha: { type: 'string' },
    parents: { type: 'array', items: { type: 'string' } },
    tree: { type: 'string' },
    message: { type: 'string' },
    author: signatureSchema,
    committer: signatureSchema,
  },
} as const;

export const entrySchema = {
  type: 'object',
  required: ['name', 'path', 'type', 'mode', 'sha'],
  properties: {
    name: { type: 'string' },
    path: { type: 'string', description: 'From the repository root' },
    type: { type: 'string', enum: ['file', 'dir', 'symlink', 'submodule'] },
    mode: { type: 'string', description: '100644, 100755, 120000, 040000 or 160000' },
    sha: { type: 'string' },
    size: { type: 'integer', description: 'Bytes (files and symlinks only)' },
  },
} as const;
