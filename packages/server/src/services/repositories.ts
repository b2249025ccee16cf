/**
 * Repository lifecycle across the database and the disk: creating (empty, fork or
 * snapshot, optionally ephemeral) and deleting (dissociating borrowers first).
 * Used by the REST API and by the sweeper.
 */
import { randomUUID } from 'node:crypto';
import { isUniqueViolation } from '../db/database.ts';
import { clearForkOf, deleteRepoRow, findBorrowers, findRepo, insertRepo, type RepoRow } from '../db/repos.ts';
import { GroveError } from '../errors.ts';
import type { NewEvent } from '../events/types.ts';
import { ZERO_OID } from '../git/oid.ts';
import type { AppContext } from '../http/context.ts';
import { borrowObjects, dissociate } from '../repo/forks.ts';
import { writeHead } from '../repo/init.ts';

export interface NewRepository {
  readonly orgId: string;
  readonly org: string;
  readonly name: string;
  /** Defaults to the source's default branch for forks, else main. */
  readonly defaultBranch?: string | undefined;
  readonly description: string;
  readonly expiresAt: string | null;
  readonly source?: { readonly row: RepoRow; readonly snapshot: boolean } | undefined;
}

/**
 * The repository is made on disk first (its directory is named by a new id, so nothing can
 * collide there), then its row and its `repo.created` event commit together: a crash leaves
 * at most an unreferenced directory, never a row without a repository or a change without
 * its event.
 */
export async function createRepository(ctx: AppContext, spec: NewRepository, event: (row: RepoRow) => NewEvent): Promise<RepoRow> {
  const now = new Date().toISOString();
  const source = spec.source;
  const defaultBranch = spec.defaultBranch ?? source?.row.default_branch ?? 'main';
  const row: RepoRow = {
    id: randomUUID().replaceAll('-', ''),
    org_id: spec.orgId,
    name: spec.name,
    default_branch: defaultBranch,
    description: spec.description,
    created_at: now,
    updated_at: now,
    fork_of: source?.row.id ?? null,
    expires_at: spec.expiresAt,
  };
  const taken = () => new GroveError('already_exists', `repository ${spec.org}/${spec.name} already exists`);
  if (await findRepo(ctx.db, spec.org, spec.name)) throw taken(); // before any work on disk
  try {
    await ctx.repos.create(row.id, defaultBranch);
    if (source) await populateFrom(ctx, row, source.row, source.snapshot, defaultBranch);
    await ctx.events.change((trx) => insertRepo(ctx.db, row, trx), () => [event(row)]);
  } catch (error) {
    await ctx.repos.remove(row.id);
    if (isUniqueViolation(error)) throw taken();
    throw error;
  }
  return row;
}

async function populateFrom(ctx: AppContext, row: RepoRow, sourceRow: RepoRow, snapshot: boolean, defaultBranch: string): Promise<void> {
  const gitDir = ctx.repos.gitDir(row.id);
  const sourceDir = ctx.repos.gitDir(sourceRow.id);
  await ctx.repoCache.ensure({ id: sourceRow.id, gitDir: sourceDir, defaultBranch: sourceRow.default_branch });
  await borrowObjects(gitDir, sourceDir);
  // Big blobs the source's git may no longer hold are read from the chunk store: the fork may too.
  await ctx.bigstore.copyLinks(sourceRow.id, row.id);
  await ctx.bigBlobCatalogue?.copyLinks(sourceRow.id, row.id);
  const refs = await ctx.repos.refs.read(sourceDir);
  if (!snapshot) {
    // Through the one ref path, as creations: in a cluster that publishes the fork's objects.
    const copied = await ctx.refStore.apply({ id: row.id, gitDir }, refs.refs.map((r) => ({ ref: r.name, oldOid: ZERO_OID, newOid: r.oid })));
    if (!copied.ok) throw new Error(`fork ref copy failed: ${copied.reason}`);
    if (refs.head && defaultBranch === sourceRow.default_branch) await writeHead(gitDir, refs.head.target.replace(/^refs\/heads\//, ''));
    return;
  }
  // A snapshot: one root commit holding the tree of the source's default branch.
  const head = refs.refs.find((r) => r.name === `refs/heads/${sourceRow.default_branch}`);
  if (head === undefined) return; // an empty source gives an empty snapshot
  const commit = (await ctx.repos.git.check(['commit-tree', `${head.oid}^{tree}`, '-m', `Snapshot of ${sourceRow.name} at ${head.oid}`], {
    gitDir,
    env: { GIT_AUTHOR_NAME: 'Grove', GIT_AUTHOR_EMAIL: 'root@grove.invalid', GIT_COMMITTER_NAME: 'Grove', GIT_COMMITTER_EMAIL: 'root@grove.invalid' },
  })).toString().trim();
  const result = await ctx.refStore.apply({ id: row.id, gitDir }, [{ ref: `refs/heads/${defaultBranch}`, oldOid: ZERO_OID, newOid: commit }]);
  if (!result.ok) throw new Error(`snapshot ref update failed: ${result.reason}`);
}

/**
 * Deletes a repository. Every repository that borrows its objects, directly or through
 * a chain of forks, first gets its own copies — the deepest first, so that a middle
 * fork's repack never drops an object a fork of it still borrows.
 */
export async function deleteRepository(ctx: AppContext, row: RepoRow, event: NewEvent): Promise<void> {
  const chain: RepoRow[] = [];
  let level = await findBorrowers(ctx.db, row.id);
  while (level.length > 0) {
    chain.push(...level);
    level = (await Promise.all(level.map((r) => findBorrowers(ctx.db, r.id)))).flat();
  }
  for (const borrower of chain.reverse()) {
    await dissociate(ctx.repos.git, ctx.repos.gitDir(borrower.id));
    await clearForkOf(ctx.db, borrower.id);
  }
  // The row and its repo.deleted event together; then the directory (a crash between leaves only an unreferenced one).
  await ctx.events.change((trx) => deleteRepoRow(ctx.db, row.id, trx), () => [event]);
  await ctx.repos.remove(row.id);
}
