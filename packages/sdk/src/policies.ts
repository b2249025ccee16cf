import type { RefPolicy, RefRule } from './types.ts';
import { seg, type Transport } from './transport.ts';

/** `grove.policies`: per-repo ref rules (protected, noForcePush, noDelete). */
export class Policies {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  get(org: string, repo: string): Promise<RefPolicy> {
    return this.#http.request('GET', `/repos/${seg(org)}/${seg(repo)}/policies`);
  }

  /** Replaces every rule of the repository. */
  set(org: string, repo: string, rules: RefRule[]): Promise<RefPolicy> {
    return this.#http.request('PUT', `/repos/${seg(org)}/${seg(repo)}/policies`, { body: { rules } });
  }
}
