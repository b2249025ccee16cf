import type { Transport } from './transport.ts';

export interface SecretKeyRotation {
  /** Id of the key that seals from now on. */
  keyId: string;
  /** How many stored secrets were re-sealed. */
  resealed: number;
  /** Secrets no key of the server opens (sealed under a lost key), left as they are. */
  unreadable: number;
  /** Where the key lives: `<data>/secret.key` or `GROVE_SECRET_KEY`. */
  source: 'file' | 'env';
}

/** `grove.admin`: server administration, for the root token only. */
export class Admin {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  /** Re-seals every stored secret (webhook secrets) under a new server key; see docs/security.md. */
  rotateSecretKey(): Promise<SecretKeyRotation> {
    return this.#http.request('POST', '/admin/secret-key/rotate');
  }
}
