/**
 * Secrets at rest (webhook signing secrets now; remote credentials and runner tokens
 * later): AES-256-GCM under a server key, with what the secret belongs to (`webhook:<id>`)
 * as associated data, so a sealed value copied onto another row does not open. A sealed
 * value names the key that sealed it, so keys can be rotated:
 *
 *   grove-sealed:v1:<key id>:<nonce, base64url>:<ciphertext and tag, base64url>
 *
 * Pure apart from the random nonce; the keys come from server-key.ts.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const PREFIX = 'grove-sealed:v1:';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const SECRET_KEY_BYTES = 32;

export class SecretOpenError extends Error {
  override name = 'SecretOpenError';
}

/** A key's id: the first 8 bytes of its SHA-256, hex (derived, so nobody has to name keys). */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

export function isSealed(value: string): boolean {
  return value.startsWith(PREFIX);
}

export class SecretBox {
  readonly #current: { readonly id: string; readonly key: Buffer };
  readonly #byId: ReadonlyMap<string, Buffer>;

  /** `keys[0]` seals; every key opens what it sealed. */
  constructor(keys: readonly Buffer[]) {
    if (keys.length === 0) throw new Error('a secret box needs a key');
    for (const key of keys) if (key.length !== SECRET_KEY_BYTES) throw new Error(`secret keys are ${SECRET_KEY_BYTES} bytes`);
    this.#current = { id: keyIdOf(keys[0]!), key: keys[0]! };
    this.#byId = new Map(keys.map((key) => [keyIdOf(key), key]));
  }

  get currentKeyId(): string {
    return this.#current.id;
  }

  seal(plaintext: string, associatedData: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#current.key, nonce);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${PREFIX}${this.#current.id}:${nonce.toString('base64url')}:${body.toString('base64url')}`;
  }

  open(sealed: string, associatedData: string): string {
    if (!isSealed(sealed)) throw new SecretOpenError('not a sealed value');
    const [keyId, nonceText, bodyText, ...rest] = sealed.slice(PREFIX.length).split(':');
    if (keyId === undefined || nonceText === undefined || bodyText === undefined || rest.length > 0) throw new SecretOpenError('malformed sealed value');
    const key = this.#byId.get(keyId);
    if (key === undefined) throw new SecretOpenError(`sealed under key ${keyId}, which this server does not have`);
    const nonce = Buffer.from(nonceText, 'base64url');
    const body = Buffer.from(bodyText, 'base64url');
    if (nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) throw new SecretOpenError('malformed sealed value');
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretOpenError('the sealed value does not open: wrong key, wrong owner or tampered');
    }
  }

  /** True when the value is sealed under a key other than the current one (rotation re-seals it). */
  needsReseal(sealed: string): boolean {
    return !sealed.startsWith(`${PREFIX}${this.#current.id}:`);
  }
}
