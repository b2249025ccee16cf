/**
 * Grants bound to ids. A key's grant is stored with the ids of the org and repository it
 * named when it was minted; on every authentication the ids are turned back into the
 * current names. A deleted target reaches nothing, a renamed one is followed, and a new
 * org or repository that takes a deleted one's name is not reachable by the old key.
 */
import type { Grant } from '../auth/principal.ts';
import type { Db } from './database.ts';
import { findOrgById, findOrgByName } from './orgs.ts';
import { findRepo, findRepoByIdCached } from './repos.ts';

/** A grant as stored: the names at minting time plus the ids that decide. */
export interface BoundGrant extends Grant {
  readonly orgId: string;
  readonly repoId?: string;
}

/** The stored grants of a key row; null when the JSON is not what Grove writes. */
export function parseBoundGrants(json: string): BoundGrant[] | null {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  if (!Array.isArray(value)) return null;
  const grants: BoundGrant[] = [];
  for (const item of value as Record<string, unknown>[]) {
    const { org, repo, branches, orgId, repoId } = item ?? {};
    if (typeof org !== 'string' || typeof orgId !== 'string') return null;
    if (repo !== undefined && (typeof repo !== 'string' || typeof repoId !== 'string')) return null;
    if (branches !== undefined && (!Array.isArray(branches) || branches.some((b) => typeof b !== 'string'))) return null;
    grants.push({
      org,
      orgId,
      ...(repo !== undefined ? { repo: repo as string, repoId: repoId as string } : {}),
      ...(branches !== undefined ? { branches: branches as string[] } : {}),
    });
  }
  return grants;
}

/** Binds names to ids; `missing` names the first target that does not exist. */
export async function bindGrants(db: Db, grants: readonly Grant[]): Promise<{ bound: BoundGrant[] } | { missing: string }> {
  const bound: BoundGrant[] = [];
  for (const grant of grants) {
    if (grant.repo === undefined) {
      const org = await findOrgByName(db, grant.org);
      if (org === undefined) return { missing: `org ${grant.org}` };
      bound.push({ ...grant, orgId: org.id });
    } else {
      const repo = await findRepo(db, grant.org, grant.repo);
      if (repo === undefined) return { missing: `repository ${grant.org}/${grant.repo}` };
      bound.push({ ...grant, orgId: repo.org_id, repoId: repo.id });
    }
  }
  return { bound };
}

export interface ResolvedGrant {
  /** The grant under its target's current names. */
  readonly grant: Grant;
  /** False when the org or repository it was bound to has been deleted. */
  readonly exists: boolean;
}

/** The stored grants under current names. A grant stored before ids were kept (no orgId) reaches nothing. */
export async function resolveGrants(db: Db, stored: readonly BoundGrant[]): Promise<ResolvedGrant[]> {
  return Promise.all(stored.map(async (grant): Promise<ResolvedGrant> => {
    const names = { org: grant.org, ...(grant.repo !== undefined ? { repo: grant.repo } : {}), ...(grant.branches ? { branches: grant.branches } : {}) };
    if (typeof grant.orgId !== 'string' || grant.orgId === '') return { grant: names, exists: false };
    if (grant.repoId === undefined) {
      const org = await findOrgById(db, grant.orgId);
      return org === undefined ? { grant: names, exists: false } : { grant: { ...names, org: org.name }, exists: true };
    }
    const repo = await findRepoByIdCached(db, grant.repoId);
    if (repo === undefined || repo.org_id !== grant.orgId) return { grant: names, exists: false };
    return { grant: { ...names, org: repo.org_name, repo: repo.name }, exists: true };
  }));
}

/** What a key reaches now: the grants whose targets still exist, under their current names. */
export async function liveGrants(db: Db, stored: readonly BoundGrant[]): Promise<Grant[]> {
  return (await resolveGrants(db, stored)).filter((r) => r.exists).map((r) => r.grant);
}
