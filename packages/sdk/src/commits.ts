import { seg, segs, type Transport } from './transport.ts';

export interface Signature {
  name: string;
  email: string;
  /** ISO 8601; now when omitted. */
  date?: string;
}

export type FileChange =
  | { path: string; content: string; encoding?: 'utf8' | 'base64'; mode?: '100644' | '100755' | '120000' }
  | { path: string; delete: true }
  | { path: string; moveFrom: string };

export interface CreateCommitInput {
  branch: string;
  /** The branch must still be here (40 zeros: must not exist yet); else 409 stale_ref. */
  expectedHead?: string;
  /** Branch, tag or sha a new branch starts from. */
  startFrom?: string;
  message: string;
  author?: Signature;
  committer?: Signature;
  files: FileChange[];
  /** Create the commit even if it changes nothing (else 422). */
  allowEmpty?: boolean;
}

export interface CommitResult {
  sha: string;
  branch: string;
  parents: string[];
  tree: string;
}

export interface UploadFileInput {
  branch: string;
  message: string;
  expectedHead?: string;
  startFrom?: string;
  mode?: '100644' | '100755';
}

/** `grove.commits`: commits without a clone. */
export class Commits {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  /** One atomic commit of file changes; retried safely with the same `idempotencyKey`. */
  create(org: string, repo: string, input: CreateCommitInput, options: { idempotencyKey?: string } = {}): Promise<CommitResult> {
    return this.#http.request('POST', `/repos/${seg(org)}/${seg(repo)}/commits`, {
      body: input,
      ...(options.idempotencyKey ? { headers: { 'idempotency-key': options.idempotencyKey } } : {}),
    });
  }

  /** Commits one file whose content is streamed as the raw body (for large files). */
  async uploadFile(org: string, repo: string, path: string, content: Uint8Array | Blob | ReadableStream<Uint8Array>, input: UploadFileInput): Promise<CommitResult> {
    const response = await this.#http.raw('PUT', `/repos/${seg(org)}/${seg(repo)}/files/${segs(path)}`, {
      query: { branch: input.branch, message: input.message, expectedHead: input.expectedHead, startFrom: input.startFrom, mode: input.mode },
      headers: { 'content-type': 'application/octet-stream' },
      body: content,
    });
    return (await response.json()) as CommitResult;
  }
}
