import type { Page, PageOptions } from './types.ts';
import { seg, segs, type Transport } from './transport.ts';

export interface Branch {
  name: string;
  sha: string;
  expiresAt?: string | null;
}

export interface Tag {
  name: string;
  /** The ref value: the tag object for annotated tags. */
  sha: string;
  /** The commit it finally points at. */
  target: string;
  annotated: boolean;
}

export interface ListRefsOptions extends PageOptions {
  prefix?: string;
}

/** `grove.branches`: list, get, create (optionally expiring), move and delete, compare-and-swap. */
export class Branches {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  list(org: string, repo: string, options: ListRefsOptions = {}): Promise<Page<Branch>> {
    return this.#http.request('GET', `/repos/${seg(org)}/${seg(repo)}/branches`, { query: { prefix: options.prefix, limit: options.limit, cursor: options.cursor } });
  }

  get(org: string, repo: string, name: string): Promise<Branch> {
    return this.#http.request('GET', `/repos/${seg(org)}/${seg(repo)}/branches/${segs(name)}`);
  }

  /** `sha` may be a commit id, branch or tag; `ttl` ("1h", seconds) deletes the branch later. */
  create(org: string, repo: string, input: { name: string; sha: string; ttl?: string | number }): Promise<Branch> {
    return this.#http.request('POST', `/repos/${seg(org)}/${seg(repo)}/branches`, { body: input });
  }

  /** Moves the branch if it is still at `expectedSha` (else 409 stale_ref). */
  move(org: string, repo: string, name: string, input: { sha: string; expectedSha: string }): Promise<Branch> {
    return this.#http.request('PATCH', `/repos/${seg(org)}/${seg(repo)}/branches/${segs(name)}`, { body: input });
  }

  delete(org: string, repo: string, name: string, options: { expectedSha?: string } = {}): Promise<void> {
    return this.#http.request('DELETE', `/repos/${seg(org)}/${seg(repo)}/branches/${segs(name)}`, { query: { expectedSha: options.expectedSha } });
  }
}

/** `grove.tags`: list, get, create (annotated with a message) and delete. */
export class Tags {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  list(org: string, repo: string, options: ListRefsOptions = {}): Promise<Page<Tag>> {
    return this.#http.request('GET', `/repos/${seg(org)}/${seg(repo)}/tags`, { query: { prefix: options.prefix, limit: options.limit, cursor: options.cursor } });
  }

  get(org: string, repo: string, name: string): Promise<Tag> {
    return this.#http.request('GET', `/repos/${seg(org)}/${seg(repo)}/tags/${segs(name)}`);
  }

  create(org: string, repo: string, input: { name: string; sha: string; message?: string }): Promise<Tag> {
    return this.#http.request('POST', `/repos/${seg(org)}/${seg(repo)}/tags`, { body: input });
  }

  delete(org: string, repo: string, name: string, options: { expectedSha?: string } = {}): Promise<void> {
    return this.#http.request('DELETE', `/repos/${seg(org)}/${seg(repo)}/tags/${segs(name)}`, { query: { expectedSha: options.expectedSha } });
  }
}
