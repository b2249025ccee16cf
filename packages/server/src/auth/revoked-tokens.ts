/**
 * The deny-list of signed tokens revoked one by one (`DELETE …/signing-keys/{id}/tokens/{jti}`).
 * Checked on every signed-token request, so it is kept in memory: loaded from the
 * database at start and updated by this process when it revokes, after the row commits
 * (one process owns the database in embedded mode). An entry lives until the latest
 * moment a token with that jti could still be valid, then it is dropped from both.
 * In a cluster another node may revoke: `shared()` makes every check ask the database.
 */
import type { Db } from '../db/database.ts';

export class RevokedTokens {
  readonly #db: Db;
  /** `<signing key id> <jti>` -> epoch ms until which the entry matters. */
  readonly #entries = new Map<string, number>();
  /** Cluster mode: the database is asked on every check (another node may have revoked). */
  #shared = false;

  private constructor(db: Db) {
    this.#db = db;
  }

  static async load(db: Db, nowMs: number = Date.now()): Promise<RevokedTokens> {
    const list = new RevokedTokens(db);
    const rows = await db.selectFrom('revoked_tokens').select(['signing_key_id', 'jti', 'expires_at']).where('expires_at', '>', new Date(nowMs).toISOString()).execute();
    for (const row of rows) list.#entries.set(entryKey(row.signing_key_id, row.jti), Date.parse(row.expires_at));
    return list;
  }

  /** Every check reads the database from now on (cluster mode: one primary-key lookup). */
  shared(): void {
    this.#shared = true;
  }

  async isRevoked(signingKeyId: string, jti: string, nowMs: number = Date.now()): Promise<boolean> {
    const until = this.#entries.get(entryKey(signingKeyId, jti));
    if (until !== undefined && until > nowMs) return true;
    if (!this.#shared) return false;
    const row = await this.#db.selectFrom('revoked_tokens').select('expires_at').where('signing_key_id', '=', signingKeyId).where('jti', '=', jti).executeTakeFirst();
    return row !== undefined && Date.parse(row.expires_at) > nowMs;
  }

  /** The row is written by the caller's transaction (with its event); this makes it effective here once committed. */
  remember(signingKeyId: string, jti: string, untilMs: number): void {
    const key = entryKey(signingKeyId, jti);
    this.#entries.set(key, Math.max(untilMs, this.#entries.get(key) ?? 0));
  }

  /** Drops entries (and rows) no token can need any more. */
  async prune(nowMs: number = Date.now()): Promise<void> {
    for (const [key, until] of this.#entries) if (until <= nowMs) this.#entries.delete(key);
    await this.#db.deleteFrom('revoked_tokens').where('expires_at', '<=', new Date(nowMs).toISOString()).execute();
  }

  /** Entries of a deleted signing key (its tokens fail verification anyway). */
  forgetSigningKey(signingKeyId: string): void {
    for (const key of this.#entries.keys()) if (key.startsWith(`${signingKeyId} `)) this.#entries.delete(key);
  }
}

function entryKey(signingKeyId: string, jti: string): string {
  return `${signingKeyId} ${jti}`;
}
