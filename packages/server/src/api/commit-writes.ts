/**
 * Commits without a clone:
 *
 * - `POST /api/v1/repos/{org}/{repo}/commits` with JSON file changes (adds, deletes, moves);
 * - `PUT /api/v1/repos/{org}/{repo}/files/{path}?branch=&message=` with the raw file as the
 *   body, streamed to disk, for contents too large for JSON.
 *
 * Both build the commit in a quarantine, then move the branch with the same
 * compare-and-swap transaction and the same authorization as a push.
 */
import { markEvicted } from '../repo/evict-blobs.ts';
import { isBigBlob } from '../repo/big-blob.ts';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { forgetBranchTtls } from '../db/branch-ttls.ts';
import { GroveError } from '../errors.ts';
import { checkWritableRefName } from '../git/ref-name.ts';
import type { AppContext } from '../http/context.ts';
import { checkTreePath, type FileChange, type FileMode, type Signature } from '../repo/commit-builder.ts';
import { Quarantine } from '../repo/quarantine.ts';
import { idempotent } from './idempotency.ts';
import { applyRefUpdate, commitFor, currentRef, requireExpected, requireRefWrite, writeTarget, ZERO_OID, type WriteTarget } from './ref-writes.ts';
import { errorResponses } from './schemas.ts';

const MAX_FILES = 10_000;
const JSON_BODY_LIMIT = 32 * 1024 * 1024;

interface FileInput {
  path: string;
  content?: string;
  encoding?: 'utf8' | 'base64';
  mode?: FileMode;
  delete?: boolean;
  moveFrom?: string;
}

interface CommitBody {
  branch: string;
  expectedHead?: string;
  startFrom?: string;
  message: string;
  author?: Signature;
  committer?: Signature;
  files: FileInput[];
  allowEmpty?: boolean;
}

export interface CommitRequest {
  readonly branch: string;
  readonly expectedHead?: string | undefined;
  readonly startFrom?: string | undefined;
  readonly message: string;
  readonly author?: Signature | undefined;
  readonly committer?: Signature | undefined;
  readonly allowEmpty: boolean;
  /** Builds the changes once the quarantine exists (raw uploads spool into it). */
  readonly changes: (quarantine: Quarantine) => Promise<FileChange[]>;
}

export interface CommitResult {
  sha: string;
  branch: string;
  parents: string[];
  tree: string;
}

function defaultSignature(target: WriteTarget): Signature {
  const p = target.principal;
  if (p.kind === 'key') return { name: p.name ?? p.id, email: `${p.id}@grove.invalid` };
  if (p.kind === 'signed') return { name: `signed token ${p.id}`, email: `${p.org}@grove.invalid` };
  return { name: 'Grove', email: 'root@grove.invalid' };
}

/** Parses JSON file changes into FileChange values; 400 with the first problem. */
export function parseFileChanges(files: readonly FileInput[]): FileChange[] {
  if (files.length > MAX_FILES) throw new GroveError('invalid_request', `at most ${MAX_FILES} files per commit`);
  const seen = new Set<string>();
  return files.map((file, index) => {
    const where = `files[${index}]`;
    const problem = checkTreePath(file.path);
    if (problem) throw new GroveError('invalid_request', `${where}.path: ${problem}`);
    if (seen.has(file.path)) throw new GroveError('invalid_request', `${where}.path: ${file.path} appears twice`);
    seen.add(file.path);
    const kinds = [file.content !== undefined, file.delete === true, file.moveFrom !== undefined].filter(Boolean).length;
    if (kinds !== 1) throw new GroveError('invalid_request', `${where} must have exactly one of content, delete: true, moveFrom`);
    if (file.delete === true) return { path: file.path, delete: true };
    if (file.moveFrom !== undefined) {
      const moveProblem = checkTreePath(file.moveFrom);
      if (moveProblem) throw new GroveError('invalid_request', `${where}.moveFrom: ${moveProblem}`);
      return { path: file.path, moveFrom: file.moveFrom };
    }
    const content = Buffer.from(file.content!, file.encoding === 'base64' ? 'base64' : 'utf8');
    return { path: file.path, content, mode: file.mode ?? '100644' };
  });
}

