import type { ChangedFile, CommitInfo } from './contents.ts';
import { repoPath } from './contents.ts';
import { GroveApiError } from './errors.ts';
import { segs, type Transport } from './transport.ts';

export interface DiffHunk {
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  /** The `@@ -a,b +c,d @@` line. */
  header: string;
  /** Prefixed `+`, `-`, ` `, or `\` (no newline at end of file). */
  lines: string[];
}

export interface DiffFile extends ChangedFile {
  hunks: DiffHunk[];
  /** Hunks left out by the line limit. */
  truncated: boolean;
}

/** base...head: what head adds since it forked from base. */
export interface Comparison {
  base: string;
  head: string;
  /** null for unrelated histories (the diff is then against nothing). */
  mergeBase: string | null;
  /** In head and not in base, newest first. */
  commits: CommitInfo[];
  files: DiffFile[];
  /** True when a limit left out commits, files or hunks. */
  truncated: boolean;
}

export interface CompareOptions {
  /** Files listed (server default 300, at most 3000). */
  maxFiles?: number;
  /** Hunk lines over all files (server default 20000). */
  maxLines?: number;
}

/** `grove.diffs`: comparisons of two refs (three-dot: base...head). */
export class Diffs {
  readonly #http: Transport;
  constructor(http: Transport) {
    this.#http = http;
  }

  compare(org: string, repo: string, base: string, head: string, options: CompareOptions = {}): Promise<Comparison> {
    return this.#http.request('GET', `${repoPath(org, repo)}/compare/${segs(base)}...${segs(head)}`, { query: { maxFiles: options.maxFiles, maxLines: options.maxLines } });
  }

  /** The unified diff (full ids, binary patches: applies with `git apply`). */
  async patch(org: string, repo: string, base: string, head: string): Promise<string> {
    return new Response(await this.patchStream(org, repo, base, head)).text();
  }

  async patchStream(org: string, repo: string, base: string, head: string): Promise<ReadableStream<Uint8Array>> {
    const response = await this.#http.raw('GET', `${repoPath(org, repo)}/compare/${segs(base)}...${segs(head)}`, { headers: { accept: 'text/x-diff' } });
    if (response.body === null) throw new GroveApiError(response.status, 'http_error', 'the diff answer has no body');
    return response.body;
  }
}
