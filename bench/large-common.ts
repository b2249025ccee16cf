/** What the large-file benchmarks (large.ts, thin-delta.ts) share. */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { RssSampler, treeCpuMs } from './util.ts';

export interface Measured {
  wallMs: number;
  cpuMs: number;
  peakRss: number;
}

/** Runs `work` while sampling the server tree's RSS and CPU. */
export async function measure(roots: readonly number[], work: () => Promise<unknown>): Promise<Measured> {
  const sampler = new RssSampler(roots, 50);
  await sampler.start();
  const cpu0 = treeCpuMs(roots);
  const t0 = performance.now();
  await work();
  const wallMs = performance.now() - t0;
  const cpuMs = treeCpuMs(roots) - cpu0;
  const stats = await sampler.stop();
  return { wallMs, cpuMs, peakRss: stats.peakTree };
}

/** Bytes of the files under `dir` (what it takes on disk, near enough: no sparse files here). */
export async function diskBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** Waits until the chunk store holds the blob of bench/large (its listing answers 200; 503 while the ingest runs). */
export async function chunkListing(grove: { url: string; authHeaders: Readonly<Record<string, string>> }, oid: string): Promise<void> {
  const started = performance.now();
  for (;;) {
    const listing = await fetch(`${grove.url}/api/v1/repos/bench/large/blobs/${oid}/chunks`, { headers: grove.authHeaders });
    await listing.arrayBuffer();
    if (listing.status === 200) return;
    if (listing.status !== 503) throw new Error(`chunk listing answered ${listing.status}`);
    if (performance.now() - started > 600_000) throw new Error('the chunk store did not take the blob in within 10 minutes');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

