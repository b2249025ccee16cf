/**
 * Answers a blob's bytes for the read API (contents by path, blobs by id): 304 when the
 * client's ETag matches, 206 for one satisfiable range, 416 for an unsatisfiable one, the
 * whole blob otherwise — always streamed (from git, or the chunk store for big blobs), never buffered.
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GroveError } from '../errors.ts';
import { decideRange, notModified, rangeApplies } from '../http/range.ts';
import type { PathRead } from '../repo/path-reader.ts';
import type { ObjectInfo } from '../repo/read-objects.ts';
import type { Bigstore } from '../bigstore/bigstore.ts';
import { isBigBlob } from '../repo/big-blob.ts';

type BlobRead = Pick<PathRead, 'open' | 'discard'>;

/**
 * A big blob is read from the chunk store when it holds it (a range costs O(chunk), not a
 * scan from byte 0); otherwise from git, and the store ingests it for the next read.
 */
export function preferChunkStore(store: Bigstore, target: { readonly repoId: string; readonly gitDir: string }, blob: ObjectInfo, read: BlobRead): BlobRead {
  if (!isBigBlob(blob.size) || !store.serves(target.repoId, target.gitDir, blob.oid)) return read;
  return {
    open: (range) => {
      read.discard();
      return store.open(blob.oid, range);
    },
    discard: () => read.discard(),
  };
}

/** A blob the chunk store holds, read from it alone (git may lack it: evicted). */
export function fromChunkStore(store: Bigstore, oid: string): BlobRead {
  return { open: (range) => store.open(oid, range), discard: () => undefined };
}

export interface BlobAnswer {
  readonly contentType: string;
  /** Extra headers of every answer (X-Grove-Commit, Cache-Control). */
  readonly headers: Readonly<Record<string, string>>;
}

export function sendBlob(request: FastifyRequest, reply: FastifyReply, blob: ObjectInfo, read: BlobRead, answer: BlobAnswer): FastifyReply {
  const etag = `"${blob.oid}"`;
  const common = { ETag: etag, 'Accept-Ranges': 'bytes', ...answer.headers };
  if (notModified(header(request, 'if-none-match'), etag)) {
    read.discard();
    return reply.code(304).headers(common).send();
  }
  const decision = rangeApplies(header(request, 'if-range'), etag) ? decideRange(header(request, 'range'), blob.size) : { kind: 'full' as const };
  if (decision.kind === 'unsatisfiable') {
    read.discard();
    void reply.headers({ ...common, 'Content-Range': `bytes */${blob.size}` });
    throw new GroveError('range_not_satisfiable', `the range ${JSON.stringify(header(request, 'range'))} is outside the blob (${blob.size} bytes)`);
  }
  const range = decision.kind === 'partial' ? { start: decision.start, end: decision.end } : null;
  const headers: Record<string, string> = { ...common, 'Content-Type': answer.contentType, 'X-Content-Type-Options': 'nosniff' };
  if (request.method === 'HEAD') {
    // Headers only: git is stopped before it sends a byte.
    read.discard();
    headers['Content-Length'] = String(range === null ? blob.size : range.end - range.start + 1);
    if (range !== null) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${blob.size}`;
    // An empty stream: Fastify's HEAD handling keeps the Content-Length of a stream answer.
    return reply.code(range === null ? 200 : 206).headers(headers).send(Readable.from([]));
  }
  if (range === null) {
    headers['Content-Length'] = String(blob.size);
    return reply.code(200).headers(headers).send(read.open(null));
  }
  headers['Content-Length'] = String(range.end - range.start + 1);
  headers['Content-Range'] = `bytes ${range.start}-${range.end}/${blob.size}`;
  return reply.code(206).headers(headers).send(read.open(range));
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
