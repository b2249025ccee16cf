/**
 * POST git-upload-pack: protocol v2 `ls-refs` answered from the ref view; v2 `fetch`,
 * `object-info` and every v0/v1 request streamed through `git upload-pack
 * --stateless-rpc`, clone-shaped ones through the pack cache.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { FastifyInstance, FastifyReply, RouteShorthandOptions } from 'fastify';
import { lsRefsResponse, parseLsRefsArgs } from '../git/ls-refs.ts';
import { pktLine, FLUSH_PKT } from '../git/pkt-line.ts';
import { encodeV2Request, parseV2Request, V2RequestError, type V2Request } from '../git/v2-request.ts';
import { blobOnlyFetchResponse, evictedAmong, wantedOids, wantsAnything, withoutWants } from '../bigstore/lazy-fetch.ts';
import { isGitForWindows, windowsWarnings } from '../bigstore/windows-clients.ts';
import { fetchCacheKey } from '../repo/pack-cache.ts';
import { packedBytes } from '../repo/packed-bytes.ts';
import { mayLackBlobs } from '../repo/evict-blobs.ts';
import { GroveError } from '../errors.ts';
import { LimiterTimeoutError } from '../repo/limiter.ts';
import type { AppContext } from './context.ts';
import { FairShareRefusal, shareKey } from './fair-share.ts';
import { NO_CACHE_HEADERS, BUSY_MESSAGE, type RepoParams, hasContentType, snapshotOrBusy, resolveRepo, protocolVersion, requestBody, readBounded, abandonBody, sendText, sendGit, transferSignal } from './git-http.ts';

export function registerUploadPack(app: FastifyInstance, ctx: AppContext, hide: RouteShorthandOptions): void {
  app.post<{ Params: RepoParams }>('/:org/:repo/git-upload-pack', hide, async (request, reply) => {
    const { signal, responding } = transferSignal(ctx, request, reply);
    if (!(await hasContentType(request, reply, 'application/x-git-upload-pack-request'))) return reply;
    const resolved = await resolveRepo(ctx, request, reply, 'read');
    if (resolved === null) return reply;
    let body: Buffer;
    try {
      body = await readBounded(requestBody(request), ctx.config.limits.maxNegotiationBytes);
    } catch (error) {
      if (error instanceof GroveError) {
        abandonBody(request);
        return sendText(reply, error.status, error.message);
      }
      throw error;
    }
    const version = protocolVersion(request.headers['git-protocol']);
    const contentType = 'application/x-git-upload-pack-result';
    let v2Command: V2Request | null = null;
    if (version === 2) {
      let command;
      try {
        command = parseV2Request(body);
      } catch (error) {
        if (error instanceof V2RequestError) return sendGit(reply, contentType, pktLine(`ERR ${error.message}\n`));
        throw error;
      }
      if (command === null) return sendGit(reply, contentType, Buffer.alloc(0));
      v2Command = command;
      ctx.metrics.fetches.inc({ protocol: 'v2', command: command.command });
      if (command.command === 'ls-refs') {
        let args;
        try {
          args = parseLsRefsArgs(command.args);
        } catch (error) {
          if (error instanceof V2RequestError) return sendGit(reply, contentType, pktLine(`ERR ${error.message}\n`));
          throw error;
        }
        const snapshot = await snapshotOrBusy(ctx, resolved.gitDir, reply, contentType);
        return snapshot === null ? reply : sendGit(reply, contentType, lsRefsResponse(snapshot, args));
      }
    } else {
      if (body.equals(FLUSH_PKT)) return sendGit(reply, contentType, Buffer.alloc(0));
      ctx.metrics.fetches.inc({ protocol: `v${version}`, command: 'upload-pack' });
    }
    // A partial clone's lazy fetch of evicted big blobs: those wants are served from the chunk store.
    let evictedWants: string[] = [];
    if (v2Command?.command === 'fetch' && ctx.bigstore.repositoryHasBigBlobs(resolved.repoId) && (await mayLackBlobs(resolved.gitDir))) {
      evictedWants = await evictedAmong(ctx.repos.git, resolved.gitDir, wantedOids(v2Command), (oid) => ctx.bigstore.heldFor(resolved.repoId, oid) !== null);
      if (evictedWants.length > 0) {
        v2Command = withoutWants(v2Command, new Set(evictedWants));
        body = encodeV2Request(v2Command);
      }
    }
    // Git for Windows cannot hold a blob of 4 GiB or more: such a client is warned when sent one.
    const windowsClient = isGitForWindows(v2Command?.agent ?? request.headers['user-agent']);
    // This credential's turn (fair share) for the work that runs git.
    let leave: () => void;
    try {
      leave = await ctx.fairShare.enter(shareKey(resolved.principal), resolved.org);
    } catch (error) {
      if (!(error instanceof FairShareRefusal)) throw error;
      return sendGit(reply.header('Retry-After', String(error.retryAfterSeconds)), contentType, pktLine(`ERR grove: ${error.message}\n`));
    }
    try {
      if (evictedWants.length > 0 && !wantsAnything(v2Command!)) {
        await sendBlobOnlyPack(ctx, reply, resolved.repoId, v2Command!, evictedWants, windowsClient, responding, signal);
        return reply;
      }
      // Big blobs evicted to the chunk store: upload-pack's pack-objects hook adds those git lacks.
      const hook = evictedWants.length > 0 || (await mayLackBlobs(resolved.gitDir)) ? ctx.bigstore.packObjectsHook(resolved.repoId, evictedWants, { windowsClient }) : null;
      // Clones (no haves, negotiation done) go through the pack cache: identical ones share one run.
      // Low on disk: no new cache entry (the reserve is for pushes); the cache has been shrunk.
      // Big repositories (large files, spliced or not): no entry the cache could not keep.
      const cache = ctx.repos.packCache !== null && hook === null && !(await ctx.repos.disk?.low()) && ctx.repos.packCache.admits(await packedBytes(resolved.gitDir)) ? ctx.repos.packCache : null;
      let cacheKey: string | null = null;
      if (cache !== null) {
        const snapshot = await snapshotOrBusy(ctx, resolved.gitDir, reply, contentType);
        if (snapshot === null) return reply;
        cacheKey = fetchCacheKey(resolved.repoId, snapshot.digest, version, body, v2Command);
      }
      reply.hijack();
      const raw = reply.raw;
      const output = {
        start: (contentLength?: number) => {
          responding();
          // A replay of a complete cached response knows its length: no chunked framing then.
          raw.writeHead(200, { ...NO_CACHE_HEADERS, 'Content-Type': contentType, ...(contentLength !== undefined ? { 'Content-Length': contentLength } : {}) });
          return raw;
        },
      };
      const { gitDir } = resolved;
      const produceInto = (sink: Writable, producerSignal: AbortSignal) =>
        ctx.repos.uploadPack.serve(gitDir, version, body, { start: () => sink }, producerSignal).then(
          (r) => r.code,
          (error: unknown) => {
            if (!(error instanceof LimiterTimeoutError)) throw error;
            sink.write(pktLine(`ERR ${BUSY_MESSAGE}\n`)); // readers replay it; the failed entry is then dropped
            return 1;
          },
        );
      const served = cacheKey !== null && cache !== null
        ? cache.serve(cacheKey, (sink, producerSignal) => produceInto(sink, producerSignal), output, signal)
        : ctx.repos.uploadPack.serve(gitDir, version, body, output, signal, hook);
      const sent = await served.then((r) => r.bytes, (error: unknown) => {
        if (error instanceof LimiterTimeoutError && !raw.headersSent) {
          output.start().write(pktLine(`ERR ${BUSY_MESSAGE}\n`));
        } else if (!signal.aborted) {
          request.log.error({ err: error }, 'upload-pack failed');
        }
        return 0;
      });
      ctx.metrics.fetchBytes.inc(sent);
      if (!raw.headersSent) output.start();
      raw.end();
    } finally {
      leave();
    }
  });

}

/** Answers a fetch of evicted big blobs alone from the chunk store (no git process). */
async function sendBlobOnlyPack(ctx: AppContext, reply: FastifyReply, repoId: string, request: V2Request, oids: readonly string[], windowsClient: boolean, responding: () => void, signal: AbortSignal): Promise<void> {
  const blobs = oids.flatMap((oid) => {
    const held = ctx.bigstore.heldFor(repoId, oid);
    return held === null ? [] : [{ oid, size: held.size, frames: () => ctx.bigstore.rawFrames(oid) }];
  });
  reply.hijack();
  const raw = reply.raw;
  responding();
  raw.writeHead(200, { ...NO_CACHE_HEADERS, 'Content-Type': 'application/x-git-upload-pack-result' });
  try {
    const warnings = windowsClient ? windowsWarnings(blobs) : [];
    for await (const piece of blobOnlyFetchResponse(request, blobs, warnings)) {
      if (!raw.write(piece)) await once(raw, 'drain', { signal });
      ctx.metrics.fetchBytes.inc(piece.length);
    }
    raw.end();
  } catch (error) {
    if (!signal.aborted) reply.log.error({ err: error }, 'serving evicted blobs failed');
    raw.destroy();
  }
}
