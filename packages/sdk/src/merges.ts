import { seg, type Transport } from './transport.ts';

export interface MergeInput {
  /** The branch that moves. */
  base: string;
  /** The branch (or commit) merged into it. */
  head: string;
  strategy?: 'fast-forward' | 'merge' | 'squash' | 'rebase';
  message?: string;
  /** Merge only if base is still here (else 409 stale_ref). */
  expectedBase?: string;
}

export interface MergeResult {
  base: string;
  head: string;
  strategy: string;
  sha: string;
  tree: string;
  parents: string[];
  fastForward: boolean;
}

/** Details of a 409 merge_conflict (GroveApiError.details). */
export interface MergeConflictDetails {
  conflicts: { path: string; stages: { base?: string; ours?: string; theirs?: string }; hunks: { startLine: number; ours: string[]; theirs: string[] }[] }[];
}

/** `grove.merges`: merge branches without a clone; conflicts are GroveApiError 409 merge_conflict. */
export class Merges {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  merge(org: string, repo: string, input: MergeInput, options: { idempotencyKey?: string } = {}): Promise<MergeResult> {
    return this.#http.request('POST', `/repos/${seg(org)}/${seg(repo)}/merges`, {
      body: input,
      ...(options.idempotencyKey ? { headers: { 'idempotency-key': options.idempotencyKey } } : {}),
    });
  }

  /** What merge() would do; moves nothing. */
  preview(org: string, repo: string, input: MergeInput): Promise<MergeResult> {
    return this.#http.request('POST', `/repos/${seg(org)}/${seg(repo)}/merges/preview`, { body: input });
  }
}
