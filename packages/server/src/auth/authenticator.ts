/**
 * Turns a credential into a Principal: the root admin token, an API key
 * (`grove_…`, looked up by its SHA-256), or an org-signed JWT. Anything else —
 * unknown, expired, revoked or malformed — is null, and every caller answers it with
 * the same 401. Revocation takes effect on the next request: keys are read from the
 * database every time.
 */
import type { Db } from '../db/database.ts';
import { liveGrants, parseBoundGrants } from '../db/grant-targets.ts';
import { findKeyByHash, touchKey } from '../db/keys.ts';
import { digestsEqual, hashToken, TOKEN_PREFIX } from './admin-token.ts';
import { extractToken } from './credentials.ts';
import { isScope } from './grants.ts';
import type { Principal } from './principal.ts';
import type { RevokedTokens } from './revoked-tokens.ts';
import { looksLikeJwt, SignedTokenVerifier } from './signed-tokens.ts';

/** lastUsedAt is written at most this often per key, so reads do not turn into writes. */
const TOUCH_INTERVAL_MS = 30_000;

export class Authenticator {
  readonly #db: Db;
  readonly #adminDigest: Buffer;
  readonly #signed: SignedTokenVerifier;
  readonly #lastTouched = new Map<string, number>();

  constructor(db: Db, adminDigest: Buffer, revoked: RevokedTokens) {
    this.#db = db;
    this.#adminDigest = adminDigest;
    this.#signed = new SignedTokenVerifier(db, revoked);
  }

  async authenticate(authorization: string | undefined): Promise<Principal | null> {
    const token = extractToken(authorization);
    if (token === null || token.length > 8192) return null;
    const digest = hashToken(token);
    if (digestsEqual(digest, this.#adminDigest)) return { kind: 'root' };
    if (token.startsWith(TOKEN_PREFIX)) return this.#apiKey(digest);
    if (looksLikeJwt(token)) return this.#signed.verify(token);
    return null;
  }

  async #apiKey(digest: Buffer): Promise<Principal | null> {
    const hex = digest.toString('hex');
    const row = await findKeyByHash(this.#db, hex);
    // The lookup is by digest; compare again in constant time before trusting it.
    if (row === undefined || !digestsEqual(Buffer.from(row.token_hash, 'hex'), digest)) return null;
    const now = Date.now();
    if (row.revoked_at !== null) return null;
    const expiresAt = row.expires_at === null ? null : Date.parse(row.expires_at);
    if (expiresAt !== null && expiresAt <= now) return null;
    const stored = parseBoundGrants(row.resources);
    if (!isScope(row.scope) || stored === null) return null;
    if (now - (this.#lastTouched.get(row.id) ?? 0) > TOUCH_INTERVAL_MS) {
      this.#lastTouched.set(row.id, now);
      if (this.#lastTouched.size > 100_000) this.#lastTouched.clear();
      await touchKey(this.#db, row.id, new Date(now).toISOString());
    }
    // Bound to ids: what the grants name now; deleted targets reach nothing.
    return { kind: 'key', id: row.id, name: row.name, scope: row.scope, resources: await liveGrants(this.#db, stored), expiresAt };
  }
}