/** The whole commit flow; shared by the JSON and the raw-upload routes. */
export async function commitToBranch(ctx: AppContext, target: WriteTarget, request: CommitRequest): Promise<CommitResult> {
  const ref = `refs/heads/${request.branch}`;
  const nameProblem = checkWritableRefName(ref);
  if (nameProblem) throw new GroveError('invalid_name', `branch ${JSON.stringify(request.branch)}: ${nameProblem}`);
  const { gitDir } = target;
  const current = await currentRef(ctx, gitDir, ref);
  requireExpected(ref, current, request.expectedHead);
  let parents: string[];
  if (current !== null) parents = [current];
  else if (request.startFrom !== undefined) parents = [await commitFor(ctx, gitDir, request.startFrom, 'startFrom')];
  else if ((await ctx.repos.refs.read(gitDir)).refs.length === 0) parents = [];
  else throw new GroveError('unprocessable', `branch ${request.branch} does not exist; pass startFrom to create it`);
  await requireRefWrite(ctx, target, { ref, kind: current === null ? 'create' : 'update', forced: false });
  const quarantine = await Quarantine.create(gitDir);
  try {
    const changes = await request.changes(quarantine);
    const signature = defaultSignature(target);
    const built = await ctx.repos.commits.build(gitDir, quarantine, {
      parents,
      changes,
      message: request.message,
      author: request.author ?? request.committer ?? signature,
      committer: request.committer ?? signature,
      allowEmpty: request.allowEmpty,
    });
    if (!built.ok) throw new GroveError('unprocessable', built.reason);
    await quarantine.migrate();
    await applyRefUpdate(ctx, target, { ref, oldOid: current ?? ZERO_OID, newOid: built.sha }, [
      { type: 'commit.created', payload: { branch: request.branch, sha: built.sha, parents: built.parents, message: request.message.split('\n')[0] } },
    ]);
    if (current === null) await forgetBranchTtls(ctx.db, target.row.id, [ref]);
    return { sha: built.sha, branch: request.branch, parents: [...built.parents], tree: built.tree };
  } finally {
    await quarantine.remove();
  }
}

const signatureSchema = {
  type: 'object',
  required: ['name', 'email'],
  additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, email: { type: 'string', maxLength: 200 }, date: { type: 'string', maxLength: 64 } },
} as const;

const commitResultSchema = {
  $id: 'CommitResult',
  type: 'object',
  required: ['sha', 'branch', 'parents', 'tree'],
  properties: { sha: { type: 'string' }, branch: { type: 'string' }, parents: { type: 'array', items: { type: 'string' } }, tree: { type: 'string' } },
} as const;

const repoParams = { type: 'object', required: ['org', 'repo'], properties: { org: { type: 'string' }, repo: { type: 'string' } } } as const;

