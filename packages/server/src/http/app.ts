/**
 * The Fastify application: hooks for metrics, the error catalogue's rendering,
 * health and metrics endpoints, the REST API and the git routes.
 */
import AjvCompiler from '@fastify/ajv-compiler';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { ERROR_CATALOGUE, GroveError } from '../errors.ts';
import { registerApi } from '../api/index.ts';
import type { AppContext } from './context.ts';
import { registerAudit } from './audit.ts';
import { registerGitRoutes } from './git-routes.ts';
import { bodyLeftUnread, sendGit, sendText } from './git-http.ts';
import { pktLine } from '../git/pkt-line.ts';
import { SIDEBAND_64K_MAX_DATA, SIDEBAND_ERROR, sidebandPackets } from '../git/sideband.ts';
import { ConnectionGuard } from './connection-guard.ts';
import { isOutOfSpace, OUT_OF_SPACE_MESSAGE } from '../storage/disk-space.ts';
import { isDatabaseUnavailable, isTextRefusedByDatabase } from '../db/database.ts';
import { ObjectStoreUnavailableError } from '../storage/object-store.ts';
import http from 'node:http';
import { digestsEqual, hashToken } from '../auth/admin-token.ts';
import { extractToken } from '../auth/credentials.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Settles when the answer to this request has closed (sent, or the connection gone). */
    answered: Promise<void> | undefined;
  }
}

export async function buildApp(ctx: AppContext, logger: FastifyBaseLogger): Promise<FastifyInstance> {
  const limits = ctx.config.connections;
  const guard = new ConnectionGuard({ maxConnections: limits.max, maxPerAddress: limits.maxPerAddress });
  ctx.metrics.watchConnections(guard);
  const app: FastifyInstance = Fastify({
    loggerInstance: logger,
    // Headers must arrive within headersTimeoutMs, checked every second (Node's default check is every 30 s).
    serverFactory: (handler) => {
      // Clones and pushes may run for hours: no total request timeout (stalls are the idle timeouts' job).
      const server = http.createServer({ headersTimeout: limits.headersTimeoutMs, requestTimeout: 0, connectionsCheckingInterval: 1000, keepAliveTimeout: 65_000 }, handler);
      server.setTimeout(0);
      guard.attach(server);
      return server;
    },
    bodyLimit: 1024 * 1024,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false, allowUnionTypes: true } },
    schemaController: { compilersFactory: { buildValidator: strictBodies as never } },
    // Errors raised before routing (a malformed URL, a path segment over the limit) get the catalogue shape too.
    frameworkErrors: (error, _request, reply) => {
      const grove = error.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? new GroveError('invalid_request', 'a path segment is longer than 256 characters')
        : new GroveError('invalid_request', `malformed request: ${error.message}`);
      void (reply as FastifyReply).code(grove.status).send(grove.toJSON());
    },
  });

  app.addHook('onRequest', async (request, reply) => {
    // A body that stops arriving ends the connection (the git routes then set their own, longer idle timeout).
    if (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined) {
      request.raw.setTimeout(limits.bodyIdleTimeoutMs, () => request.raw.socket.destroy());
      request.raw.once('end', () => request.raw.setTimeout(0));
    }
    const started = process.hrtime.bigint();
    let answered!: () => void;
    request.answered = new Promise<void>((resolve) => (answered = resolve));
    reply.raw.once('close', () => {
      const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.raw.statusCode) };
      ctx.metrics.requests.inc(labels);
      ctx.metrics.requestDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      answered();
    });
  });

  // No body parser is global: the API adds JSON for itself, the git routes their own stream types.
  app.removeAllContentTypeParsers();
  app.decorateRequest('principal', null);
  app.decorateRequest('answered', undefined);
  registerAudit(app, ctx.audit);
  app.addHook('onClose', async () => ctx.audit.flush());

  app.addHook('onSend', async (request, reply) => {
    // An answer to a write goes out only once what it wrote is on disk (one fsync for all the
    // writes before it: db/durability.ts); reads never wait.
    // (A push's report waits in its own route; a fetch writes nothing the client waits for.)
    if (request.method !== 'GET' && request.method !== 'HEAD' && request.url.startsWith('/api/')) await ctx.durability.sync();
    // While draining, every answer asks the client to close its keep-alive connection; so does an
    // answer sent before its request's body was all read (a 401, 404 or 413 to a big POST), or the
    // client would write its next request into a socket that is about to be closed under it.
    if (!ctx.isReady() || bodyLeftUnread(request)) reply.header('Connection', 'close');
  });

  app.setErrorHandler((error: FastifyError | GroveError, request, reply) => {
    const service = /\/(git-upload-pack|git-receive-pack)$/.exec(request.url.split('?')[0] ?? '')?.[1];
    if (service && (error as FastifyError).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      // A git client prints this text; the JSON catalogue shape is for the API.
      return reply.code(415).header('Content-Type', 'text/plain; charset=utf-8').send(`Content-Type must be application/x-${service}-request\n`);
    }
    const emptyBody = (error as FastifyError).validationContext === 'body' && request.body === undefined;
    const grove = emptyBody ? new GroveError('invalid_request', 'the request needs a JSON body, and it is empty') : toGroveError(error);
    if (grove.code === 'insufficient_storage') request.log.warn({ url: request.url }, 'request refused: out of disk space');
    else if (grove.code === 'unavailable') request.log.warn({ err: error, url: request.url }, 'request refused: unavailable');
    else if (grove.status >= 500) request.log.error({ err: error }, 'request failed');
    if (grove.code === 'unauthorized') reply.header('WWW-Authenticate', 'Basic realm="grove"');
    if (grove.code === 'unavailable') reply.header('Retry-After', '5');
    // A git client prints an ERR line of a service's answer ("remote error: …"), and the
    // plain-text body of a failed ref advertisement; it would print neither as JSON, nor the
    // body of a failed POST at all ("RPC failed; HTTP 503").
    // A push's answer is read through side-band when the client asked for it, which every git
    // since 1.6 does, and the request (not yet parsed here) cannot say: band 3 then.
    if (service === 'git-receive-pack' && grove.status >= 500) {
      return sendGit(reply, `application/x-${service}-result`, Buffer.concat(sidebandPackets(SIDEBAND_ERROR, `grove: ${grove.message}\n`, SIDEBAND_64K_MAX_DATA)));
    }
    if (service !== undefined && grove.status >= 500) return sendGit(reply, `application/x-${service}-result`, pktLine(`ERR grove: ${grove.message}\n`));
    if (service !== undefined || /\/info\/refs$/.test(request.url.split('?')[0] ?? '')) return sendText(reply, grove.status, `grove: ${grove.message}`);
    return reply.code(grove.status).send(grove.toJSON());
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new GroveError('not_found', `no route for ${request.method} ${request.url.split('?')[0]}`);
    return reply.code(404).send(error.toJSON());
  });

  app.get('/healthz', { schema: { hide: true } }, async (_request, reply) => {
    if (!ctx.isReady()) return reply.code(503).send({ status: 'shutting down' });
    return { status: 'ok' };
  });

  const metricsDigest = ctx.config.metricsToken === null ? null : hashToken(ctx.config.metricsToken);
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (metricsDigest !== null) {
      // A scraper's bearer token (or Basic password), compared by digest in constant time.
      const token = extractToken(request.headers.authorization);
      if (token === null || !digestsEqual(hashToken(token), metricsDigest)) {
        const error = new GroveError('unauthorized', '/metrics needs the GROVE_METRICS_TOKEN as a bearer token');
        return reply.code(error.status).header('WWW-Authenticate', 'Bearer realm="grove-metrics"').send(error.toJSON());
      }
    }
    const body = await ctx.metrics.registry.metrics();
    return reply.header('Content-Type', ctx.metrics.registry.contentType).send(body);
  });

  await registerApi(app, ctx);
  await registerGitRoutes(app, ctx);
  return app;
}

