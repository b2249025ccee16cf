/**
 * `Idempotency-Key` for API writes: the first request with a key runs and its
 * successful answer is stored; a retry with the same key and the same request gets
 * that answer instead of running again; the same key with a different request is
 * 409 `idempotency_mismatch`. A failed request releases the key. Keys are per
 * principal and kept for 24 hours.
 */
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { claimIdempotencyKey, releaseIdempotencyKey, storeIdempotentAnswer } from '../db/idempotency.ts';
import { GroveError } from '../errors.ts';
import type { AppContext } from '../http/context.ts';
import { principalOf } from './principal.ts';

export function principalKey(request: FastifyRequest): string {
  const principal = principalOf(request);
  switch (principal.kind) {
    case 'root':
      return 'root';
    case 'key':
      return principal.id;
    case 'signed':
      return `signed:${principal.org}:${principal.id}`;
  }
}

export async function idempotent(
  ctx: AppContext,
  request: FastifyRequest,
  reply: FastifyReply,
  run: () => Promise<{ status: number; body: unknown }>,
): Promise<FastifyReply> {
  const header = request.headers['idempotency-key'];
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined) {
    const answer = await run();
    return reply.code(answer.status).send(answer.body);
  }
  if (key.length === 0 || key.length > 255) throw new GroveError('invalid_request', 'Idempotency-Key must be 1 to 255 characters');
  const principal = principalKey(request);
  const hash = createHash('sha256').update(`${request.method} ${request.url}\n`).update(JSON.stringify(request.body ?? null)).digest('hex');
  const existing = await claimIdempotencyKey(ctx.db, principal, key, hash, new Date().toISOString());
  if (existing !== null) {
    if (existing.request_hash !== hash) throw new GroveError('idempotency_mismatch', 'this Idempotency-Key was used with a different request');
    if (existing.status === 0) throw new GroveError('idempotency_mismatch', 'a request with this Idempotency-Key is still running; retry shortly');
    return reply.code(existing.status).header('Idempotent-Replayed', 'true').send(JSON.parse(existing.response ?? 'null'));
  }
  try {
    const answer = await run();
    await storeIdempotentAnswer(ctx.db, principal, key, answer.status, JSON.stringify(answer.body));
    return reply.code(answer.status).send(answer.body);
  } catch (error) {
    await releaseIdempotencyKey(ctx.db, principal, key);
    throw error;
  }
}
