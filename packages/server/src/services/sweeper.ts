/**
 * The sweeper: every few seconds, deletes ephemeral repositories and branches whose
 * TTL has passed (so they go within a minute of expiry), forgets Idempotency-Key
 * answers older than a day, and drops audit entries past the retention. Branch deletions go through the one ref transaction,
 * with the branch's current value as the expected one.
 */
import type { Logger } from 'pino';
import { deleteBranchTtl, expiredBranches } from '../db/branch-ttls.ts';
import { pruneIdempotencyKeys } from '../db/idempotency.ts';
import { expiredRepos, findRepoById } from '../db/repos.ts';
import { actorOf, refLifecycleEvents } from '../events/types.ts';
import { ZERO_OID } from '../git/oid.ts';
import type { AppContext } from '../http/context.ts';
import { findRef } from '../repo/ref-snapshot.ts';
import { pruneAudit } from '../http/audit.ts';
import { deleteRepository } from './repositories.ts';

const BATCH = 100;
const IDEMPOTENCY_RETENTION_MS = 24 * 3600_000;

export class Sweeper {
  readonly #ctx: AppContext;
  readonly #logger: Pick<Logger, 'info' | 'warn'>;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<void> | null = null;

  constructor(ctx: AppContext, logger: Pick<Logger, 'info' | 'warn'>, intervalMs: number) {
    this.#ctx = ctx;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#timer = setInterval(() => void this.sweep(), this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#pass;
  }

  /** One pass; concurrent calls share it. */
  sweep(): Promise<void> {
    this.#pass ??= this.#sweep().finally(() => {
      this.#pass = null;
    });
    return this.#pass;
  }

  async #sweep(): Promise<void> {
    const ctx = this.#ctx;
    const now = new Date().toISOString();
    try {
      // Every node keeps its own chunk store, so every node collects its own (not under the lease).
      await ctx.bigstore.collectIfNeeded();
      if (!(await ctx.leases.hold('sweeper'))) return; // another node of the cluster sweeps
      for (const row of await expiredRepos(ctx.db, now, BATCH)) {
        await deleteRepository(ctx, row, { type: 'repo.deleted', org: row.org_name, repo: row.name, repoId: row.id, actor: actorOf(null), payload: { id: row.id, reason: 'expired' } });
        this.#logger.info({ org: row.org_name, repo: row.name }, 'deleted an expired repository');
      }
      for (const ttl of await expiredBranches(ctx.db, now, BATCH)) {
        const gitDir = ctx.repos.gitDir(ttl.repo_id);
        const repo = await findRepoById(ctx.db, ttl.repo_id);
        if (repo !== undefined) await ctx.repoCache.ensure({ id: repo.id, gitDir, defaultBranch: repo.default_branch });
        const current = repo === undefined ? undefined : findRef(await ctx.repos.refs.read(gitDir), ttl.ref)?.oid;
        if (current !== undefined) {
          const events = repo ? refLifecycleEvents({ org: repo.org_name, repo: repo.name, repoId: repo.id, actor: actorOf(null) }, [{ ref: ttl.ref, before: current, after: null }]) : [];
          const result = await ctx.refStore.apply({ id: ttl.repo_id, gitDir }, [{ ref: ttl.ref, oldOid: current, newOid: ZERO_OID }], () => events);
          if (!result.ok) continue; // moved meanwhile: try again next pass
        }
        await deleteBranchTtl(ctx.db, ttl.repo_id, ttl.ref);
      }
      await ctx.storeSweep?.sweep();
      await ctx.bigBlobCatalogue?.collect();
      await ctx.revokedTokens.prune();
      await pruneIdempotencyKeys(ctx.db, new Date(Date.now() - IDEMPOTENCY_RETENTION_MS).toISOString());
      await pruneAudit(ctx.db, new Date(Date.now() - ctx.config.auditRetentionDays * 86400_000).toISOString());
    } catch (error) {
      this.#logger.warn({ err: error }, 'sweep failed; retrying next pass');
    }
  }
}
