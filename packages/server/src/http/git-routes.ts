/**
 * Git smart HTTP (gitprotocol-http): `/{org}/{repo}[.git]/info/refs`,
 * `/git-upload-pack` and `/git-receive-pack`.
 *
 * Authentication and repository access are decided before any byte of a response is
 * written (a status cannot change after that); refusals inside a transfer go in the
 * protocol: `ERR` packets, side-band 3, or `ng <ref> <reason>`. Request bodies may be
 * gzip-encoded or chunked; responses are never compressed and carry the exact
 * content types clients compare against.
 */
import type { FastifyInstance } from 'fastify';
import { receivePackAdvertisement, serviceHeader, v2Capabilities } from '../git/advertisement.ts';
import { LimiterTimeoutError } from '../repo/limiter.ts';
import type { AppContext } from './context.ts';
import { NO_CACHE_HEADERS, BUSY_MESSAGE, type RepoParams, resolveRepo, protocolVersion, sendText, transferSignal } from './git-http.ts';
import { registerReceivePack } from './receive-pack-route.ts';
import { registerUploadPack } from './upload-pack-route.ts';

export async function registerGitRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  // Git request bodies are streamed by the handlers, never parsed by Fastify.
  app.addContentTypeParser(
    ['application/x-git-upload-pack-request', 'application/x-git-receive-pack-request'],
    (_request, payload, done) => done(null, payload),
  );

  const hide = { schema: { hide: true } };

  app.get<{ Params: RepoParams; Querystring: { service?: string } }>('/:org/:repo/info/refs', hide, async (request, reply) => {
    const service = request.query.service;
    if (service !== 'git-upload-pack' && service !== 'git-receive-pack') {
      return sendText(reply, 403, 'Grove serves the smart HTTP protocol only: use a git client newer than 1.6.6');
    }
    const resolved = await resolveRepo(ctx, request, reply, service === 'git-receive-pack' ? 'write' : 'read');
    if (resolved === null) return reply;
    const version = protocolVersion(request.headers['git-protocol']);
    const { signal } = transferSignal(ctx, request, reply);
    let body: Buffer;
    try {
      if (service === 'git-upload-pack') {
        body = version === 2
          ? v2Capabilities(ctx.agent)
          : await ctx.repos.uploadPack.advertiseRefs(resolved.gitDir, version, signal);
      } else {
        // Push is always v0 (git never asks for v2 here); `version=1` only adds a line.
        const snapshot = await ctx.repos.refs.read(resolved.gitDir);
        body = receivePackAdvertisement(snapshot, ctx.agent, version === 1);
      }
    } catch (error) {
      if (error instanceof LimiterTimeoutError) return sendText(reply.header('Retry-After', '5'), 503, BUSY_MESSAGE);
      throw error;
    }
    return reply
      .code(200)
      .headers({ ...NO_CACHE_HEADERS, 'Content-Type': `application/x-${service}-advertisement` })
      .send(Buffer.concat([serviceHeader(service), body]));
  });

  registerUploadPack(app, ctx, hide);
  registerReceivePack(app, ctx, hide);
}
