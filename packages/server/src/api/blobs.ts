/**
 * A blob by its object id: `GET|HEAD /repos/{org}/{repo}/blobs/{oid}`. Content-addressed,
 * so the answer never changes: ETag `"<oid>"`, `Cache-Control: immutable`, one bytes Range
 * (206/416), If-None-Match (304); HEAD gives the size without the bytes. Streamed from git.
 * Only blobs in the repository's own objects are served (its network: a fork sees what it
 * shares with its parent), so an id from another tenant's repository is a 404.
 */
import type { FastifyInstance } from 'fastify';
import { GroveError, notFound } from '../errors.ts';
import type { AppContext } from '../http/context.ts';
import { readBlob } from '../repo/path-reader.ts';
import { busyAsUnavailable, clientSignal, openForRead, repoParams } from './read-common.ts';
import { errorResponses } from './schemas.ts';
import { sendBlob } from './send-blob.ts';

const OID = /^[0-9a-f]{40}$/;
const binary = { schema: { type: 'string', format: 'binary' } } as const;

export async function blobRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Params: { org: string; repo: string; oid: string } }>('/repos/:org/:repo/blobs/:oid', {
    schema: {
      tags: ['contents'],
      summary: 'Read a blob by its object id (raw bytes; ETag, If-None-Match, Range; HEAD for the size)',
      description: 'Answers the bytes as application/octet-stream with ETag "<oid>", Cache-Control immutable and Accept-Ranges; If-None-Match answers 304, a single bytes Range 206 (416 when unsatisfiable). HEAD answers the same headers (Content-Length is the size) without the bytes. 404 for an id that is not a blob of this repository.',
      params: { type: 'object', required: ['org', 'repo', 'oid'], properties: { ...repoParams, oid: { type: 'string', description: 'The blob\'s full object id (40 hex digits)' } } },
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
    if (!OID.test(oid)) throw new GroveError('invalid_request', `${JSON.stringify(oid.slice(0, 100))} is not a full object id (40 lowercase hex digits)`);
    const target = await openForRead(ctx, request, org, repo);
    const signal = clientSignal(ctx, request, reply);
    try {
      const read = await readBlob(ctx.repos.git, target.gitDir, oid, signal);
      if (read.object === null || read.object.type !== 'blob') throw notFound(`blob ${oid} in ${org}/${repo}`);
      return sendBlob(request, reply, read.object, read, {
        contentType: 'application/octet-stream',
        headers: { 'Cache-Control': 'private, max-age=31536000, immutable' },
      });
    } catch (error) {
      throw busyAsUnavailable(error, reply);
    }
  });
}
