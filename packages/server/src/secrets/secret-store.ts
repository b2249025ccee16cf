/**
 * The one place sealed values are made, opened and rotated. Every column that holds a
 * secret is listed in SEALED_COLUMNS, with the owner string that is its associated data;
 * startup seals any plaintext left by an older version, and rotation re-seals them all.
 */
import type { Db } from '../db/database.ts';
import type { Durability } from '../db/durability.ts';
import { randomBytes } from 'node:crypto';
import { isSealed, SECRET_KEY_BYTES, SecretBox, SecretOpenError } from './secret-box.ts';
import { writeKeyFile, type KeySource, type ServerKeys } from './server-key.ts';

/** Columns holding sealed secrets, and whose each value is (its associated data). */
const SEALED_COLUMNS = [
  { table: 'webhooks', column: 'secret', owner: (id: string) => webhookSecretOwner(id) },
  { table: 'credentials', column: 'secret', owner: (id: string) => credentialSecretOwner(id) },
  { table: 'upstreams', column: 'webhook_secret', owner: (id: string) => upstreamWebhookSecretOwner(id) },
] as const;

export function webhookSecretOwner(webhookId: string): string {
  return `webhook:${webhookId}`;
}

/** A remote credential's secret (remote sync). */
export function credentialSecretOwner(credentialId: string): string {
  return `credential:${credentialId}`;
}

/** The HMAC key of webhook deliveries an upstream's remote sends. */
export function upstreamWebhookSecretOwner(upstreamId: string): string {
  return `upstream-webhook:${upstreamId}`;
}

export interface RotationResult {
  readonly keyId: string;
  readonly resealed: number;
  /** Values no key of this server opens (sealed under a lost key): left as they are. */
  readonly unreadable: number;
  readonly source: KeySource['kind'];
}

export class SecretStore {
  #box: SecretBox;
  #keys: readonly Buffer[];
  readonly #source: KeySource;
  #rotating: Promise<RotationResult> | null = null;

  constructor(keys: ServerKeys) {
    this.#box = keys.box;
    this.#keys = keys.keys;
    this.#source = keys.source;
  }

  get currentKeyId(): string {
    return this.#box.currentKeyId;
  }

  seal(plaintext: string, owner: string): string {
    return this.#box.seal(plaintext, owner);
  }

  open(sealed: string, owner: string): string {
    return this.#box.open(sealed, owner);
  }

  /** Seals values an older version stored in plaintext; returns how many. */
  async sealPlaintext(db: Db, durability: Durability): Promise<number> {
    return (await this.#resealAll(db, durability, (value) => !isSealed(value))).resealed;
  }

  /**
   * Re-seals every secret under the current key. With a key file, a new key is made first
   * (written beside the old one, which is dropped once nothing needs it); with
   * GROVE_SECRET_KEY, the operator has already set the new key and listed the old one in
   * GROVE_SECRET_KEY_PREVIOUS. Concurrent calls share one rotation.
   */
  rotate(db: Db, durability: Durability): Promise<RotationResult> {
    this.#rotating ??= this.#rotate(db, durability).finally(() => {
      this.#rotating = null;
    });
    return this.#rotating;
  }

  async #rotate(db: Db, durability: Durability): Promise<RotationResult> {
    if (this.#source.kind === 'file') {
      const fresh = randomBytes(SECRET_KEY_BYTES);
      const keys = [fresh, ...this.#keys];
      await writeKeyFile(this.#source.file, keys); // the old key stays until every value is re-sealed
      this.#use(keys);
    }
    const { resealed, unreadable } = await this.#resealAll(db, durability, (value) => !isSealed(value) || this.#box.needsReseal(value));
    if (this.#source.kind === 'file') {
      const current = [this.#keys[0]!];
      await writeKeyFile(this.#source.file, current);
      this.#use(current);
    }
    return { keyId: this.#box.currentKeyId, resealed, unreadable, source: this.#source.kind };
  }

  #use(keys: readonly Buffer[]): void {
    this.#keys = keys;
    this.#box = new SecretBox(keys);
  }

  async #resealAll(db: Db, durability: Durability, needs: (value: string) => boolean): Promise<{ resealed: number; unreadable: number }> {
    let count = 0;
    let unreadable = 0;
    await db.transaction().execute(async (trx) => {
      for (const { table, column, owner } of SEALED_COLUMNS) {
        const rows = (await trx.selectFrom(table).select(['id', `${column} as value`]).execute()) as { id: string; value: string }[];
        for (const row of rows) {
          const value = row.value;
          if (!needs(value)) continue;
          let plaintext: string;
          try {
            plaintext = isSealed(value) ? this.#box.open(value, owner(row.id)) : value;
          } catch (error) {
            if (!(error instanceof SecretOpenError)) throw error;
            unreadable++;
            continue;
          }
          await trx.updateTable(table).set({ [column]: this.#box.seal(plaintext, owner(row.id)) }).where('id', '=', row.id).execute();
          count++;
        }
      }
    });
    await durability.sync();
    return { resealed: count, unreadable };
  }
}
