/** What the large-file benchmarks (large.ts, thin-delta.ts) share. */
import { randomBytes } from 'node:crypto';
import { open, readdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createWriteStream } from 'node:fs';
import { ensurePeer, httpRequest, startPeer, type GroveServer, type PeerServer } from './servers.ts';
import { gitOk, RssSampler, treeCpuMs } from './util.ts';

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

/** Waits until the server has evicted `count` big blobs from git since it started (its /metrics). */
export async function evicted(grove: { url: string }, count: number): Promise<void> {
  const started = performance.now();
  for (;;) {
    const text = await (await fetch(`${grove.url}/metrics`)).text();
    const done = Number(/^grove_bigstore_evicted\{unit="blobs"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    if (done >= count) return;
    if (performance.now() - started > 600_000) throw new Error(`${done} of ${count} big blobs evicted after 10 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Creates org `bench` and its repository `large` (on main) through the API. */
export async function createBenchRepo(grove: GroveServer): Promise<void> {
  const headers = { ...grove.authHeaders, 'Content-Type': 'application/json' };
  for (const [where, body] of [['orgs', { name: 'bench' }], ['orgs/bench/repos', { name: 'large', defaultBranch: 'main' }]] as const) {
    const answer = await httpRequest(undefined, `${grove.url}/api/v1/${where}`, { method: 'POST', headers, body: JSON.stringify(body) });
    if (answer.status !== 201) throw new Error(`POST ${where}: HTTP ${answer.status} ${answer.body}`);
  }
}

/** A new version of `file` (`size` bytes): 1% of it rewritten with random bytes, in 16 regions spread evenly. */
/**
 * Inserts `count` runs of `bytes` random bytes at random offsets, shifting everything after
 * each (the file is rewritten through a temporary copy): the edit that defeats fixed-size
 * chunking and that content-defined chunks absorb.
 */
export async function insertSmallRuns(file: string, count = 16, bytes = 64): Promise<void> {
  const size = (await stat(file)).size;
  const offsets = Array.from({ length: count }, () => Math.floor(Math.random() * size)).sort((a, b) => a - b);
  const copy = `${file}.insert`;
  const input = await open(file, 'r');
  const output = await open(copy, 'w');
  try {
    const buffer = Buffer.alloc(4 * 1024 * 1024);
    let at = 0;
    for (const offset of [...offsets, size]) {
      while (at < offset) {
        const { bytesRead } = await input.read(buffer, 0, Math.min(buffer.length, offset - at), at);
        await output.write(buffer, 0, bytesRead);
        at += bytesRead;
      }
      if (offset < size) await output.write(randomBytes(bytes));
    }
  } finally {
    await input.close();
    await output.close();
  }
  await rename(copy, file);
}

export async function rewriteOnePercent(file: string, size: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const region = Math.floor(size / 100 / 16);
    for (let i = 0; i < 16; i++) await handle.write(randomBytes(region), 0, region, Math.floor(((i + 0.5) * size) / 16));
  } finally {
    await handle.close();
  }
}

/** git options of the bench client: compression off (the client's cost is not what is measured). */
export const BENCH_CLIENT = ['-c', 'core.compression=0', '-c', 'user.name=Bench', '-c', 'user.email=bench@example.com'];

/** A work repository under `dir` with one commit of `weights.bin`, `sizeMiB` MiB of random bytes. */
export async function commitRandomFile(dir: string, sizeMiB: number): Promise<{ work: string; file: string; oid: string }> {
  const work = path.join(dir, 'work');
  await gitOk(['init', '-q', '-b', 'main', work]);
  const file = path.join(work, 'weights.bin');
  await new Promise<void>((resolve, reject) => {
    const out = createWriteStream(file);
    out.on('error', reject);
    let left = sizeMiB;
    const next = () => {
      while (left > 0) {
        left--;
        if (!out.write(randomBytes(1024 * 1024))) return void out.once('drain', next);
      }
      out.end(resolve);
    };
    next();
  });
  await gitOk([...BENCH_CLIENT, 'add', 'weights.bin'], { cwd: work, timeoutMs: 1_200_000 });
  await gitOk([...BENCH_CLIENT, 'commit', '-q', '-m', 'weights'], { cwd: work });
  const oid = (await gitOk(['rev-parse', 'HEAD:weights.bin'], { cwd: work })).stdout.trim();
  return { work, file, oid };
}

/** The reference peer under `dir`, with an empty bare `bench/large.git` that takes pushes (fsynced, fsck'd). */
export async function startLargePeer(dir: string): Promise<{ peer: PeerServer; peerRepo: string }> {
  const availability = await ensurePeer();
  if (!availability.ok) throw new Error(`the reference peer is unavailable: ${availability.message}`);
  const peer = await startPeer(path.join(dir, 'peer'), path.join(dir, 'peer', 'root'), availability.httpBackend, 16);
  const peerRepo = path.join(peer.projectRoot, 'bench', 'large.git');
  // -b main: with HEAD on an unborn master, a --depth 1 clone (single-branch) fetches nothing at all.
  await gitOk(['init', '-q', '--bare', '-b', 'main', peerRepo]);
  for (const [k, v] of [['http.receivepack', 'true'], ['core.fsync', 'committed,reference'], ['core.fsyncMethod', 'fsync'], ['receive.fsckObjects', 'true']] as const) {
    await gitOk(['config', k, v], { cwd: peerRepo });
  }
  return { peer, peerRepo };
}