const buildAjvValidator = AjvCompiler();

/**
 * Query strings and params are text, so they are coerced (`limit=5` → 5); JSON bodies
 * are not, so `{"name": 123}` is refused instead of becoming "123".
 */
function strictBodies(externalSchemas: unknown, options?: { customOptions?: object }): (route: AjvCompiler.RouteDefinition) => unknown {
  type Build = (schemas: unknown, options?: { customOptions?: object }) => (route: AjvCompiler.RouteDefinition) => unknown;
  const build = buildAjvValidator as unknown as Build;
  const coercing = build(externalSchemas, options);
  const strict = build(externalSchemas, { ...options, customOptions: { ...options?.customOptions, coerceTypes: false } });
  return (route) => (route.httpPart === 'body' ? strict(route) : coercing(route));
}

/** Maps anything thrown in a handler onto the catalogue. */
export function toGroveError(error: FastifyError | GroveError | Error): GroveError {
  if (error instanceof GroveError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const first = fastifyError.validation[0];
    const field = first?.instancePath ? first.instancePath.slice(1).replace(/\//g, '.') : (first?.params as { missingProperty?: string } | undefined)?.missingProperty;
    const where = fastifyError.validationContext ?? 'body';
    const message = first?.keyword === 'required'
      ? `${where}: missing required field ${JSON.stringify(field)}`
      : first?.keyword === 'additionalProperties'
        ? `${where}: unknown field ${JSON.stringify((first.params as { additionalProperty?: string }).additionalProperty)}`
        : `${where}${field ? `.${field}` : ''} ${first?.message ?? 'is invalid'}`;
    return new GroveError('invalid_request', message);
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GroveError('unsupported_media_type', 'unsupported Content-Type: the API takes application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GroveError('payload_too_large', 'request body is too large');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GroveError('invalid_request', 'the JSON body is empty');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GroveError('invalid_request', 'Content-Length does not match the body');
  }
  if (fastifyError.statusCode === 400 || error instanceof SyntaxError) {
    return new GroveError('invalid_request', `malformed request: ${error.message}`);
  }
  if (fastifyError.statusCode === 405) return new GroveError('method_not_allowed', error.message);
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    const entry = Object.entries(ERROR_CATALOGUE).find(([, v]) => v.status === fastifyError.statusCode);
    return new GroveError((entry?.[0] ?? 'invalid_request') as keyof typeof ERROR_CATALOGUE, error.message);
  }
  if (isOutOfSpace(error)) return new GroveError('insufficient_storage', OUT_OF_SPACE_MESSAGE);
  if (isTextRefusedByDatabase(error)) return new GroveError('invalid_request', 'text fields must not contain NUL characters');
  if (error instanceof ObjectStoreUnavailableError) return new GroveError('unavailable', 'the object store is unavailable; nothing was changed; retry shortly');
  if (isDatabaseUnavailable(error)) return new GroveError('unavailable', 'the database is unavailable; nothing was changed that was not reported; retry shortly');
  return new GroveError('internal', 'internal server error');
}
