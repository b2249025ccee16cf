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

  /**
   * Revokes one signed token by its `jti`: refused from the next request on, while other
   * tokens of the key keep working. `exp` (the token's, epoch seconds) bounds how long the
   * server keeps the entry; without it, for the longest lifetime a token can have.
   */
  revokeToken(org: string, signingKeyId: string, jti: string, options: { exp?: number } = {}): Promise<void> {
    return this.#http.request('DELETE', `/orgs/${seg(org)}/signing-keys/${seg(signingKeyId)}/tokens/${seg(jti)}`, { query: { exp: options.exp } });
  }

  /** Tokens signed with this key stop working at once. */
  delete(org: string, id: string): Promise<void> {
    return this.#http.request('DELETE', `/orgs/${seg(org)}/signing-keys/${seg(id)}`);
  }
}
