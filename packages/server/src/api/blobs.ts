/**
 * A blob by its object id: `GET|HEAD /repos/{org}/{repo}/blobs/{oid}`. Content-addressed,
 * so the answer never changes: ETag `"<oid>"`, `Cache-Control: immutable`, one bytes Range
 * (206/416), If-None-Match (304); HEAD gives the size without the bytes. Streamed from
 * git, or for a big blob from the chunk store once it holds it.
 * Only blobs in the repository's own objects are served (its network: a fork sees what it
 * shares with its parent), so an id from another tenant's repository is a 404.
 *
 * `GET …/blobs/{oid}/chunks` lists a big blob's content-defined chunks (SHA-256, offset,
 * length): a client holding an older version downloads only the chunks it lacks.
 */
import type { FastifyInstance } from 'fastify';
import { GroveError, notFound } from '../errors.ts';
import type { AppContext } from '../http/context.ts';
import { readBlob } from '../repo/path-reader.ts';
import { BIG_BLOB_BYTES, isBigBlob } from '../repo/big-blob.ts';
import { busyAsUnavailable, clientSignal, openForRead, repoParams } from './read-common.ts';
import { errorResponses } from './schemas.ts';
import { fromChunkStore, preferChunkStore, sendBlob } from './send-blob.ts';

const OID = /^[0-9a-f]{40}$/;
/** How long a chunk listing waits for a big blob's first ingest before answering 503. */
const LISTING_WAIT_MS = 10_000;

const chunkListingSchema = {
  type: 'object',
  required: ['oid', 'size', 'chunks'],
  properties: {
    oid: { type: 'string' },
    size: { type: 'integer' },
    chunks: {
      type: 'array',
      description: 'The blob\'s chunks in order; together they cover it exactly',
      items: {
        type: 'object',
        required: ['hash', 'offset', 'length'],
        properties: { hash: { type: 'string', description: 'SHA-256 of the chunk\'s bytes (hex)' }, offset: { type: 'integer' }, length: { type: 'integer' } },
      },
    },
  },
} as const;

function checkOid(oid: string): void {
  if (!OID.test(oid)) throw new GroveError('invalid_request', `${JSON.stringify(oid.slice(0, 100))} is not a full object id (40 lowercase hex digits)`);
}
const binary = { schema: { type: 'string', format: 'binary' } } as const;
const blobParams = { type: 'object', required: ['org', 'repo', 'oid'], properties: { ...repoParams, oid: { type: 'string', description: 'The blob\'s full object id (40 hex digits)' } } } as const;

export async function blobRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Params: { org: string; repo: string; oid: string } }>('/repos/:org/:repo/blobs/:oid', {
    schema: {
      tags: ['contents'],
      summary: 'Read a blob by its object id (raw bytes; ETag, If-None-Match, Range; HEAD for the size)',
      description: 'Answers the bytes as application/octet-stream with ETag "<oid>", Cache-Control immutable and Accept-Ranges; If-None-Match answers 304, a single bytes Range 206 (416 when unsatisfiable). HEAD answers the same headers (Content-Length is the size) without the bytes. 404 for an id that is not a blob of this repository.',
      params: blobParams,
      response: {
        200: { description: 'The blob', content: { 'application/octet-stream': binary } },
        206: { description: 'The requested byte range of the blob', content: { 'application/octet-stream': binary } },
        304: { description: 'Not modified (If-None-Match matched the ETag)', type: 'null' },
        ...errorResponses,
        416: { $ref: 'Error#' },
        503: { $ref: 'Error#' },
      },
    },
  }, async (request, reply) => {
    const { org, repo, oid } = request.params;
    checkOid(oid);
    const target = await openForRead(ctx, request, org, repo);
    const answer = { contentType: 'application/octet-stream', headers: { 'Cache-Control': 'private, max-age=31536000, immutable' } };
    // A big blob the store holds for this repository needs no git at all (git confirmed it when it was linked).
    const stored = ctx.bigstore.heldFor(target.repoId, oid);
    if (stored !== null) return sendBlob(request, reply, stored, fromChunkStore(ctx.bigstore, oid), answer);
    const signal = clientSignal(ctx, request, reply);
    try {
      const read = await readBlob(ctx.repos.git, target.gitDir, oid, signal);
      if (read.object === null || read.object.type !== 'blob') throw notFound(`blob ${oid} in ${org}/${repo}`);
      return sendBlob(request, reply, read.object, preferChunkStore(ctx.bigstore, target, read.object, read), answer);
    } catch (error) {
      throw busyAsUnavailable(error, reply);
    }
  });

  app.get<{ Params: { org: string; repo: string; oid: string } }>('/repos/:org/:repo/blobs/:oid/chunks', {
    schema: {
      tags: ['contents'],
      summary: 'List a big blob\'s content-defined chunks (for downloads that skip the chunks a client already has)',
      description: `The chunks of a blob of at least ${BIG_BLOB_BYTES / 1024 / 1024} MiB as the chunk store cut them (Gear CDC, 8/64/128 KiB; the same chunking the SDK exports). A client that holds an older version chunks it the same way, keeps the chunks whose SHA-256 match, and fetches the rest with Range requests of the blob. 422 for a smaller blob; 503 with Retry-After while a big blob's first ingest is still running.`,
      params: blobParams,
      response: { 200: chunkListingSchema, ...errorResponses, 422: { $ref: 'Error#' }, 503: { $ref: 'Error#' } },
    },
  }, async (request, reply) => {
    const { org, repo, oid } = request.params;
    checkOid(oid);
    const target = await openForRead(ctx, request, org, repo);
    // Held for this repository: listed from the store (git may no longer have it: evicted).
    const held = ctx.bigstore.heldFor(target.repoId, oid) !== null ? ctx.bigstore.chunkListing(oid) : null;
    if (held !== null) return held;
    const signal = clientSignal(ctx, request, reply);
    try {
      const read = await readBlob(ctx.repos.git, target.gitDir, oid, signal);
      read.discard();
      if (read.object === null || read.object.type !== 'blob') throw notFound(`blob ${oid} in ${org}/${repo}`);
      if (!isBigBlob(read.object.size)) throw new GroveError('unprocessable', `blob ${oid} is ${read.object.size} bytes: chunk listings are kept for blobs of at least ${BIG_BLOB_BYTES} bytes (read it whole)`);
      let listing = ctx.bigstore.serves(target.repoId, target.gitDir, oid) ? ctx.bigstore.chunkListing(oid) : null;
      if (listing === null) {
        const ingested = ctx.bigstore.ingest(target.repoId, target.gitDir, oid).then(() => true, () => false);
        const waited = await Promise.race([ingested, new Promise<false>((resolve) => setTimeout(() => resolve(false), LISTING_WAIT_MS).unref())]);
        listing = waited ? ctx.bigstore.chunkListing(oid) : null;
      }
      if (listing === null) {
        void reply.header('Retry-After', '10');
        throw new GroveError('unavailable', `blob ${oid} is still being indexed into the chunk store; retry shortly`);
      }
      return listing;
    } catch (error) {
      throw busyAsUnavailable(error, reply);
    }
  });
}
