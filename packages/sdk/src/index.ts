/**
 * @grove/sdk: a typed client for the Grove API with no runtime dependencies.
 *
 *   const grove = new Grove({ baseUrl: 'http://127.0.0.1:8080', token });
 *   await grove.orgs.create({ name: 'acme' });
 *   const repo = await grove.repos.create('acme', { name: 'app' });
 */
import { ApiKeys } from './api-keys.ts';
import { Orgs } from './orgs.ts';
import { Policies } from './policies.ts';
import { Repos } from './repos.ts';
import { SigningKeys } from './signing-keys.ts';
import { Transport, type GroveOptions } from './transport.ts';

export class Grove {
  readonly orgs: Orgs;
  readonly repos: Repos;
  readonly apiKeys: ApiKeys;
  readonly signingKeys: SigningKeys;
  readonly policies: Policies;

  constructor(options: GroveOptions) {
    const http = new Transport(options);
    this.orgs = new Orgs(http);
    this.repos = new Repos(http);
    this.apiKeys = new ApiKeys(http);
    this.signingKeys = new SigningKeys(http);
    this.policies = new Policies(http);
  }
}

export { GroveApiError } from './errors.ts';
export type { GroveOptions } from './transport.ts';
export { mintToken, MAX_TOKEN_TTL_SECONDS, type MintTokenInput } from './mint-token.ts';
export type { CreateApiKeyInput } from './api-keys.ts';
export type { CreateRepoInput, UpdateRepoInput } from './repos.ts';
export type { ApiKey, CreatedApiKey, Grant, Org, Page, PageOptions, RefPolicy, RefRule, Repo, Scope, SigningKey } from './types.ts';
