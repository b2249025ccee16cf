/**
 * What every API write shares with a push: the repository lookup, the same
 * authorizeRefUpdate() decision (key branch globs and ref policies), and the one
 * compare-and-swap ref transaction. A stale expected value is 409 `stale_ref` with
 * the ref's current value in `details.current`.
 */
import type { FastifyRequest } from 'fastify';
import { authorizeRefUpdate, type RefUpdateRequest } from '../auth/authorize.ts';
import type { Principal } from '../auth/principal.ts';
import { readRefRules } from '../db/policies.ts';
import { findRepo, type RepoWithOrg } from '../db/repos.ts';
import { GroveError, notFound } from '../errors.ts';
import { isZeroOid, ZERO_OID } from '../git/oid.ts';
import type { AppContext } from '../http/context.ts';
import { actorOf, refLifecycleEvents, type NewEvent } from '../events/types.ts';
import { findRef } from '../repo/ref-snapshot.ts';
import type { RefUpdate } from '../repo/ref-transaction.ts';
import { resolveCommit } from '../repo/resolve.ts';
import { mirrorOf, mirrorRefusal } from '../sync/upstream-store.ts';
import { principalOf, requireAccess } from './principal.ts';

export interface WriteTarget {
  readonly principal: Principal;
  readonly row: RepoWithOrg;
  readonly org: string;
  readonly repo: string;
  readonly gitDir: string;
}

export async function writeTarget(ctx: AppContext, request: FastifyRequest, org: string, repo: string, action: 'read' | 'write' = 'write'): Promise<WriteTarget> {
  requireAccess(request, action, { kind: 'repo', org, repo });
  const row = await findRepo(ctx.db, org, repo);
  if (!row) throw notFound(`repository ${org}/${repo}`);
  const gitDir = ctx.repos.gitDir(row.id);
  await ctx.repoCache.ensure({ id: row.id, gitDir, defaultBranch: row.default_branch }, request.answered);
  return { principal: principalOf(request), row, org, repo, gitDir };
}

/** 403 with the reason when the principal may not make this ref change. */
export async function requireRefWrite(ctx: AppContext, target: WriteTarget, update: RefUpdateRequest): Promise<void> {
  const mirror = await mirrorOf(ctx.db, target.row.id);
  if (mirror !== null) throw new GroveError('forbidden', mirrorRefusal(mirror));
  const rules = await readRefRules(ctx.db, target.row.id);
  const denial = authorizeRefUpdate(target.principal, target.org, target.repo, rules, update);
  if (denial !== null) throw new GroveError('forbidden', denial);
}

/** The current value of a ref, or null. */
export async function currentRef(ctx: AppContext, gitDir: string, ref: string): Promise<string | null> {
  return findRef(await ctx.repos.refs.read(gitDir), ref)?.oid ?? null;
}

/**
 * Applies one compare-and-swap update; a lost race is 409 stale_ref. The events that
 * describe the change (`extra`, plus the created/deleted branch or tag it implies) are
 * written with it (repo/ref-store.ts).
 */
export async function applyRefUpdate(ctx: AppContext, target: WriteTarget, update: RefUpdate, extra: readonly Pick<NewEvent, 'type' | 'payload'>[] = []): Promise<void> {
  const base = { org: target.org, repo: target.repo, repoId: target.row.id, actor: actorOf(target.principal) };
  const change = { ref: update.ref, before: isZeroOid(update.oldOid) ? null : update.oldOid, after: isZeroOid(update.newOid) ? null : update.newOid };
  const events: NewEvent[] = [
    ...extra.map((e) => ({ ...base, ...e, payload: { ...e.payload, refs: [change] } })),
    ...refLifecycleEvents(base, [change]),
  ];
  const result = await ctx.refStore.apply({ id: target.row.id, gitDir: target.gitDir }, [update], () => events);
  if (!result.ok) {
    const current = await currentRef(ctx, target.gitDir, update.ref);
    throw new GroveError('stale_ref', `${update.ref} was not updated: ${result.reason}`, { ref: update.ref, current });
  }
  ctx.repos.maintenance.notePush(target.gitDir);
}

/** 409 unless the ref is at `expected` (zeros or null = must not exist). */
export function requireExpected(ref: string, current: string | null, expected: string | undefined): void {
  if (expected === undefined) return;
  const wanted = isZeroOid(expected) ? null : expected;
  if (current !== wanted) {
    throw new GroveError('stale_ref', `${ref} is at ${current ?? 'nothing'}, not at the expected ${expected}`, { ref, current });
  }
}

/** A commit id for a user-supplied revision, or 404. */
export async function commitFor(ctx: AppContext, gitDir: string, rev: string, what: string): Promise<string> {
  const oid = await resolveCommit(ctx.repos.git, gitDir, rev);
  if (oid === null) throw new GroveError('not_found', `${what} ${JSON.stringify(rev)} does not name a commit in this repository`);
  return oid;
}

export { ZERO_OID };
