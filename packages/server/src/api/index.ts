/**
 * The REST API under /api/v1: authentication for every route but the OpenAPI
 * document, shared schemas, and one module per resource.
 */
import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { authorize } from '../auth/authorize.ts';
import { GroveError } from '../errors.ts';
import { FairShareRefusal, shareKey } from '../http/fair-share.ts';
import type { AppContext } from '../http/context.ts';
import { branchRoutes } from './branches.ts';
import { commitWriteRoutes } from './commit-writes.ts';
import { compareRoutes } from './compare.ts';
import { blobRoutes } from './blobs.ts';
import { contentRoutes } from './contents.ts';
import { historyRoutes } from './history.ts';
import { adminRoutes } from './admin.ts';
import { auditRoutes } from './audit.ts';
import { eventRoutes } from './events.ts';
import { fsckRoutes } from './fsck.ts';
import { keyRoutes } from './keys.ts';
import { webhookRoutes } from './webhooks.ts';
import { mergeRoutes } from './merges.ts';
import { orgRoutes } from './orgs.ts';
import { policyRoutes } from './policies.ts';
import { repoRoutes } from './repos.ts';
import { signingKeyRoutes } from './signing-keys.ts';
import { credentialRoutes } from './credentials.ts';
import { upstreamRoutes } from './upstreams.ts';
import { syncHookRoutes } from './sync-hooks.ts';
import { SHARED_SCHEMAS } from './schemas.ts';

import { API_PREFIX } from './prefix.ts';

export { API_PREFIX };

export async function registerApi(app: FastifyInstance, ctx: AppContext): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Grove API', version: '0.1.0', description: 'Orgs, repositories and keys of a Grove git server. Errors are {"error": {"code", "message", "details"?}}.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A Grove token' },
          basic: { type: 'http', scheme: 'basic', description: 'Any username, a Grove token as the password' },
        },
      },
      security: [{ bearer: [] }, { basic: [] }],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  // Webhook receivers authenticate by signature, not by API key: outside the authenticated scope.
  await syncHookRoutes(app, ctx, app.log);

  await app.register(async (api) => {
    // The API speaks JSON only: any other body is 415. An empty JSON body (a DELETE from a
    // client that always sends the header) is no body.
    api.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => {
      if (text === '') return done(null, undefined);
      try {
        done(null, JSON.parse(text as string));
      } catch (error) {
        done(new GroveError('invalid_request', `malformed JSON body: ${(error as Error).message}`), undefined);
      }
    });
    api.addHook('onRequest', async (request) => {
      if (request.routeOptions.url === `${API_PREFIX}/openapi.json`) return;
      const principal = await ctx.auth.authenticate(request.headers.authorization);
      if (principal === null) {
        throw new GroveError(
          'unauthorized',
          request.headers.authorization ? 'invalid credentials: the token is unknown, expired, revoked or malformed' : 'authentication required: send a token as Bearer or as the Basic password',
        );
      }
      request.principal = principal;
    });
    // The repository API runs git: each request takes a fair-share slot of its credential and org
    // (only when the credential reaches the repository, so an outsider cannot use up an org's queue).
    api.addHook('preHandler', async (request, reply) => {
      if (!request.routeOptions.url?.startsWith(`${API_PREFIX}/repos/:org/:repo/`)) return;
      const { org, repo } = request.params as { org: string; repo: string };
      const principal = request.principal;
      if (principal === null || !authorize(principal, 'read', { kind: 'repo', org, repo }).allowed) return;
      let leave: () => void;
      try {
        leave = await ctx.fairShare.enter(shareKey(principal), org);
      } catch (error) {
        if (!(error instanceof FairShareRefusal)) throw error;
        void reply.header('Retry-After', String(error.retryAfterSeconds));
        throw new GroveError('too_many_requests', error.message);
      }
      reply.raw.once('close', leave);
    });
    api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
    await orgRoutes(api, ctx);
    await repoRoutes(api, ctx);
    await fsckRoutes(api, ctx);
    await contentRoutes(api, ctx);
    await blobRoutes(api, ctx);
    await historyRoutes(api, ctx);
    await compareRoutes(api, ctx);
    await keyRoutes(api, ctx);
    await signingKeyRoutes(api, ctx);
    await policyRoutes(api, ctx);
    await commitWriteRoutes(api, ctx);
    await branchRoutes(api, ctx);
    await mergeRoutes(api, ctx);
    await webhookRoutes(api, ctx);
    await credentialRoutes(api, ctx);
    await upstreamRoutes(api, ctx);
    await eventRoutes(api, ctx);
    await auditRoutes(api, ctx);
    await adminRoutes(api, ctx);
    api.setNotFoundHandler((request, reply) => {
      void reply.code(404).send({ error: { code: 'not_found', message: `no route for ${request.method} ${request.url.split('?')[0]}` } });
    });
  }, { prefix: API_PREFIX });
}
