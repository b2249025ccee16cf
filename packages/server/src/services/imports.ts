/**
 * One-call import of a remote repository with its whole history (docs/remote-sync.md,
 * "Import"): `POST /orgs/{org}/repos {name, import: {url, credentialId?, mirror?}}`.
 *
 * The repository exists at once (empty, state `importing`: git clients are told "being
 * imported (42%)"); in the background `git clone --bare` fetches everything into a staging
 * repository under its `objects/`, its objects move in, and every branch and tag is created
 * through the one ref path in one transaction (in a cluster: one pack published, one
 * PostgreSQL transaction) with one `repo.import.completed` event — not one event per ref.
 * With `mirror`, a read-only upstream `origin` is attached in the same step, its tracking refs
 * written in that same transaction, so the first poll has nothing to fetch. A failure removes
 * the repository (its name is free again) and keeps the import record with the reason.
 */
import { rm } from 'node:fs/promises';
import type { Principal } from '../auth/principal.ts';
import { findRepoByIdCached, updateRepo, type RepoRow } from '../db/repos.ts';
import type { RepoImportsTable } from '../db/schema.ts';
import { actorOf, type NewEvent } from '../events/types.ts';
import { ZERO_OID } from '../git/oid.ts';
import type { AppContext } from '../http/context.ts';
import { adoptClone, cloneBare, RemoteGitError } from '../repo/remote-git.ts';
import { OutboundRefusedError } from '../outbound/guarded-fetch.ts';
import { MIRROR_RULES, trackingRef } from '../sync/rules.ts';
import { newId, newUpstreamRow, remoteAccess } from '../sync/upstream-store.ts';
import { deleteRepository } from './repositories.ts';

export interface ImportSpec {
  readonly url: string;
  readonly credentialId: string | null;
  readonly mirror: boolean;
}

