/**
 * @grove/sdk: a typed client for the Grove API with no runtime dependencies.
 *
 *   const grove = new Grove({ baseUrl: 'http://127.0.0.1:8080', token });
 *   await grove.orgs.create({ name: 'acme' });
 *   const repo = await grove.repos.create('acme', { name: 'app' });
 */
import { Orgs } from './orgs.ts';
import { Repos } from './repos.ts';
import { Transport, type GroveOptions } from './transport.ts';

export class Grove {
  readonly orgs: Orgs;
  readonly repos: Repos;

  constructor(options: GroveOptions) {
    const http = new Transport(options);
    this.orgs = new Orgs(http);
    this.repos = new Repos(http);
  }
}

export { GroveApiError } from './errors.ts';
export type { GroveOptions } from './transport.ts';
export type { CreateRepoInput, UpdateRepoInput } from './repos.ts';
export type { Org, Page, PageOptions, Repo } from './types.ts';
