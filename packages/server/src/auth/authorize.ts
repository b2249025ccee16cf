/**
 * The one authorization decision (architecture §5): pure functions of who asks,
 * what they want to do and to what. The git routes and every API route call them;
 * the route decides the action, never a client-supplied parameter.
 *
 * - A resource outside the principal's grants is reported as not found, so existence
 *   does not leak; one it can see but not change is forbidden, with the reason.
 * - read < write < admin. Org-level administration (repos, keys, signing keys of the
 *   org) needs an org-wide admin grant; server-level (orgs) is the root's alone.
 * - Branch globs limit where a write key may move refs; such a key cannot touch tags
 *   or other refs. Repo ref policies apply to everyone; `protected` refs move only
 *   for admins.
 */
import { branchName } from '../git/ref-name.ts';
import { matchesBranchGlob } from './glob.ts';
import { scopeRank, type Grant, type Principal, type Scope } from './principal.ts';

export type { Principal } from './principal.ts';

export type Action = Scope;

export type Resource =
  | { readonly kind: 'server' }
  | { readonly kind: 'org'; readonly org: string }
  | { readonly kind: 'repo'; readonly org: string; readonly repo: string };

export type Decision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly status: 'not_found' | 'forbidden'; readonly reason: string };

const ALLOW: Decision = { allowed: true };

function deny(status: 'not_found' | 'forbidden', reason: string): Decision {
  return { allowed: false, status, reason };
}

/** The grants of a principal that cover a repo (org-wide or that exact repo). */
export function grantsForRepo(resources: readonly Grant[], org: string, repo: string): Grant[] {
  return resources.filter((g) => g.org === org && (g.repo === undefined || g.repo === repo));
}

export function authorize(principal: Principal, action: Action, resource: Resource): Decision {
  if (principal.kind === 'root') return ALLOW;
  const scopeOk = scopeRank(principal.scope) >= scopeRank(action);
  const scopeReason = `this ${principal.kind === 'key' ? 'key' : 'token'} has scope ${principal.scope}; ${action} access is needed`;
  switch (resource.kind) {
    case 'server':
      return deny('forbidden', 'only the root admin token can manage organizations');
    case 'org': {
      const grants = principal.resources.filter((g) => g.org === resource.org);
      if (grants.length === 0) return deny('not_found', `org ${resource.org} not found`);
      if (action === 'read') return ALLOW;
      if (!scopeOk) return deny('forbidden', scopeReason);
      if (!grants.some((g) => g.repo === undefined && g.branches === undefined)) {
        return deny('forbidden', `${action} access to org ${resource.org} needs a grant on the whole org`);
      }
      return ALLOW;
    }
    case 'repo': {
      const grants = grantsForRepo(principal.resources, resource.org, resource.repo);
      if (grants.length === 0) return deny('not_found', `repository ${resource.org}/${resource.repo} not found`);
      if (!scopeOk) return deny('forbidden', scopeReason);
      // Branch globs confine a key to some refs: it may not rename, delete or re-policy the whole repo.
      if (action === 'admin' && !grants.some((g) => g.branches === undefined)) {
        return deny('forbidden', `administering ${resource.org}/${resource.repo} needs a grant that is not limited to branches`);
      }
      return ALLOW;
    }
  }
}

/** A ref policy rule of a repository (`PUT /repos/{org}/{repo}/policies`). */
export interface RefRule {
  readonly pattern: string;
  readonly protected?: boolean;
  readonly noForcePush?: boolean;
  readonly noDelete?: boolean;
}

export interface RefUpdateRequest {
  readonly ref: string;
  readonly kind: 'create' | 'update' | 'delete';
  /** Whether an update is a non-fast-forward; undefined when not known yet. */
  readonly forced?: boolean;
}

function rulesFor(rules: readonly RefRule[], ref: string): RefRule[] {
  const branch = branchName(ref);
  return branch === null ? [] : rules.filter((rule) => matchesBranchGlob(rule.pattern, branch));
}

/** True when deciding this update needs to know whether it is a force push. */
export function needsAncestry(rules: readonly RefRule[], update: RefUpdateRequest): boolean {
  return update.kind === 'update' && rulesFor(rules, update.ref).some((rule) => rule.noForcePush);
}

/**
 * May this principal create, update or delete this ref of this repo? Returns null, or
 * the reason shown to the client (`! [remote rejected] … (<reason>)`). Repo-level
 * write access must already have been granted by authorize().
 */
export function authorizeRefUpdate(principal: Principal, org: string, repo: string, rules: readonly RefRule[], update: RefUpdateRequest): string | null {
  const isAdmin = principal.kind === 'root' || principal.scope === 'admin';
  if (principal.kind !== 'root') {
    const grants = grantsForRepo(principal.resources, org, repo);
    // A grant without branches allows every ref; otherwise the branch must match a glob.
    if (!grants.some((g) => g.branches === undefined)) {
      const branch = branchName(update.ref);
      const globs = grants.flatMap((g) => g.branches ?? []);
      if (branch === null) return `this key may only push to branches matching ${globs.join(', ')}`;
      if (!globs.some((glob) => matchesBranchGlob(glob, branch))) {
        return `this key may only push to branches matching ${globs.join(', ')}`;
      }
    }
  }
  for (const rule of rulesFor(rules, update.ref)) {
    if (rule.protected && !isAdmin) return `${update.ref} is protected: only admin keys may ${update.kind === 'delete' ? 'delete' : 'move'} it`;
    if (rule.noDelete && update.kind === 'delete') return `${update.ref} may not be deleted (repo policy ${rule.pattern})`;
    if (rule.noForcePush && update.kind === 'update' && update.forced === true) return `${update.ref} may not be force-pushed (repo policy ${rule.pattern})`;
  }
  return null;
}

/**
 * Whether a key limited to branches may ask for a remote sync of `refs` (full-ref globs; null:
 * every ref): only when it names its refs and each is a branch its globs cover — the glob
 * itself, or one branch matching it. Null when allowed, else why not. Pure.
 */
export function refGlobsWithinGrants(principal: Principal, org: string, repo: string, refs: readonly string[] | null): string | null {
  if (principal.kind === 'root') return null;
  const grants = grantsForRepo(principal.resources, org, repo);
  if (grants.some((g) => g.branches === undefined)) return null;
  const globs = grants.flatMap((g) => g.branches ?? []);
  const refusal = `this key may only sync branches matching ${globs.join(', ')}: name them in refs (refs/heads/<branch or one of those patterns>)`;
  if (refs === null) return refusal;
  for (const ref of refs) {
    const branch = branchName(ref);
    if (branch === null) return refusal;
    const covered = globs.includes(branch) || (!/[*?]/.test(branch) && globs.some((glob) => matchesBranchGlob(glob, branch)));
    if (!covered) return refusal;
  }
  return null;
}
