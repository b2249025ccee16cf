import { seg, type Transport } from './transport.ts';

/** A secret for reaching remotes (upstreams of remote sync). Answers never carry the secret. */
export interface Credential {
  id: string;
  name: string;
  /** token: an access token sent as the Basic password; basic: a user name and password. */
  kind: 'token' | 'basic';
  /** The Basic user name (`x-access-token` for a token unless given). */
  username: string;
  /** The first 8 hex digits of the secret's SHA-256: tells secrets apart without showing them. */
  fingerprint: string;
  /** rejected: a remote refused it; the upstreams it paused resume when it is rotated. */
  status: 'ok' | 'rejected';
  lastError: string | null;
  lastUsedAt: string | null;
  /** When the secret expires, if it does (shown, not enforced). */
  expiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface CredentialInput {
  name: string;
  kind: 'token' | 'basic';
  /** Required for kind basic; for kind token defaults to x-access-token (what GitHub expects). */
  username?: string;
  /** The token or password: write-only, sealed at rest, never answered. One line, at most 4096 characters. */
  secret: string;
  expiresAt?: string | null;
}

/** `grove.credentials`: an org's write-only secrets for remotes (org admin). */
export class Credentials {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  /** 409 already_exists when the org has a credential of that name. */
  create(org: string, input: CredentialInput): Promise<Credential> {
    return this.#http.request('POST', `/orgs/${seg(org)}/credentials`, { body: input });
  }

  async list(org: string): Promise<Credential[]> {
    return (await this.#http.request<{ items: Credential[] }>('GET', `/orgs/${seg(org)}/credentials`)).items;
  }

  get(org: string, id: string): Promise<Credential> {
    return this.#http.request('GET', `/orgs/${seg(org)}/credentials/${seg(id)}`);
  }

  /** Replaces the secret (status back to ok); the upstreams a rejection of the old one paused resume. */
  rotate(org: string, id: string, input: { secret: string; expiresAt?: string | null }): Promise<Credential> {
    return this.#http.request('PUT', `/orgs/${seg(org)}/credentials/${seg(id)}/secret`, { body: input });
  }

  /** 409 in_use while an upstream uses it (`details.upstreams` names them). */
  delete(org: string, id: string): Promise<void> {
    return this.#http.request('DELETE', `/orgs/${seg(org)}/credentials/${seg(id)}`);
  }
}
