/**
 * Offline-signed tokens for fleets: an org registers Ed25519 public keys; a JWT
 * (alg EdDSA) signed with the private key and carrying
 * `{iss: <org>, scope, resources, exp, jti}` is a credential with no API call to
 * mint it. Verified with jose; `exp` may be at most 24 h ahead, every resource must
 * be in the issuing org, and deleting the signing key invalidates its tokens (keys
 * are looked up on every verification; only the parsed key objects are cached).
 *
 * Tokens name repositories, not ids, so a grant on one repository reaches it only if it
 * was created before the token was issued (`iat`, within the clock tolerance; a token
 * without `iat` counts as issued at the earliest moment its `exp` allows): a repository
 * deleted and recreated under the same name later is not reachable by older tokens.
 */
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, type CryptoKey, type JWK } from 'jose';
import type { Db } from '../db/database.ts';
import { findRepoCached } from '../db/repos.ts';
import { listSigningKeysByOrgName } from '../db/signing-keys.ts';
import { checkName } from '../names.ts';
import { isScope, parseGrants } from './grants.ts';
import type { RevokedTokens } from './revoked-tokens.ts';
import type { Grant, Principal } from './principal.ts';

export const MAX_SIGNED_TOKEN_LIFETIME_SECONDS = 24 * 3600;
export const CLOCK_SKEW_SECONDS = 60;

/** True for anything shaped like a compact JWS (three base64url parts). */
export function looksLikeJwt(token: string): boolean {
  return /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);
}

/** Checks that a JWK is an Ed25519 public key and returns its public members only. */
export function normalizePublicJwk(value: unknown): JWK | string {
  if (typeof value !== 'object' || value === null) return 'publicKey must be a JWK object or a PEM string';
  const jwk = value as Record<string, unknown>;
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') return 'publicKey must be an Ed25519 key (kty OKP, crv Ed25519)';
  if ('d' in jwk) return 'publicKey contains a private key (d): send only the public key';
  if (!/^[A-Za-z0-9_-]{43}$/.test(jwk.x)) return 'publicKey.x is not a 32-byte base64url value';
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
}

export class SignedTokenVerifier {
  readonly #db: Db;
  readonly #revoked: RevokedTokens;
  readonly #keys = new Map<string, CryptoKey>();

  constructor(db: Db, revoked: RevokedTokens) {
    this.#db = db;
    this.#revoked = revoked;
  }

  /** The principal for a valid token, or null for anything else (bad signature, expired, unknown key, bad claims). */
  async verify(token: string, nowMs: number = Date.now()): Promise<Principal | null> {
    let issuer: unknown;
    let kid: unknown;
    try {
      issuer = decodeJwt(token).iss;
      kid = decodeProtectedHeader(token).kid;
    } catch {
      return null;
    }
    if (typeof issuer !== 'string' || checkName('org', issuer) !== null) return null;
    const candidates = (await listSigningKeysByOrgName(this.#db, issuer)).filter((row) => kid === undefined || row.id === kid);
    for (const row of candidates) {
      const key = await this.#importKey(row.id, row.public_jwk);
      let payload;
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: ['EdDSA', 'Ed25519'],
          issuer,
          requiredClaims: ['exp', 'jti'],
          clockTolerance: CLOCK_SKEW_SECONDS,
          currentDate: new Date(nowMs),
        }));
      } catch {
        continue;
      }
      const exp = payload.exp!;
      if (exp * 1000 > nowMs + (MAX_SIGNED_TOKEN_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS) * 1000) return null;
      if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 200) return null;
      if (await this.#revoked.isRevoked(row.id, payload.jti, nowMs)) return null;
      const scope = payload.scope;
      if (!isScope(scope)) return null;
      const parsed = parseGrants(payload.resources);
      if ('error' in parsed || parsed.grants.some((g) => g.org !== issuer)) return null;
      const issuedAtMs = (typeof payload.iat === 'number' ? payload.iat : exp - MAX_SIGNED_TOKEN_LIFETIME_SECONDS) * 1000;
      const resources = await this.#existingSince(issuer, parsed.grants, issuedAtMs);
      return { kind: 'signed', id: payload.jti, org: issuer, signingKeyId: row.id, scope, resources, expiresAt: exp * 1000 };
    }
    return null;
  }

  /** The grants whose repository existed when the token was issued (org-wide grants always). */
  async #existingSince(org: string, grants: readonly Grant[], issuedAtMs: number): Promise<Grant[]> {
    const kept: Grant[] = [];
    for (const grant of grants) {
      if (grant.repo === undefined) {
        kept.push(grant);
        continue;
      }
      const repo = await findRepoCached(this.#db, org, grant.repo);
      if (repo !== undefined && Date.parse(repo.created_at) <= issuedAtMs + CLOCK_SKEW_SECONDS * 1000) kept.push(grant);
    }
    return kept;
  }

  async #importKey(id: string, jwkText: string): Promise<CryptoKey> {
    let key = this.#keys.get(id);
    if (key === undefined) {
      key = (await importJWK(JSON.parse(jwkText) as JWK, 'EdDSA')) as CryptoKey;
      if (this.#keys.size > 10_000) this.#keys.clear();
      this.#keys.set(id, key);
    }
    return key;
  }
}
