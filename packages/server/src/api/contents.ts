/**
 * Reading files without a clone: `GET /repos/{org}/{repo}/contents/{path}?ref=` (a
 * file's raw bytes, streamed, with ETag, 304 and Range; a directory as JSON),
 * `GET .../tree/{ref}?path=&recursive=` and `GET .../archive/{ref}.tar.gz|.zip`.
 * Read scope; refs and paths are validated in read-common.ts.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GroveError, notFound } from '../errors.ts';
import { mayLackBlobs } from '../repo/evict-blobs.ts';
import { lackingFiles, streamSplicedTarGz } from '../repo/spliced-archive.ts';
import type { AppContext } from '../http/context.ts';
import { readPath } from '../repo/path-reader.ts';
import { listTree, streamArchive, type ArchiveFormat } from '../repo/read-objects.ts';
import { busyAsUnavailable, clientSignal, entrySchema, normalizePath, openForRead, refNotFound, repoParams, resolveRead, revisionFor, storedSize } from './read-common.ts';
import { contentTypeFor } from './content-type.ts';
import { errorResponses } from './schemas.ts';
import { fromChunkStore, preferChunkStore, sendBlob } from './send-blob.ts';

/** Most entries one listing returns; `truncated` says when there were more. */
export const MAX_TREE_ENTRIES = 10_000;

const readErrors = { ...errorResponses, 416: { $ref: 'Error#' }, 503: { $ref: 'Error#' } } as const;

const dirSchema = {
  type: 'object',
  required: ['type', 'path', 'ref', 'sha', 'entries', 'truncated'],
  properties: {
    type: { type: 'string', enum: ['dir'] },
    path: { type: 'string' },
    ref: { type: 'string' },
    sha: { type: 'string', description: 'The commit read' },
    entries: { type: 'array', items: entrySchema },
    truncated: { type: 'boolean', description: `True when the directory has more than ${MAX_TREE_ENTRIES} entries` },
  },
} as const;

const treeListingSchema = {
  type: 'object',
  required: ['ref', 'sha', 'path', 'entries', 'truncated'],
  properties: {
    ref: { type: 'string' },
    sha: { type: 'string', description: 'The commit read' },
    path: { type: 'string' },
    entries: { type: 'array', items: entrySchema },
    truncated: { type: 'boolean', description: 'True when there were more entries than the limit' },
  },
} as const;

const binary = { schema: { type: 'string', format: 'binary' } } as const;

interface ContentsRequest {
  Params: { org: string; repo: string; '*'?: string };
  Querystring: { ref?: string };
}

