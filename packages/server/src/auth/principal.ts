/** Who is asking: the root admin, an API key, or a token signed by an org's key. */

export type Scope = 'read' | 'write' | 'admin';

export const SCOPES: readonly Scope[] = ['read', 'write', 'admin'];

export function scopeRank(scope: Scope): number {
  return SCOPES.indexOf(scope);
}

/** What a key may reach: an org, optionally one repo, optionally only some branches (for writes). */
export interface Grant {
  readonly org: string;
  readonly repo?: string;
  readonly branches?: readonly string[];
}

export type Principal =
  | { readonly kind: 'root' }
  | {
      readonly kind: 'key';
      readonly id: string;
      readonly name: string | null;
      readonly scope: Scope;
      readonly resources: readonly Grant[];
      /** Epoch milliseconds, or null for a key that does not expire. */
      readonly expiresAt: number | null;
    }
  | {
      readonly kind: 'signed';
      /** The token's jti. */
      readonly id: string;
      readonly org: string;
      readonly signingKeyId: string;
      readonly scope: Scope;
      readonly resources: readonly Grant[];
      readonly expiresAt: number;
    };

/** A short description for logs and audit: never the secret. */
export function describePrincipal(principal: Principal): string {
  switch (principal.kind) {
    case 'root':
      return 'root';
    case 'key':
      return `key ${principal.id}${principal.name ? ` (${principal.name})` : ''}`;
    case 'signed':
      return `signed token ${principal.id} (org ${principal.org})`;
  }
}
