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
import { createGunzip } from 'node:zlib';
import type { Readable, Writable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { receivePackAdvertisement, serviceHeader, v2Capabilities, type GitService } from '../git/advertisement.ts';
import { lsRefsResponse, parseLsRefsArgs } from '../git/ls-refs.ts';
import { PktLineError, PktLineReader, pktLine, FLUSH_PKT } from '../git/pkt-line.ts';
import { readReceivePackRequest, ReceivePackRequestError, type RefCommand } from '../git/receive-pack-request.ts';
import { isZeroOid } from '../git/oid.ts';
import { actorOf, refLifecycleEvents } from '../events/types.ts';
import { isAncestor } from '../repo/resolve.ts';
import { reportStatus } from '../git/report-status.ts';
import { SIDEBAND_DATA, SIDEBAND_ERROR, SIDEBAND_KEEPALIVE, SIDEBAND_MAX_DATA, SIDEBAND_PROGRESS, SIDEBAND_64K_MAX_DATA, sidebandPackets } from '../git/sideband.ts';
import { parseV2Request, V2RequestError, type V2Request } from '../git/v2-request.ts';
import { fetchCacheKey } from '../repo/pack-cache.ts';
import { authorize, authorizeRefUpdate, needsAncestry, type Action, type Principal } from '../auth/authorize.ts';
import { forgetBranchTtls } from '../db/branch-ttls.ts';
import { readRefRules } from '../db/policies.ts';
import { GroveError } from '../errors.ts';
import { LimiterTimeoutError } from '../repo/limiter.ts';
import type { RefSnapshot } from '../repo/ref-snapshot.ts';
import type { ProtocolVersion } from '../repo/upload-pack.ts';
import { findRepoCached } from '../db/repos.ts';
import type { AppContext } from './context.ts';

const NO_CACHE_HEADERS = {
  Expires: 'Fri, 01 Jan 1980 00:00:00 GMT',
  Pragma: 'no-cache',
  'Cache-Control': 'no-cache, max-age=0, must-revalidate',
} as const;

const BUSY_MESSAGE = 'grove: the server is busy (git process queue timed out); retry shortly';

/** How often a push that is still being checked sends an empty band-1 packet (git's receive.keepAlive), at most. */
const KEEPALIVE_INTERVAL_MS = 5000;

interface RepoParams {
  org: string;
  repo: string;
}

interface ResolvedRepo {
  readonly principal: Principal;
  readonly repoId: string;
  readonly gitDir: string;
  readonly org: string;
  readonly repo: string;
}

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
    const { signal, responding } = transferSignal(ctx, request, reply);
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

  app.post<{ Params: RepoParams }>('/:org/:repo/git-upload-pack', hide, async (request, reply) => {
    const { signal, responding } = transferSignal(ctx, request, reply);
    if (!(await hasContentType(request, reply, 'application/x-git-upload-pack-request'))) return reply;
    const resolved = await resolveRepo(ctx, request, reply, 'read');
    if (resolved === null) return reply;
    let body: Buffer;
    try {
      body = await readBounded(requestBody(request), ctx.config.limits.maxNegotiationBytes);
    } catch (error) {
      if (error instanceof GroveError) return sendText(reply, error.status, error.message);
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
    // Clones (no haves, negotiation done) go through the pack cache: identical ones share one run.
    const cache = ctx.repos.packCache;
    let cacheKey: string | null = null;
    if (cache !== null) {
      const snapshot = await snapshotOrBusy(ctx, resolved.gitDir, reply, contentType);
      if (snapshot === null) return reply;
      cacheKey = fetchCacheKey(resolved.repoId, snapshot.digest, version, body, v2Command);
    }
    reply.hijack();
    const raw = reply.raw;
    const output = {
      start: () => {
        responding();
        raw.writeHead(200, { ...NO_CACHE_HEADERS, 'Content-Type': contentType });
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
      : ctx.repos.uploadPack.serve(gitDir, version, body, output, signal);
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
  });

  app.post<{ Params: RepoParams }>('/:org/:repo/git-receive-pack', hide, async (request, reply) => {
    const { signal, responding } = transferSignal(ctx, request, reply);
    if (!(await hasContentType(request, reply, 'application/x-git-receive-pack-request'))) return reply;
    const resolved = await resolveRepo(ctx, request, reply, 'write');
    if (resolved === null) return reply;
    const contentType = 'application/x-git-receive-pack-result';
    const reader = new PktLineReader(requestBody(request));
    let pushRequest;
    try {
      pushRequest = await readReceivePackRequest(reader, { maxCommands: ctx.config.limits.maxPushCommands, maxPushOptions: 100 });
    } catch (error) {
      if (error instanceof ReceivePackRequestError || error instanceof PktLineError) {
        ctx.metrics.pushes.inc({ result: 'rejected' });
        await drain(reader.rest());
        return sendGit(reply, contentType, pktLine(`ERR ${error.message}\n`));
      }
      throw error;
    }
    // The auth probe and a push with nothing to do: an empty 200.
    if (pushRequest.commands.length === 0) {
      await drain(reader.rest());
      return sendGit(reply, contentType, Buffer.alloc(0));
    }
    const sideband = pushRequest.capabilities.has('side-band-64k') ? SIDEBAND_64K_MAX_DATA : pushRequest.capabilities.has('side-band') ? SIDEBAND_MAX_DATA : 0;
    const quiet = pushRequest.capabilities.has('quiet');
    const progress: string[] = [];
    const rules = await readRefRules(ctx.db, resolved.repoId);
    const { principal, org, repo } = resolved;
    // From here on every outcome is reported in the protocol, so the response is ours to stream:
    // once the pack is in, headers go out and side-band keepalives cover slow checks.
    reply.hijack();
    const raw = reply.raw;
    let streaming = false;
    let keepalive: NodeJS.Timeout | undefined;
    const write = (bytes: Buffer) => {
      if (!raw.destroyed) raw.write(bytes);
    };
    const startStreaming = () => {
      if (streaming) return;
      streaming = true;
      if (sideband) responding(); // keepalives will flow; without side-band nothing can until the report
      raw.writeHead(200, { ...NO_CACHE_HEADERS, 'Content-Type': contentType });
      if (!sideband) return;
      for (const text of progress.splice(0)) write(Buffer.concat(sidebandPackets(SIDEBAND_PROGRESS, text, sideband)));
      keepalive = setInterval(() => write(SIDEBAND_KEEPALIVE), Math.min(KEEPALIVE_INTERVAL_MS, ctx.config.idleTimeoutMs / 2));
    };
    try {
      const snapshot = await ctx.repos.refs.read(resolved.gitDir);
      const outcome = await ctx.repos.push.run({
        gitDir: resolved.gitDir,
        request: pushRequest,
        pack: reader.rest(),
        snapshot,
        authorize: (command, forced) => authorizeRefUpdate(principal, org, repo, rules, { ref: command.ref, kind: command.kind, ...(forced !== undefined ? { forced } : {}) }),
        needsAncestry: (command) => needsAncestry(rules, { ref: command.ref, kind: command.kind }),
        progress: (text) => {
          if (quiet || !sideband) return;
          if (streaming) write(Buffer.concat(sidebandPackets(SIDEBAND_PROGRESS, text, sideband)));
          else progress.push(text);
        },
        onReceived: startStreaming,
        journal: (accepted) => journalPush(ctx, resolved, accepted),
        signal,
        limits: { maxPackBytes: ctx.config.limits.maxPackBytes },
      });
      ctx.metrics.pushBytes.inc(outcome.packBytes);
      const okCount = outcome.results.filter((r) => r.ok).length;
      ctx.metrics.refUpdates.inc({ result: 'ok' }, okCount);
      ctx.metrics.refUpdates.inc({ result: 'rejected' }, outcome.results.length - okCount);
      ctx.metrics.pushes.inc({ result: okCount === outcome.results.length ? 'ok' : okCount === 0 ? 'rejected' : 'partial' });
      request.log.info(
        { org, repo, refs: outcome.results.length, updated: okCount, packBytes: outcome.packBytes, unpackError: outcome.unpackError },
        'push',
      );
      if (outcome.applied.length > 0) ctx.repos.maintenance.notePush(resolved.gitDir);
      // A branch created or deleted by a push starts a new life: an old TTL does not apply to it.
      await forgetBranchTtls(ctx.db, resolved.repoId, outcome.applied.filter((c) => c.kind !== 'update').map((c) => c.ref));
      clearInterval(keepalive);
      startStreaming();
      const report = reportStatus(outcome.unpackError, outcome.results);
      write(sideband ? Buffer.concat([...sidebandPackets(SIDEBAND_DATA, report, sideband), FLUSH_PKT]) : report);
    } catch (error) {
      clearInterval(keepalive);
      if (signal.aborted) {
        raw.destroy();
        return;
      }
      const busy = error instanceof LimiterTimeoutError;
      if (!busy) request.log.error({ err: error, org, repo }, 'push failed');
      startStreaming();
      const message = busy ? `${BUSY_MESSAGE}; no ref was changed` : 'grove: internal error while applying the push; no ref was changed by the failed step';
      write(sideband ? Buffer.concat(sidebandPackets(SIDEBAND_ERROR, `${message}\n`, sideband)) : pktLine(`ERR ${message}\n`));
    } finally {
      clearInterval(keepalive);
    }
    raw.end();
  });
}

/**
 * The push's events, journaled before its ref transaction: one `push` event with every
 * ref change (and whether it was forced), plus branch/tag created/deleted events.
 * After the transaction, what applied is committed and the rest dropped.
 */
async function journalPush(ctx: AppContext, target: ResolvedRepo, accepted: readonly RefCommand[]): Promise<(applied: readonly RefCommand[]) => Promise<void>> {
  const base = { org: target.org, repo: target.repo, repoId: target.repoId, actor: actorOf(target.principal) };
  const changeOf = (c: RefCommand) => ({ ref: c.ref, before: isZeroOid(c.oldOid) ? null : c.oldOid, after: isZeroOid(c.newOid) ? null : c.newOid });
  const lifecycle = refLifecycleEvents(base, accepted.map(changeOf));
  const seqs = await ctx.events.begin([{ ...base, type: 'push', payload: { refs: accepted.map(changeOf) } }, ...lifecycle]);
  return async (applied) => {
    const done = new Set(applied.map((c) => c.ref));
    const keep = seqs.filter((_, i) => i === 0 ? done.size > 0 : done.has(String(lifecycle[i - 1]!.payload.ref)));
    await ctx.events.abort(seqs.filter((seq) => !keep.includes(seq)));
    if (keep.length === 0) return;
    const refs = await Promise.all(applied.map(async (c) => {
      const change = changeOf(c);
      const forced = change.before !== null && change.after !== null && !(await isAncestor(ctx.repos.git, target.gitDir, change.before, change.after));
      return { ...change, forced };
    }));
    await ctx.events.commit(keep, new Map([[seqs[0]!, { refs }]]));
  };
}

/** git http-backend answers 415 to a POST of the wrong type; so does Grove (after reading the body away). */
async function hasContentType(request: FastifyRequest, reply: FastifyReply, expected: string): Promise<boolean> {
  const actual = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (actual === expected) return true;
  const body = request.body as Readable | undefined;
  if (body !== undefined && body !== null && typeof body.pipe === 'function') await drain(body);
  else if (body === undefined) await drainRequest(request);
  sendText(reply, 415, `Content-Type must be ${expected}`);
  return false;
}

/** The repository's refs, or null after answering a busy ERR (the git process queue timed out). */
async function snapshotOrBusy(ctx: AppContext, gitDir: string, reply: FastifyReply, contentType: string): Promise<RefSnapshot | null> {
  try {
    return await ctx.repos.refs.read(gitDir);
  } catch (error) {
    if (!(error instanceof LimiterTimeoutError)) throw error;
    sendGit(reply, contentType, pktLine(`ERR ${BUSY_MESSAGE}\n`));
    return null;
  }
}

/** Authenticates, finds the repository and authorizes; answers the refusal itself and returns null. */
async function resolveRepo(ctx: AppContext, request: FastifyRequest<{ Params: RepoParams }>, reply: FastifyReply, action: Action): Promise<ResolvedRepo | null> {
  const principal = await ctx.auth.authenticate(request.headers.authorization);
  request.principal = principal; // for the audit log
  if (principal === null) {
    reply.header('WWW-Authenticate', 'Basic realm="grove"');
    await drainRequest(request);
    sendText(reply, 401, request.headers.authorization ? 'Authentication failed: the token is invalid, expired or revoked' : 'Authentication required: use a Grove token as the password');
    return null;
  }
  const org = request.params.org;
  const repo = request.params.repo.endsWith('.git') ? request.params.repo.slice(0, -4) : request.params.repo;
  const row = await findRepoCached(ctx.db, org, repo);
  const decision = authorize(principal, action, { kind: 'repo', org, repo });
  if (row === undefined || (!decision.allowed && decision.status === 'not_found')) {
    await drainRequest(request);
    sendText(reply, 404, `Repository ${org}/${repo} not found`);
    return null;
  }
  if (!decision.allowed) {
    await drainRequest(request);
    sendText(reply, 403, decision.reason);
    return null;
  }
  return { principal, repoId: row.id, gitDir: ctx.repos.gitDir(row.id), org, repo };
}

function protocolVersion(header: string | string[] | undefined): ProtocolVersion {
  const value = Array.isArray(header) ? header.join(':') : header ?? '';
  let version: ProtocolVersion = 0;
  for (const parameter of value.split(':')) {
    if (parameter === 'version=2') version = 2;
    else if (parameter === 'version=1' && version === 0) version = 1;
  }
  return version;
}

function requestBody(request: FastifyRequest): AsyncIterable<Buffer> {
  const raw = request.body as Readable | undefined ?? request.raw;
  const encoding = (request.headers['content-encoding'] ?? '').toLowerCase();
  if (encoding === 'gzip' || encoding === 'x-gzip') return raw.pipe(createGunzip());
  return raw as AsyncIterable<Buffer>;
}

async function readBounded(body: AsyncIterable<Buffer>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      total += chunk.length;
      if (total > limit) throw new GroveError('payload_too_large', `request body exceeds ${limit} bytes after decoding`);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof GroveError) throw error;
    throw new GroveError('invalid_request', `could not read the request body: ${(error as Error).message}`);
  }
  return Buffer.concat(chunks);
}

async function drain(body: AsyncIterable<Buffer>): Promise<void> {
  try {
    for await (const _ of body) void _;
  } catch {
    // the client went away or sent garbage; nothing to keep
  }
}

async function drainRequest(request: FastifyRequest): Promise<void> {
  if (request.method === 'POST') await drain(request.raw as AsyncIterable<Buffer>);
}

function sendText(reply: FastifyReply, status: number, text: string): FastifyReply {
  return reply.code(status).header('Content-Type', 'text/plain; charset=utf-8').send(`${text}\n`);
}

function sendGit(reply: FastifyReply, contentType: string, body: Buffer): FastifyReply {
  return reply.code(200).headers({ ...NO_CACHE_HEADERS, 'Content-Type': contentType }).send(body);
}

/**
 * Aborts (killing git children) when the client goes away before the response is
 * complete, or when the client lets the connection sit idle for the idle timeout (a
 * stalled transfer; there is deliberately no total timeout). The clock stops once the
 * request body is in — from then on Grove is the one working, and a slow index-pack or
 * pack-objects is not the client's stall — and restarts when the response streams
 * (a client that stops reading is).
 */
function transferSignal(ctx: AppContext, request: FastifyRequest, reply: FastifyReply): Transfer {
  const controller = new AbortController();
  const idle = ctx.config.idleTimeoutMs;
  request.raw.setTimeout(idle, () => {
    controller.abort(new Error('transfer idle timeout'));
    request.raw.socket.destroy();
  });
  request.raw.once('end', () => request.raw.setTimeout(0));
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client disconnected'));
  });
  request.raw.once('aborted', () => controller.abort(new Error('client disconnected')));
  return { signal: controller.signal, responding: () => request.raw.setTimeout(idle) };
}

interface Transfer {
  /** Aborted when the client disconnects or stalls. */
  readonly signal: AbortSignal;
  /** Restarts the idle clock once the response starts streaming. */
  readonly responding: () => void;
}
