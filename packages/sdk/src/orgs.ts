import type { Org, Page, PageOptions } from './types.ts';
import { seg, type Transport } from './transport.ts';

/** `grove.orgs`: organizations. */
export class Orgs {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  create(input: { name: string }): Promise<Org> {
    return this.#http.request('POST', '/orgs', { body: input });
  }

  list(options: PageOptions = {}): Promise<Page<Org>> {
    return this.#http.request('GET', '/orgs', { query: { limit: options.limit, cursor: options.cursor } });
  }

  get(name: string): Promise<Org> {
    return this.#http.request('GET', `/orgs/${seg(name)}`);
  }

  /** Only an org without repositories can be deleted (409 org_not_empty otherwise). */
  delete(name: string): Promise<void> {
    return this.#http.request('DELETE', `/orgs/${seg(name)}`);
  }
}
