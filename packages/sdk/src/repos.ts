import type { Page, PageOptions, Repo } from './types.ts';
import { seg, type Transport } from './transport.ts';

export interface CreateRepoInput {
  name: string;
  defaultBranch?: string;
  description?: string;
  /** "org/repo" to fork (instant, shares objects; same org only). */
  from?: string;
  /** With from: a single root commit holding the source's tree. */
  snapshot?: boolean;
  /** Ephemeral: deleted after "30m", "1h", "7d" or N seconds. */
  ttl?: string | number;
}

/** One problem `grove.repos.fsck` found. */
export interface FsckProblem {
  /** `git`: git fsck reported it; `missing`: a blob neither git nor the chunk store holds; `store`: the chunk store's copy does not hash to its id. */
  kind: 'git' | 'missing' | 'store';
  oid?: string;
  message: string;
}

/** What `grove.repos.fsck` found. */
export interface FsckReport {
  /** True when git and the chunk store together hold every object, undamaged. */
  ok: boolean;
  /** At most 100. */
  problems: FsckProblem[];
  /** Problems beyond those listed. */
  moreProblems: number;
  /** Big blobs git no longer holds that the chunk store holds for the repository, each read back and verified. */
  storedBlobs: { count: number; bytes: number };
}

export interface UpdateRepoInput {
  name?: string;
  defaultBranch?: string;
  description?: string;
}

/** `grove.repos`: repositories. */
export class Repos {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  create(org: string, input: CreateRepoInput): Promise<Repo> {
    return this.#http.request('POST', `/orgs/${seg(org)}/repos`, { body: input });
  }

  /** A fork of `from` ("org/repo") named `name` in the same org: instant, whatever the size. */
  fork(org: string, name: string, from: string, options: { snapshot?: boolean; ttl?: string | number; defaultBranch?: string } = {}): Promise<Repo> {
    return this.create(org, { name, from, ...options });
  }

  list(org: string, options: PageOptions = {}): Promise<Page<Repo>> {
    return this.#http.request('GET', `/orgs/${seg(org)}/repos`, { query: { limit: options.limit, cursor: options.cursor } });
  }

  /** Every repository of an org, page by page. */
  async *listAll(org: string, pageSize = 1000): AsyncGenerator<Repo> {
    let cursor: string | undefined;
    do {
      const page = await this.list(org, { limit: pageSize, ...(cursor ? { cursor } : {}) });
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }

  get(org: string, name: string): Promise<Repo> {
    return this.#http.request('GET', `/repos/${seg(org)}/${seg(name)}`);
  }

  update(org: string, name: string, input: UpdateRepoInput): Promise<Repo> {
    return this.#http.request('PATCH', `/repos/${seg(org)}/${seg(name)}`, { body: input });
  }

  /** Checks the repository's objects: git fsck --strict, with big blobs kept in the chunk store verified there (repository admin). */
  fsck(org: string, name: string): Promise<FsckReport> {
    return this.#http.request('POST', `/repos/${seg(org)}/${seg(name)}/fsck`);
  }

  delete(org: string, name: string): Promise<void> {
    return this.#http.request('DELETE', `/repos/${seg(org)}/${seg(name)}`);
  }
}
