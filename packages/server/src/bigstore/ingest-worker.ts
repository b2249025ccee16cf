/**
 * The ingest worker (a worker thread): the chunk store's one writer. Chunking, hashing and
 * deflate of big blobs run here, not on the server's event loop; jobs run one at a time,
 * so an ingest never meets a collection. git runs through Grove's own runner (the same
 * environment allowlist and config), with a limit of its own.
 */
import { parentPort, workerData } from 'node:worker_threads';
import path from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { GitRunner } from '../repo/git-command.ts';
import { BIG_BLOB_BYTES } from '../repo/big-blob.ts';
import { BigstoreIndex } from './bigstore-index.ts';
import { collect } from './collect.ts';
import { ingestBlob, ingestFile, type IngestOutcome } from './ingest.ts';
import { importBlob } from './import.ts';
import { SegmentReader, SegmentWriter } from './segments.ts';
import { READY_MARKER, type FromWorker, type JobResult, type ToWorker, type WorkerJob, type WorkerSetup } from './worker-protocol.ts';

const setup = workerData as WorkerSetup;
const port = parentPort!;
mkdirSync(setup.dir, { recursive: true });
const index = BigstoreIndex.openWriter(path.join(setup.dir, 'bigstore.db'));
const segmentDir = path.join(setup.dir, 'segments');
const segments = new SegmentWriter(segmentDir);
/** The store's own frames, for imports that reuse chunks it has (reads only what the index committed). */
const localFrames = new SegmentReader(segmentDir);
const git = new GitRunner({ homeDir: setup.gitHomeDir, maxProcesses: 2, maxProcessesPerRepo: 2, queueTimeoutMs: 10 * 60_000 });
const opened = segments.open(index.segments());

let chain: Promise<unknown> = opened;

port.on('message', (message: ToWorker) => {
  if ('stop' in message) {
    chain = chain.finally(async () => {
      await segments.close();
      await localFrames.close();
      index.close();
      await git.close();
      port.close();
    });
    return;
  }
  chain = chain.then(() => run(message.job)).then(
    (result) => send({ id: message.id, ok: true, result }),
    (error: unknown) => send({ id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
});

// Readers open the index only once this marker exists: before it, the file may lack its schema.
void opened.then(() => {
  writeFileSync(path.join(setup.dir, READY_MARKER), '');
  send({ ready: true });
});

function send(message: FromWorker): void {
  port.postMessage(message);
}

async function run(job: WorkerJob): Promise<JobResult> {
  switch (job.kind) {
    case 'ingest':
      return ingestBlob({ git, index, segments }, job);
    case 'ingest-file':
      return ingestFile({ index, segments }, job);
    case 'scan': {
      const oids = await bigBlobsBrought(job.gitDir, job.tips, job.exclude);
      const outcomes: IngestOutcome[] = [];
      for (const oid of oids) outcomes.push(await ingestBlob({ git, index, segments }, { repoId: job.repoId, gitDir: job.gitDir, oid }));
      return { found: oids.length, outcomes };
    }
    case 'forget':
      return { forgotten: index.forgetRepository(job.repoId) };
    case 'link': {
      let linked = 0;
      for (const repoId of job.repoIds) for (const oid of job.oids) if (index.hasBlob(oid)) linked += index.link(repoId, oid);
      return { linked };
    }
    case 'copy-links':
      return { linked: index.copyLinks(job.fromRepoId, job.toRepoId) };
    case 'import':
      return importBlob({ index, segments, local: localFrames }, job);
    case 'collect':
      // localFrames may keep a compacted segment's file open: harmless, the index no longer
      // names it and a worker never numbers a new segment as one it removed.
      return collect(index, segments, segmentDir);
  }
}

/**
 * The big blobs reachable from `tips` but not from `exclude`: rev-list's filter omits
 * blobs of at least the limit and prints them as `~<oid>` (git 2.39's --stdin mode wants
 * `^oid`, not --not). Blobs already evicted to the store are skipped, not an error.
 */
async function bigBlobsBrought(gitDir: string, tips: readonly string[], exclude: readonly string[]): Promise<string[]> {
  const input = [...tips, ...exclude.map((oid) => `^${oid}`)].join('\n') + '\n';
  const result = await git.check(['rev-list', '--objects', '--no-object-names', `--filter=blob:limit=${BIG_BLOB_BYTES}`, '--filter-print-omitted', '--missing=allow-any', '--stdin'], { gitDir, input });
  const oids = new Set<string>();
  for (const line of result.toString().split('\n')) if (line.startsWith('~')) oids.add(line.slice(1));
  return [...oids];
}