export async function contentRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const contentsSchema = {
    tags: ['contents'],
    summary: 'Read a file (raw bytes; ETag, If-None-Match, Range) or list a directory (JSON)',
    description: 'A file answers its bytes with Content-Type guessed from the name, ETag "<blob sha>", X-Grove-Commit and Accept-Ranges; If-None-Match answers 304, a single bytes Range 206 (416 when unsatisfiable). A directory answers application/json.',
    params: { type: 'object', required: ['org', 'repo'], properties: { ...repoParams, '*': { type: 'string', description: 'Path in the repository (empty: the root)' } } },
    querystring: { type: 'object', additionalProperties: false, properties: { ref: { type: 'string', description: 'Branch, tag or commit sha (default: the default branch)' } } },
    response: {
      200: { description: 'The file, or the directory listing', content: { 'application/octet-stream': binary, 'text/plain': binary, 'application/json': { schema: dirSchema } } },
      206: { description: 'The requested byte range of the file', content: { 'application/octet-stream': binary } },
      304: { description: 'Not modified (If-None-Match matched the ETag)', type: 'null' },
      ...readErrors,
    },
  } as const;
  const contents = async (request: FastifyRequest<ContentsRequest>, reply: FastifyReply) => {
    const { org, repo } = request.params;
    const target = await openForRead(ctx, request, org, repo);
    const path = normalizePath(request.params['*']);
    const signal = clientSignal(ctx, request, reply);
    try {
      const { ref, revision } = await revisionFor(ctx, target, request.query.ref);
      const read = await readPath(ctx.repos.git, target.gitDir, revision, path, signal);
      if (read.commit === null) throw refNotFound(request.query.ref, ref);
      // Evicted from git: the chunk store holds it for this repository.
      const held = read.lacking === undefined ? null : ctx.bigstore.heldFor(target.repoId, read.lacking);
      if (held !== null) return sendBlob(request, reply, held, fromChunkStore(ctx.bigstore, held.oid), { contentType: contentTypeFor(path), headers: { 'X-Grove-Commit': read.commit } });
      const object = read.object;
      if (object === null || (object.type !== 'blob' && object.type !== 'tree')) throw notFound(`path ${JSON.stringify(path)} at ${ref}`);
      if (object.type === 'tree') {
        const listing = await listTree(ctx.repos.git, target.gitDir, object.oid, path, { recursive: false, max: MAX_TREE_ENTRIES, signal });
        return reply.header('X-Grove-Commit', read.commit).send({ type: 'dir', path, ref, sha: read.commit, entries: listing.entries, truncated: listing.truncated });
      }
      return sendBlob(request, reply, object, preferChunkStore(ctx.bigstore, target, object, read), { contentType: contentTypeFor(path), headers: { 'X-Grove-Commit': read.commit } });
    } catch (error) {
      throw busyAsUnavailable(error, reply);
    }
  };
  app.get<ContentsRequest>('/repos/:org/:repo/contents', { schema: { ...contentsSchema, hide: true } }, contents);
  app.get<ContentsRequest>('/repos/:org/:repo/contents/*', { schema: contentsSchema }, contents);

  type TreeRequest = { Params: { org: string; repo: string; '*'?: string }; Querystring: { path?: string; recursive: boolean; limit: number } };
  const treeSchema = {
    tags: ['contents'],
    summary: 'List a tree at a ref: one directory, or everything below it with recursive=true',
    params: { type: 'object', required: ['org', 'repo'], properties: { ...repoParams, '*': { type: 'string', description: 'Branch, tag or commit sha (empty: the default branch)' } } },
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        path: { type: 'string', description: 'Directory to list (default: the root)' },
        recursive: { type: 'boolean', default: false, description: 'Every entry below the directory, directories included' },
        limit: { type: 'integer', minimum: 1, maximum: MAX_TREE_ENTRIES, default: MAX_TREE_ENTRIES, description: 'Most entries to return' },
      },
    },
    response: { 200: treeListingSchema, ...readErrors },
  } as const;
  const tree = async (request: FastifyRequest<TreeRequest>, reply: FastifyReply) => {
    const { org, repo } = request.params;
    const target = await openForRead(ctx, request, org, repo);
    const path = normalizePath(request.query.path);
    const signal = clientSignal(ctx, request, reply);
    try {
      const read = await resolveRead(ctx, target, request.params['*'] || undefined, [path], signal);
      const object = read.objects[0] ?? null;
      if (object === null || object.type !== 'tree') throw notFound(`directory ${JSON.stringify(path)} at ${read.ref}`);
      const listing = await listTree(ctx.repos.git, target.gitDir, object.oid, path, { recursive: request.query.recursive, max: request.query.limit, signal });
      return reply.header('X-Grove-Commit', read.commit).send({ ref: read.ref, sha: read.commit, path, entries: listing.entries, truncated: listing.truncated });
    } catch (error) {
      throw busyAsUnavailable(error, reply);
    }
  };
  app.get<TreeRequest>('/repos/:org/:repo/tree', { schema: { ...treeSchema, hide: true } }, tree);
  app.get<TreeRequest>('/repos/:org/:repo/tree/*', { schema: treeSchema }, tree);

  app.get<{ Params: { org: string; repo: string; '*': string } }>('/repos/:org/:repo/archive/*', {
    schema: {
      tags: ['contents'],
      summary: 'Download the files of a ref as an archive: archive/{ref}.tar.gz or archive/{ref}.zip (streamed)',
      description: 'Big files evicted from git to the chunk store are appended to a .tar.gz from the store; a .zip of a tree holding such files answers 422 (ask for .tar.gz).',
      params: { type: 'object', required: ['org', 'repo', '*'], properties: { ...repoParams, '*': { type: 'string', description: '{ref}.tar.gz or {ref}.zip' } } },
      response: {
        200: { description: 'The archive; every path is under {repo}-{ref}/', content: { 'application/gzip': binary, 'application/zip': binary } },
        ...readErrors,
        422: { $ref: 'Error#' },
      },
    },
  }, async (request, reply) => {
    const { org, repo } = request.params;
    const target = await openForRead(ctx, request, org, repo);
    const name = request.params['*'];
    const format: ArchiveFormat | null = name.endsWith('.tar.gz') ? 'tar.gz' : name.endsWith('.zip') ? 'zip' : null;
    if (format === null) throw notFound(`archive ${JSON.stringify(name)} (ask for {ref}.tar.gz or {ref}.zip)`);
    const ref = name.slice(0, -(format.length + 1));
    const signal = clientSignal(ctx, request, reply);
    try {
      const read = await resolveRead(ctx, target, ref, [], signal);
      const prefix = `${target.repoName}-${ref.replace(/[^A-Za-z0-9._-]+/g, '-')}`.slice(0, 200);
      // Big files evicted from git are added from the chunk store (tar.gz only).
      const lacking = (await mayLackBlobs(target.gitDir)) ? await lackingFiles(ctx.repos.git, target.gitDir, read.commit, storedSize(ctx, target), signal) : [];
      if (lacking.length > 0 && format === 'zip') throw new GroveError('unprocessable', `${lacking.length} big file(s) of ${ref} are kept in the chunk store, which zip archives cannot hold yet: ask for ${ref}.tar.gz`);
      const stream = lacking.length > 0
        ? await streamSplicedTarGz(ctx.repos.git, target.gitDir, read.commit, prefix, lacking, (oid) => ctx.bigstore.open(oid, null), signal)
        : await streamArchive(ctx.repos.git, target.gitDir, read.commit, format, prefix, signal);
      return reply
        .code(200)
        .headers({
          'Content-Type': format === 'zip' ? 'application/zip' : 'application/gzip',
          'Content-Disposition': `attachment; filename="${prefix}.${format}"`,
          'X-Grove-Commit': read.commit,
        })
        .send(stream);
    } catch (error) {
      throw busyAsUnavailable(error, reply);
    }
  });
}