export function importJson(row: RepoImportsTable) {
  return {
    id: row.id,
    repo: row.repo_name,
    url: row.url,
    mirror: row.mirror === 1,
    status: row.status,
    progress: row.progress,
    refs: row.refs,
    error: row.error_code === null ? null : { code: row.error_code, message: row.error_message ?? '' },
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

/** Imports running on this node: their progress (for git's "being imported" answer) and their work (shutdown). */
export class Imports {
  readonly #progress = new Map<string, number>();
  readonly #running = new Set<Promise<void>>();

  /** The percentage of a repository being imported here, or null when it is not. */
  progressOf(repoId: string): number | null {
    return this.#progress.get(repoId) ?? null;
  }

  async idle(): Promise<void> {
    await Promise.all(this.#running);
  }

  /**
   * Records the import (and a mirror's upstream, paused until the import ends) and starts it
   * in the background; returns the record and the mirror's webhook secret (shown once).
   */
  async start(ctx: AppContext, repo: RepoRow, org: string, spec: ImportSpec, principal: Principal): Promise<{ record: RepoImportsTable; upstreamId: string | null; webhookSecret: string | null }> {
    const record: RepoImportsTable = {
      id: newId('imp'),
      org_id: repo.org_id,
      repo_id: repo.id,
      repo_name: repo.name,
      url: spec.url,
      mirror: spec.mirror ? 1 : 0,
      status: 'importing',
      progress: 0,
      refs: 0,
      error_code: null,
      error_message: null,
      created_at: new Date().toISOString(),
      finished_at: null,
    };
    await ctx.db.insertInto('repo_imports').values(record).execute();
    const mirror = spec.mirror ? await this.#attachMirror(ctx, repo, spec) : null;
    await ctx.durability.sync();
    this.#progress.set(repo.id, 0);
    const work = this.#run(ctx, repo, org, spec, principal, record, mirror?.id ?? null).finally(() => {
      this.#progress.delete(repo.id);
      this.#running.delete(work);
    });
    this.#running.add(work);
    return { record, upstreamId: mirror?.id ?? null, webhookSecret: mirror?.webhookSecret ?? null };
  }

  async #run(ctx: AppContext, repo: RepoRow, org: string, spec: ImportSpec, principal: Principal, record: RepoImportsTable, upstreamId: string | null): Promise<void> {
    const gitDir = ctx.repos.gitDir(repo.id);
    const actor = actorOf(principal);
    let lastSaved = 0;
    try {
      const access = await remoteAccess(ctx.db, ctx.secrets, ctx.outbound, { url: spec.url, credential_id: spec.credentialId });
      const cloned = await cloneBare(ctx.repos.git, gitDir, access, { allowHttp: ctx.config.sync.allowInsecureRemotes }, (percent) => {
        this.#progress.set(repo.id, percent);
        if (percent - lastSaved >= 5) {
          lastSaved = percent;
          void ctx.db.updateTable('repo_imports').set({ progress: percent }).where('id', '=', record.id).execute().catch(() => undefined);
        }
      });
      try {
        await adoptClone(cloned, gitDir);
        const updates = [...cloned.refs].flatMap(([ref, oid]) => [
          { ref, oldOid: ZERO_OID, newOid: oid },
          ...(upstreamId !== null ? [{ ref: trackingRef(upstreamId, ref), oldOid: ZERO_OID, newOid: oid }] : []),
        ]);
        const event: NewEvent = { type: 'repo.import.completed', org, repo: repo.name, repoId: repo.id, actor, payload: { importId: record.id, url: spec.url, refs: cloned.refs.size, mirror: spec.mirror } };
        const result = await ctx.refStore.apply({ id: repo.id, gitDir }, updates, () => [event]);
        if (!result.ok) throw new Error(`the imported refs could not be written: ${result.reason}`);
        if (cloned.head !== null && cloned.head !== repo.default_branch && cloned.refs.has(`refs/heads/${cloned.head}`)) {
          await updateRepo(ctx.db, repo.id, { default_branch: cloned.head, updated_at: new Date().toISOString() });
          await ctx.repos.setDefaultBranch(repo.id, cloned.head);
        }
        ctx.repos.maintenance.notePush(gitDir);
        if (upstreamId !== null) {
          const now = Date.now();
          await ctx.db.updateTable('upstreams').set({ state: 'active', paused_reason: null, last_success_at: new Date(now).toISOString(), next_poll_at: new Date(now + ctx.config.sync.pollSeconds * 1000).toISOString() }).where('id', '=', upstreamId).execute();
        }
        await ctx.db.updateTable('repo_imports').set({ status: 'succeeded', progress: 100, refs: cloned.refs.size, finished_at: new Date().toISOString() }).where('id', '=', record.id).execute();
        await ctx.durability.sync();
      } finally {
        await rm(cloned.dir, { recursive: true, force: true });
      }
    } catch (error) {
      const failure = error instanceof RemoteGitError
        ? { code: error.failure, message: error.message }
        : error instanceof OutboundRefusedError
          ? { code: 'remote_refused', message: error.message }
          : { code: 'internal', message: 'internal error during the import (see the server log)' };
      await ctx.db.updateTable('repo_imports').set({ status: 'failed', error_code: failure.code, error_message: failure.message, finished_at: new Date().toISOString() }).where('id', '=', record.id).execute();
      // The name is free again: the half-made repository goes, with its row and a repo.deleted event.
      const row = await findRepoByIdCached(ctx.db, repo.id);
      if (row !== undefined) {
        await deleteRepository(ctx, row, { type: 'repo.deleted', org, repo: repo.name, repoId: repo.id, actor, payload: { id: repo.id, reason: 'import failed' } });
      }
      await ctx.events.change(async () => undefined, () => [{ type: 'repo.import.failed', org, repo: repo.name, repoId: repo.id, actor, payload: { importId: record.id, url: spec.url, error: failure } }]);
      if (failure.code === 'internal') throw error;
    }
  }

  /** The read-only upstream of a mirror import, paused until the import ends (its tracking refs come with the imported refs). */
  async #attachMirror(ctx: AppContext, repo: RepoRow, spec: ImportSpec): Promise<{ id: string; webhookSecret: string }> {
    const { row, webhookSecret } = newUpstreamRow(ctx.secrets, {
      repo_id: repo.id,
      name: 'origin',
      url: spec.url,
      credential_id: spec.credentialId,
      rules: JSON.stringify(MIRROR_RULES),
      read_only: 1,
      poll_interval_s: ctx.config.sync.pollSeconds,
      push_forward: 0,
      state: 'paused',
      paused_reason: 'importing',
    }, new Date().toISOString());
    await ctx.db.insertInto('upstreams').values(row).execute();
    return { id: row.id, webhookSecret };
  }
}
