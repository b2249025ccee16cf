import type { Jwk, SigningKey } from './types.ts';
import { seg, type Transport } from './transport.ts';

/** `grove.signingKeys`: an org's Ed25519 public keys for offline-signed tokens (see mintToken). */
export class SigningKeys {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  /** publicKey: a JWK (kty OKP, crv Ed25519) or an SPKI PEM string. */
  create(org: string, input: { publicKey: Jwk | string; name: string }): Promise<SigningKey> {
    return this.#http.request('POST', `/orgs/${seg(org)}/signing-keys`, { body: input });
  }

  async list(org: string): Promise<SigningKey[]> {
    const page = await this.#http.request<{ items: SigningKey[] }>('GET', `/orgs/${seg(org)}/signing-keys`);
    return page.items;
  }

  /** Tokens signed with this key stop working at once. */
  delete(org: string, id: string): Promise<void> {
    return this.#http.request('DELETE', `/orgs/${seg(org)}/signing-keys/${seg(id)}`);
  }
}
