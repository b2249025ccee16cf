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

/** What `grove.repos.import` starts. */
export interface ImportRepoInput {
  name: string;
  /** https URL of the remote repository, without credentials. */
  url: string;
  /** An org credential (`grove.credentials.create`) for a private remote. */
  credentialId?: string;
  /** Keep following the remote as a read-only mirror (upstream `origin`). */
  mirror?: boolean;
  description?: string;
}

/** An import's state (`GET /orgs/{org}/imports/{id}`). */
export interface RepoImport {
  id: string;
  repo: string;
  url: string;
  mirror: boolean;
  status: 'importing' | 'succeeded' | 'failed';
  /** 0–100. */
  progress: number;
  /** Branches and tags imported. */
  refs: number;
  error: { code: string; message: string } | null;
  /** A mirror's webhook: only in the answer that started the import. */
  webhook?: { url: string; secret: string };
  createdAt: string;
  finishedAt: string | null;
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

  /**
   * Imports a remote repository with its whole history: the repository exists at once (git
   * clients are told it is being imported) and fills in the background; `waitForImport` follows it.
   */
  import(org: string, input: ImportRepoInput): Promise<Repo & { import: RepoImport }> {
    const { url, credentialId, mirror, ...repo } = input;
    return this.#http.request('POST', `/orgs/${seg(org)}/repos`, { body: { ...repo, import: { url, ...(credentialId !== undefined ? { credentialId } : {}), ...(mirror !== undefined ? { mirror } : {}) } } });
  }

  importStatus(org: string, importId: string): Promise<RepoImport> {
    return this.#http.request('GET', `/orgs/${seg(org)}/imports/${seg(importId)}`);
  }

  /** Polls an import until it succeeded or failed (returned, not thrown), calling `onProgress` with each new state. */
  async waitForImport(org: string, importId: string, options: { intervalMs?: number; timeoutMs?: number; onProgress?: (state: RepoImport) => void } = {}): Promise<RepoImport> {
    const deadline = Date.now() + (options.timeoutMs ?? 24 * 3600_000);
    let last = -1;
    for (;;) {
      const state = await this.importStatus(org, importId);
      if (state.progress !== last || state.status !== 'importing') {
        last = state.progress;
        options.onProgress?.(state);
      }
      if (state.status !== 'importing') return state;
      if (Date.now() > deadline) throw new Error(`import ${importId} still running after ${options.timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
    }
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
