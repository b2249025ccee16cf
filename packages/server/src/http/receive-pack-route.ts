/**
 * POST git-receive-pack: Grove parses the command list, authorizes every ref, runs the
 * push pipeline (repo/push.ts) and reports per ref, journaling the push's events around
 * its ref transaction.
 */
import type { NewEvent } from '../events/types.ts';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, RouteShorthandOptions } from 'fastify';
import path from 'node:path';
import type { EvictedBlobs, PushPhase } from '../repo/push.ts';
import { mayLackBlobs } from '../repo/evict-blobs.ts';
import { PktLineError, PktLineReader, pktLine, FLUSH_PKT } from '../git/pkt-line.ts';
import { readReceivePackRequest, ReceivePackRequestError, type RefCommand } from '../git/receive-pack-request.ts';
import { isZeroOid } from '../git/oid.ts';
import { actorOf, refLifecycleEvents } from '../events/types.ts';
import { reportStatus } from '../git/report-status.ts';
import { SIDEBAND_DATA, SIDEBAND_ERROR, SIDEBAND_KEEPALIVE, SIDEBAND_MAX_DATA, SIDEBAND_PROGRESS, SIDEBAND_64K_MAX_DATA, sidebandPackets } from '../git/sideband.ts';
import { authorizeRefUpdate, needsAncestry } from '../auth/authorize.ts';
import { mirrorOf, mirrorRefusal } from '../sync/upstream-store.ts';
import { forgetBranchTtls } from '../db/branch-ttls.ts';
import { readRefRules } from '../db/policies.ts';
import { worthScanningForBigBlobs } from '../bigstore/push-scan.ts';
import { LimiterTimeoutError } from '../repo/limiter.ts';
import type { AppContext } from './context.ts';
import { NO_CACHE_HEADERS, BUSY_MESSAGE, type RepoParams, type ResolvedRepo, abandonBody, hasContentType, resolveRepo, requestBody, drain, sendGit, transferSignal } from './git-http.ts';
import { FairShareRefusal, shareKey } from './fair-share.ts';
import { isOutOfSpace } from '../storage/disk-space.ts';
import { isDatabaseUnavailable } from '../db/database.ts';
import { ObjectStoreUnavailableError } from '../storage/object-store.ts';

/** How often a push that is still being checked sends an empty band-1 packet (git's receive.keepAlive), at most. */
const KEEPALIVE_INTERVAL_MS = 5000;