export async function commitWriteRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.addSchema(commitResultSchema);
  // Raw uploads: the body is streamed by the handler.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  app.post<{ Params: { org: string; repo: string }; Body: CommitBody }>('/repos/:org/:repo/commits', {
    bodyLimit: JSON_BODY_LIMIT,
    schema: {
      tags: ['commits'],
      summary: 'Create a commit on a branch from file changes (atomic, compare-and-swap on expectedHead)',
      params: repoParams,
      headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', description: 'A retry with the same key returns the first answer' } } },
      body: {
        type: 'object',
        required: ['branch', 'message', 'files'],
        additionalProperties: false,
        properties: {
          branch: { type: 'string' },
          expectedHead: { type: 'string', pattern: '^[0-9a-f]{40}$', description: 'The branch must be here (zeros: must not exist)' },
          startFrom: { type: 'string', description: 'Branch, tag or sha to start a new branch from' },
          message: { type: 'string', minLength: 1, maxLength: 65536 },
          author: signatureSchema,
          committer: signatureSchema,
          allowEmpty: { type: 'boolean' },
          files: {
            type: 'array',
            items: {
              type: 'object',
              required: ['path'],
              additionalProperties: false,
              properties: {
                path: { type: 'string' },
                content: { type: 'string' },
                encoding: { type: 'string', enum: ['utf8', 'base64'] },
                mode: { type: 'string', enum: ['100644', '100755', '120000'] },
                delete: { type: 'boolean', const: true },
                moveFrom: { type: 'string' },
              },
            },
          },
        },
      },
      response: { 201: { $ref: 'CommitResult#' }, ...errorResponses, 422: { $ref: 'Error#' } },
    },
  }, async (request, reply) => {
    const target = await writeTarget(ctx, request, request.params.org, request.params.repo);
    const body = request.body;
    const changes = parseFileChanges(body.files);
    return idempotent(ctx, request, reply, async () => ({
      status: 201,
      body: await commitToBranch(ctx, target, {
        branch: body.branch,
        expectedHead: body.expectedHead,
        startFrom: body.startFrom,
        message: body.message,
        author: body.author,
        committer: body.committer,
        allowEmpty: body.allowEmpty ?? false,
        changes: async () => changes,
      }),
    }));
  });

  app.put<{ Params: { org: string; repo: string; '*': string }; Querystring: { branch: string; message: string; expectedHead?: string; startFrom?: string; mode?: FileMode } }>('/repos/:org/:repo/files/*', {
    schema: {
      tags: ['commits'],
      summary: 'Commit one file whose content is the raw request body (streamed; for large files)',
      params: { type: 'object', required: ['org', 'repo', '*'], properties: { org: { type: 'string' }, repo: { type: 'string' }, '*': { type: 'string', description: 'File path' } } },
      querystring: {
        type: 'object',
        required: ['branch', 'message'],
        additionalProperties: false,
        properties: {
          branch: { type: 'string' },
          message: { type: 'string', minLength: 1 },
          expectedHead: { type: 'string', pattern: '^[0-9a-f]{40}$' },
          startFrom: { type: 'string' },
          mode: { type: 'string', enum: ['100644', '100755'] },
        },
      },
      response: { 201: { $ref: 'CommitResult#' }, ...errorResponses, 422: { $ref: 'Error#' } },
    },
  }, async (request, reply) => {
    const filePath = request.params['*'];
    const problem = checkTreePath(filePath);
    if (problem) throw new GroveError('invalid_request', problem);
    const body = request.body as Readable | undefined;
    if (body === undefined || typeof body.pipe !== 'function') {
      throw new GroveError('unsupported_media_type', 'send the file as the body with Content-Type: application/octet-stream');
    }
    const target = await writeTarget(ctx, request, request.params.org, request.params.repo);
    const { branch, message, expectedHead, startFrom, mode } = request.query;
    const limit = ctx.config.limits.maxPackBytes;
    const declared = Number(request.headers['content-length'] ?? NaN);
    if (declared > limit) throw new GroveError('payload_too_large', `the file exceeds ${limit} bytes`);
    let uploaded = 0;
    let storedInChunkStore = false;
    const result = await commitToBranch(ctx, target, {
      branch,
      expectedHead,
      startFrom,
      message,
      allowEmpty: false,
      changes: async (quarantine) => {
        const spool = path.join(quarantine.dir, 'upload');
        let size = 0;
        let tooLarge = false;
        // Past the limit the rest is read and dropped, so the client gets the 413 rather than a reset.
        const bounded = async function* (): AsyncGenerator<Buffer> {
          for await (const chunk of body as AsyncIterable<Buffer>) {
            size += chunk.length;
            if (size > limit) tooLarge = true;
            if (!tooLarge) yield chunk;
          }
        };
        await pipeline(bounded(), createWriteStream(spool));
        if (tooLarge) throw new GroveError('payload_too_large', `the file exceeds ${limit} bytes`);
        uploaded = size;
        // Stored once: a big upload goes straight into the chunk store (durable before the ref
        // moves; in a cluster, published to the catalogue too), never into git.
        if (isBigBlob(size) && ctx.config.evictBigBlobs) {
          const { oid } = await ctx.bigstore.ingestFile(target.row.id, spool);
          if (ctx.bigBlobCatalogue !== null && (await ctx.bigBlobCatalogue.publish(target.row.id, [oid])).length === 0) throw new Error(`the cluster's chunk store did not take ${oid}`);
          await markEvicted(target.gitDir);
          storedInChunkStore = true;
          return [{ path: filePath, storedBlob: oid, mode: mode ?? '100644' }];
        }
        return [{ path: filePath, file: spool, mode: mode ?? '100644' }];
      },
    });
    // A big file git holds goes to the chunk store now, so its first Range read does not scan it from byte 0.
    if (isBigBlob(uploaded) && !storedInChunkStore) ctx.bigstore.scanInBackground(target.row.id, target.gitDir, [result.sha], result.parents);
    return reply.code(201).send(result);
  });
}
