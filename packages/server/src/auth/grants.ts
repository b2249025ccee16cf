/**
 * Validation of key resources and the no-escalation rule for minting. Pure.
 */
import { checkName } from '../names.ts';
import { checkBranchGlob, globWithin } from './glob.ts';
import { SCOPES, scopeRank, type Grant, type Principal, type Scope } from './principal.ts';

const MAX_GRANTS = 100;
const MAX_BRANCH_GLOBS = 50;

/** Checks an untrusted resources list; returns it typed, or the reason it is refused. */
export function parseGrants(value: unknown): { grants: Grant[] } | { error: string } {
  if (!Array.isArray(value) || value.length === 0) return { error: 'resources must be a non-empty array' };
  if (value.length > MAX_GRANTS) return { error: `at most ${MAX_GRANTS} resources` };
  const grants: Grant[] = [];
  for (const [index, item] of value.entries()) {
    const where = `resources[${index}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return { error: `${where} must be an object` };
    const { org, repo, branches, ...rest } = item as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) return { error: `${where} has unknown field ${JSON.stringify(unknown[0])}` };
    const orgProblem = checkName('org', org);
    if (orgProblem) return { error: `${where}.org: ${orgProblem}` };
    if (repo !== undefined) {
      const repoProblem = checkName('repo', repo);
      if (repoProblem) return { error: `${where}.repo: ${repoProblem}` };
    }
    let globs: string[] | undefined;
    if (branches !== undefined) {
      if (!Array.isArray(branches) || branches.length === 0) return { error: `${where}.branches must be a non-empty array of patterns` };
      if (branches.length > MAX_BRANCH_GLOBS) return { error: `${where}.branches: at most ${MAX_BRANCH_GLOBS} patterns` };
      for (const glob of branches) {
        const globProblem = checkBranchGlob(glob as string);
        if (globProblem) return { error: `${where}.branches: ${globProblem}` };
      }
      globs = branches as string[];
    }
    grants.push({ org: org as string, ...(repo !== undefined ? { repo: repo as string } : {}), ...(globs ? { branches: globs } : {}) });
  }
  return { grants };
}

export function isScope(value: unknown): value is Scope {
  return typeof value === 'string' && (SCOPES as readonly string[]).includes(value);
}

/** True when `inner` reaches nothing that `outer` does not. */
export function grantWithin(inner: Grant, outer: Grant): boolean {
  if (inner.org !== outer.org) return false;
  if (outer.repo !== undefined && inner.repo !== outer.repo) return false;
  if (outer.branches === undefined) return true;
  if (inner.branches === undefined) return false;
  return inner.branches.every((glob) => outer.branches!.some((outerGlob) => globWithin(glob, outerGlob)));
}

export interface MintRequest {
  readonly scope: Scope;
  readonly resources: readonly Grant[];
  /** Epoch ms, or null for no expiry. */
  readonly expiresAt: number | null;
}

/** May `minter` create a key like this? Returns null, or why not. */
export function checkMint(minter: Principal, request: MintRequest): string | null {
  if (minter.kind === 'root') return null;
  if (minter.kind === 'signed') return 'signed tokens cannot create API keys';
  if (minter.scope !== 'admin') return 'only admin keys can create API keys';
  if (scopeRank(request.scope) > scopeRank(minter.scope)) return `cannot create a ${request.scope} key from a ${minter.scope} key`;
  if (minter.expiresAt !== null && (request.expiresAt === null || request.expiresAt > minter.expiresAt)) {
    return `the new key must expire no later than this key (${new Date(minter.expiresAt).toISOString()})`;
  }
  for (const grant of request.resources) {
    if (!minter.resources.some((own) => grantWithin(grant, own))) {
      return `resource ${grant.org}${grant.repo ? `/${grant.repo}` : ''}${grant.branches ? ` [${grant.branches.join(', ')}]` : ''} is outside this key's resources`;
    }
  }
  return null;
}