export function registerReceivePack(app: FastifyInstance, ctx: AppContext, hide: RouteShorthandOptions): void {
  app.post<{ Params: RepoParams }>('/:org/:repo/git-receive-pack', hide, async (request, reply) => {
    const started = performance.now();
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
    const observePhase = (phase: PushPhase, ms: number) => ctx.metrics.pushPhases.observe({ phase }, ms / 1000);
    observePhase('parse', performance.now() - started);
    const sideband = pushRequest.capabilities.has('side-band-64k') ? SIDEBAND_64K_MAX_DATA : pushRequest.capabilities.has('side-band') ? SIDEBAND_MAX_DATA : 0;
    const quiet = pushRequest.capabilities.has('quiet');
    const progress: string[] = [];
    const { principal, org, repo } = resolved;
    /** Refuses the push before its pack is read, in the protocol the client asked for. */
    const refuse = (message: string, retryAfterSeconds: number) => {
      ctx.metrics.pushes.inc({ result: 'rejected' });
      abandonBody(request);
      return sendGit(reply.header('Retry-After', String(retryAfterSeconds)), contentType, sideband ? Buffer.concat(sidebandPackets(SIDEBAND_ERROR, `${message}\n`, sideband)) : pktLine(`ERR ${message}\n`));
    };
    let rules;
    let mirror: string | null;
    try {
      [rules, mirror] = await Promise.all([readRefRules(ctx.db, resolved.repoId), mirrorOf(ctx.db, resolved.repoId)]);
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      return refuse('grove: the database is unavailable; no ref was changed — retry shortly', 5);
    }
    // This credential's turn (fair share): a refusal is reported before the pack is read.
    let leave: () => void;
    try {
      leave = await ctx.fairShare.enter(shareKey(principal), org);
    } catch (error) {
      if (!(error instanceof FairShareRefusal)) throw error;
      return refuse(`grove: ${error.message}; no ref was changed`, error.retryAfterSeconds);
    }
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
      // Big blobs evicted to the chunk store: git lacks them, the store answers for them.
      const evicted: EvictedBlobs | null = (await mayLackBlobs(resolved.gitDir))
        ? {
            holds: (oid) => ctx.bigstore.heldFor(resolved.repoId, oid) !== null,
            writePack: (oid, packDir) => ctx.bigstore.writeBlobPack(ctx.repos.git, resolved.repoId, resolved.gitDir, { GIT_OBJECT_DIRECTORY: path.dirname(packDir), GIT_ALTERNATE_OBJECT_DIRECTORIES: path.join(resolved.gitDir, 'objects') }, oid, packDir),
          }
        : null;
      const outcome = await ctx.repos.push.run({
        gitDir: resolved.gitDir,
        request: pushRequest,
        pack: reader.rest(),
        snapshot,
        authorize: (command, forced) => (mirror !== null ? mirrorRefusal(mirror) : authorizeRefUpdate(principal, org, repo, rules, { ref: command.ref, kind: command.kind, ...(forced !== undefined ? { forced } : {}) })),
        needsAncestry: (command) => needsAncestry(rules, { ref: command.ref, kind: command.kind }),
        progress: (text) => {
          if (quiet || !sideband) return;
          if (streaming) write(Buffer.concat(sidebandPackets(SIDEBAND_PROGRESS, text, sideband)));
          else progress.push(text);
        },
        onReceived: startStreaming,
        repoId: resolved.repoId,
        refStore: ctx.refStore,
        events: (applied, forced) => pushEvents(resolved, applied, forced),
        signal,
        limits: { maxPackBytes: ctx.config.limits.maxPackBytes },
        onPhase: observePhase,
        evicted,
      });
      const reportStarted = performance.now();
      ctx.metrics.pushBytes.inc(outcome.packBytes);
      const okCount = outcome.results.filter((r) => r.ok).length;
      ctx.metrics.refUpdates.inc({ result: 'ok' }, okCount);
      ctx.metrics.refUpdates.inc({ result: 'rejected' }, outcome.results.length - okCount);
      ctx.metrics.pushes.inc({ result: okCount === outcome.results.length ? 'ok' : okCount === 0 ? 'rejected' : 'partial' });
      request.log.info(
        { org, repo, refs: outcome.results.length, updated: okCount, packBytes: outcome.packBytes, unpackError: outcome.unpackError },
        'push',
      );
      if (outcome.applied.length > 0) {
        ctx.repos.maintenance.notePush(resolved.gitDir);
        if (outcome.materialized !== undefined && outcome.materialized.length > 0) ctx.bigstore.heldAgain(resolved.repoId, resolved.gitDir, outcome.materialized);
        if (worthScanningForBigBlobs(outcome.packBytes, () => ctx.bigstore.repositoryHasBigBlobs(resolved.repoId))) {
          const tips = outcome.applied.filter((c) => c.kind !== 'delete').map((c) => c.newOid);
          ctx.bigstore.scanInBackground(resolved.repoId, resolved.gitDir, tips, snapshot.refs.map((r) => r.oid));
        }
      }
      // A branch created or deleted by a push starts a new life: an old TTL does not apply to it.
      await forgetBranchTtls(ctx.db, resolved.repoId, outcome.applied.filter((c) => c.kind !== 'update').map((c) => c.ref));
      // Every database write of the push (events, TTLs) on disk before "ok" is reported.
      await ctx.durability.sync();
      clearInterval(keepalive);
      startStreaming();
      const report = reportStatus(outcome.unpackError, outcome.results);
      write(sideband ? Buffer.concat([...sidebandPackets(SIDEBAND_DATA, report, sideband), FLUSH_PKT]) : report);
      observePhase('report', performance.now() - reportStarted);
      ctx.metrics.pushDuration.observe((performance.now() - started) / 1000);
    } catch (error) {
      clearInterval(keepalive);
      if (signal.aborted) {
        raw.destroy();
        return;
      }
      const busy = error instanceof LimiterTimeoutError;
      const full = isOutOfSpace(error);
      // The store is written before the ref transaction starts: when it is down, no ref moved.
      const storeDown = error instanceof ObjectStoreUnavailableError;
      const databaseDown = isDatabaseUnavailable(error);
      if (!busy && !full && !databaseDown && !storeDown) request.log.error({ err: error, org, repo }, 'push failed');
      if (full) request.log.warn({ org, repo }, 'push refused: out of disk space');
      if (databaseDown || storeDown) request.log.warn({ err: error, org, repo }, `push failed: the ${storeDown ? 'object store' : 'database'} is unavailable`);
      startStreaming();
      const message = busy
        ? `${BUSY_MESSAGE}; no ref was changed`
        : full
          ? 'grove: the server is out of disk space; no ref was changed — retry once space is freed'
          : storeDown
            ? 'grove: the object store is unavailable; no ref was changed — retry shortly'
            : databaseDown
            ? 'grove: the database is unavailable; the push was not acknowledged — fetch to see whether it landed, then retry'
            : 'grove: internal error while applying the push; no ref was changed by the failed step';
      write(sideband ? Buffer.concat(sidebandPackets(SIDEBAND_ERROR, `${message}\n`, sideband)) : pktLine(`ERR ${message}\n`));
    } finally {
      clearInterval(keepalive);
      leave();
    }
    raw.end();
  });
}


/**
 * The push's events: one `push` event with every ref change that applied (and whether it was
 * forced), plus branch/tag created/deleted events. Written with the ref change (repo/ref-store.ts).
 */
function pushEvents(target: ResolvedRepo, applied: readonly RefCommand[], forced: ReadonlyMap<RefCommand, boolean>): NewEvent[] {
  if (applied.length === 0) return [];
  const base = { org: target.org, repo: target.repo, repoId: target.repoId, actor: actorOf(target.principal) };
  const changeOf = (c: RefCommand) => ({ ref: c.ref, before: isZeroOid(c.oldOid) ? null : c.oldOid, after: isZeroOid(c.newOid) ? null : c.newOid });
  const refs = applied.map((c) => ({ ...changeOf(c), forced: forced.get(c) ?? false }));
  return [{ ...base, type: 'push', payload: { refs } }, ...refLifecycleEvents(base, applied.map(changeOf))];
}
