import type { ApiKey, CreatedApiKey, Grant, Page, PageOptions, Scope } from './types.ts';
import { seg, type Transport } from './transport.ts';

export interface CreateApiKeyInput {
  scope: Scope;
  resources: Grant[];
  /** "90s", "30m", "1h", "7d" or seconds. */
  ttl?: string | number;
  name?: string;
  labels?: Record<string, string>;
}

/** `grove.apiKeys`: scoped, expiring API keys. */
export class ApiKeys {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  /** The returned `token` is shown only here; the server keeps a hash. */
  create(input: CreateApiKeyInput): Promise<CreatedApiKey> {
    return this.#http.request('POST', '/keys', { body: input });
  }

  list(options: PageOptions & { org?: string; label?: string } = {}): Promise<Page<ApiKey>> {
    return this.#http.request('GET', '/keys', { query: { limit: options.limit, cursor: options.cursor, org: options.org, label: options.label } });
  }

  get(id: string): Promise<ApiKey> {
    return this.#http.request('GET', `/keys/${seg(id)}`);
  }

  /** Effective on the next request made with the key. */
  revoke(id: string): Promise<void> {
    return this.#http.request('DELETE', `/keys/${seg(id)}`);
  }
}
