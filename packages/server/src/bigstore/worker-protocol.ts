/** Messages between the server and the ingest worker (ingest-worker.ts). */
import type { CollectReport } from './collect.ts';
import type { IngestOutcome } from './ingest.ts';
import type { ImportJob } from './import.ts';

/** A file the worker writes beside bigstore.db once its schema exists (readers wait for it). */
export const READY_MARKER = 'ready';

export interface WorkerSetup {
  /** The store's directory: bigstore.db and segments/. */
  readonly dir: string;
  /** git's HOME, as for every git Grove runs. */
  readonly gitHomeDir: string;
}

export type WorkerJob =
  | { readonly kind: 'ingest'; readonly repoId: string; readonly gitDir: string; readonly oid: string }
  /** Finds the big blobs that `tips` bring and `exclude` (the refs before a push) do not have, and ingests them. */
  | { readonly kind: 'scan'; readonly repoId: string; readonly gitDir: string; readonly tips: readonly string[]; readonly exclude: readonly string[] }
  /** A big upload spooled to disk, stored as a blob of the repository (git never holds it). */
  | { readonly kind: 'ingest-file'; readonly repoId: string; readonly file: string }
  | { readonly kind: 'forget'; readonly repoId: string }
  /** Links blobs the store holds to repositories that reach them through another's objects (forks). */
  | { readonly kind: 'link'; readonly repoIds: readonly string[]; readonly oids: readonly string[] }
  /** Gives a new fork every link of its source. */
  | { readonly kind: 'copy-links'; readonly fromRepoId: string; readonly toRepoId: string }
  /** A blob of the cluster's catalogue, from segment objects downloaded to disk (import.ts). */
  | ({ readonly kind: 'import' } & ImportJob)
  | { readonly kind: 'collect' };

export interface ScanReport {
  readonly found: number;
  readonly outcomes: readonly IngestOutcome[];
}

export type JobResult = IngestOutcome | ScanReport | CollectReport | { readonly forgotten: number } | { readonly linked: number };

export type ToWorker = { readonly id: number; readonly job: WorkerJob } | { readonly id: 0; readonly stop: true };

export type FromWorker =
  | { readonly id: number; readonly ok: true; readonly result: JobResult }
  | { readonly id: number; readonly ok: false; readonly error: string }
  | { readonly ready: true };
