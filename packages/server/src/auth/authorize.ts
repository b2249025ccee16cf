/**
 * The one authorization decision (architecture §5): a pure function of who asks,
 * what they want to do and to what. The git routes and every API route call it;
 * the route decides the action, never a client-supplied parameter.
 *
 * A resource the principal may not see at all is reported as not found, so
 * existence does not leak; one it may see but not change is forbidden.
 */

export type Principal = { readonly kind: 'root' };

/** read: clone, fetch, read APIs · write: push, write APIs · admin: create/update/delete repos and orgs. */
export type Action = 'read' | 'write' | 'admin';

export type Resource =
  | { readonly kind: 'server' }
  | { readonly kind: 'org'; readonly org: string }
  | { readonly kind: 'repo'; readonly org: string; readonly repo: string };

export type Decision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly status: 'not_found' | 'forbidden'; readonly reason: string };

export function authorize(principal: Principal, _action: Action, _resource: Resource): Decision {
  switch (principal.kind) {
    case 'root':
      return { allowed: true };
  }
}
