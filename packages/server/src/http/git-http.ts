/** What the git routes share: repository resolution, body handling, transfer signals, plain answers. */
import { createGunzip, type Gunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { pktLine } from '../git/pkt-line.ts';
import { authorize, type Action, type Principal } from '../auth/authorize.ts';
import { GroveError } from '../errors.ts';
import { LimiterTimeoutError } from '../repo/limiter.ts';
import type { RefSnapshot } from '../repo/ref-snapshot.ts';
import type { ProtocolVersion } from '../repo/upload-pack.ts';
import { findRepoCached } from '../db/repos.ts';
import type { AppContext } from './context.ts';

export const NO_CACHE_HEADERS = {
  Expires: 'Fri, 01 Jan 1980 00:00:00 GMT',
  Pragma: 'no-cache',
  'Cache-Control': 'no-cache, max-age=0, must-revalidate',
} as const;

export const BUSY_MESSAGE = 'grove: the server is busy (git process queue timed out); retry shortly';


export interface RepoParams {
  org: string;
  repo: string;
}

export interface ResolvedRepo {
  readonly principal: Principal;
  readonly repoId: string;
  readonly gitDir: string;
  readonly org: string;
  readonly repo: string;
}

/** git http-backend answers 415 to a POST of the wrong type; so does Grove (after reading the body away). */
export async function hasContentType(request: FastifyRequest, reply: FastifyReply, expected: string): Promise<boolean> {
  const actual = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (actual === expected) return true;
  const body = request.body as Readable | undefined;
  if (body !== undefined && body !== null && typeof body.pipe === 'function') await drain(body);
  else if (body === undefined) await drainRequest(request);
  sendText(reply, 415, `Content-Type must be ${expected}`);
  return false;
}

/** The repository's refs, or null after answering a busy ERR (the git process queue timed out). */
export async function snapshotOrBusy(ctx: AppContext, gitDir: string, reply: FastifyReply, contentType: string): Promise<RefSnapshot | null> {
  try {
    return await ctx.repos.refs.read(gitDir);
  } catch (error) {
    if (!(error instanceof LimiterTimeoutError)) throw error;
    sendGit(reply, contentType, pktLine(`ERR ${BUSY_MESSAGE}\n`));
    return null;
  }
}

/** Authenticates, finds the repository and authorizes; answers the refusal itself and returns null. */
export async function resolveRepo(ctx: AppContext, request: FastifyRequest<{ Params: RepoParams }>, reply: FastifyReply, action: Action): Promise<ResolvedRepo | null> {
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
  const importing = ctx.imports.progressOf(row.id);
  if (importing !== null) {
    // In the protocol, so the client prints it: `fatal: remote error: repository … is being imported (42%)`.
    await drainRequest(request);
    const service = /git-(upload|receive)-pack/.exec(request.url)?.[0] ?? 'git-upload-pack';
    sendGit(reply, `application/x-${service}-${request.method === 'GET' ? 'advertisement' : 'result'}`, pktLine(`ERR repository ${org}/${repo} is being imported (${importing}%); try again when it is done\n`));
    return null;
  }
  const gitDir = ctx.repos.gitDir(row.id);
  // A cluster node's copy: current first (the version came with the row).
  await ctx.repoCache.ensure({ id: row.id, gitDir, defaultBranch: row.default_branch, ...(row.refs_version !== undefined ? { version: row.refs_version } : {}) }, request.answered);
  return { principal, repoId: row.id, gitDir, org, repo };
}

export function protocolVersion(header: string | string[] | undefined): ProtocolVersion {
  const value = Array.isArray(header) ? header.join(':') : header ?? '';
  let version: ProtocolVersion = 0;
  for (const parameter of value.split(':')) {
    if (parameter === 'version=2') version = 2;
    else if (parameter === 'version=1' && version === 0) version = 1;
  }
  return version;
}

/** Inflaters of gzip-encoded request bodies, so an abandoned one can be taken down (abandonBody). */
const inflaters = new WeakMap<FastifyRequest, { readonly raw: Readable; readonly gunzip: Gunzip }>();
/** Requests whose body Grove stopped reading before its end. */
const abandoned = new WeakSet<FastifyRequest>();

export function requestBody(request: FastifyRequest): AsyncIterable<Buffer> {
  const raw = request.body as Readable | undefined ?? request.raw;
  const encoding = (request.headers['content-encoding'] ?? '').toLowerCase();
  if (encoding === 'gzip' || encoding === 'x-gzip') {
    const gunzip = createGunzip();
    inflaters.set(request, { raw, gunzip });
    return raw.pipe(gunzip);
  }
  return raw as AsyncIterable<Buffer>;
}

/**
 * Stops reading a request's body for good (it was refused halfway, e.g. a gzip bomb): the
 * inflater is taken down so nothing more is inflated, and the answer closes the connection.
 */
export function abandonBody(request: FastifyRequest): void {
  abandoned.add(request);
  const inflater = inflaters.get(request);
  if (inflater === undefined) return;
  inflater.raw.unpipe(inflater.gunzip);
  inflater.gunzip.destroy();
}

/** Whether the answer to this request must close the connection: its body was not read to the end. */
export function bodyLeftUnread(request: FastifyRequest): boolean {
  return abandoned.has(request) || !request.raw.complete;
}

export async function readBounded(body: AsyncIterable<Buffer>, limit: number): Promise<Buffer> {
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

export async function drain(body: AsyncIterable<Buffer>): Promise<void> {
  try {
    for await (const _ of body) void _;
  } catch {
    // the client went away or sent garbage; nothing to keep
  }
}

/** Bytes of an unwanted request body read away so the connection can be kept; past that, it is closed. */
const DRAIN_LIMIT = 1024 * 1024;

/**
 * Reads away a small request body that will not be used, so the keep-alive connection stays
 * usable; a big one is left unread and the answer closes the connection (app.ts's onSend).
 */
export async function drainRequest(request: FastifyRequest): Promise<void> {
  if (request.method !== 'POST' || request.raw.complete) return;
  let read = 0;
  try {
    for await (const chunk of request.raw as AsyncIterable<Buffer>) {
      read += chunk.length;
      if (read > DRAIN_LIMIT) return;
    }
  } catch {
    // the client went away or sent garbage; nothing to keep
  }
}

export function sendText(reply: FastifyReply, status: number, text: string): FastifyReply {
  return reply.code(status).header('Content-Type', 'text/plain; charset=utf-8').send(`${text}\n`);
}

export function sendGit(reply: FastifyReply, contentType: string, body: Buffer): FastifyReply {
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
export function transferSignal(ctx: AppContext, request: FastifyRequest, reply: FastifyReply): Transfer {
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

export interface Transfer {
  /** Aborted when the client disconnects or stalls. */
  readonly signal: AbortSignal;
  /** Restarts the idle clock once the response starts streaming. */
  readonly responding: () => void;
}
