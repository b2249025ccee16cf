/** Resource shapes returned by the Grove API (camelCase JSON). */

export interface Org {
  id: string;
  name: string;
  createdAt: string;
}

export interface Repo {
  id: string;
  org: string;
  name: string;
  defaultBranch: string;
  description: string;
  /** Smart HTTP URL for git clone/fetch/push. */
  cloneUrl: string;
  createdAt: string;
  updatedAt: string;
  /** Id of the repository whose objects this one shares (fork or snapshot). */
  forkOf: string | null;
  /** When an ephemeral repository is deleted. */
  expiresAt: string | null;
}

/** One page of a listing; pass nextCursor back as cursor for the next page (null on the last). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface PageOptions {
  limit?: number;
  cursor?: string;
}

export type Scope = 'read' | 'write' | 'admin';

/** What a key reaches: an org, optionally one repo, optionally only some branches (for writes). */
export interface Grant {
  org: string;
  repo?: string;
  /** Branch globs (`agent-7/*`, `feature/**`) a write key may create, update or delete. */
  branches?: string[];
  /** In answers only: the org or repository the grant was bound to was deleted, so it reaches nothing. */
  readonly deleted?: boolean;
}

export interface ApiKey {
  id: string;
  scope: Scope;
  resources: Grant[];
  name: string | null;
  labels: Record<string, string>;
  createdBy: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** Returned once, at creation: the only time the token is visible. */
export interface CreatedApiKey extends ApiKey {
  token: string;
}

export interface SigningKey {
  id: string;
  org: string;
  name: string;
  publicKey: Record<string, string>;
  createdAt: string;
}

export interface RefRule {
  /** Branch glob, as in key branches. */
  pattern: string;
  /** Only admin keys may move or delete matching branches. */
  protected?: boolean;
  noForcePush?: boolean;
  noDelete?: boolean;
}

export interface RefPolicy {
  rules: RefRule[];
}

/**
 * A JSON Web Key as WebCrypto exports it (`crypto.subtle.exportKey('jwk', key)` in Node,
 * Deno, Bun or a browser). Grove reads the Ed25519 fields: kty "OKP", crv "Ed25519", x (and d
 * for a private key).
 */
export interface Jwk {
  kty?: string;
  crv?: string;
  x?: string;
  d?: string;
  alg?: string;
  kid?: string;
  use?: string;
  key_ops?: string[];
  ext?: boolean;
}

/** A WebCrypto key object (a CryptoKey of any runtime), described by shape so no runtime's typings are needed. */
export interface WebCryptoKey {
  readonly algorithm: { readonly name: string };
  readonly extractable: boolean;
  readonly type: string;
  readonly usages: readonly string[];
}
