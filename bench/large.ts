/**
 * `node --conditions=grove-source bench/large.ts [--size=MiB] [--versions=N]
 * [--edit=rewrite|insert] [--no-concurrent]`: one big file
 * (random bytes, 1 GiB by default) through Grove and through the reference peer (nginx + fcgiwrap +
 * `git http-backend`) in the same run, for the large-file rows of docs/benchmarks.md:
 *
 * - push with the git CLI: wall time, and the server's peak RSS (its whole process tree,
 *   git children included, file-backed pages too), sampled every 50 ms;
 * - a full clone, a `--depth 1` clone and 8 full clones at once (not with --no-concurrent,
 *   which keeps a 4 GiB run short): client wall time, server CPU (the tree's user + system
 *   time), server peak RSS;
 * - Grove only (the peer has no such API): the time from the push's end until the chunk
 *   store holds the blob (ingest) and until git no longer does (eviction; the clones after
 *   it are spliced from the store), then 1 MiB `Range` reads of it at random offsets
 *   through `GET /blobs/{oid}`, 1 client and 16 concurrent clients, p50/p99;
 * - further versions (2 in all by default), each with 1% rewritten in 16 regions (or, with
 *   --edit=insert, 16 runs of 64 random bytes inserted), pushed to both: the disk each side
 *   uses for all versions (Grove: its repository plus its chunk store).
 *
 * Run on a quiet machine, never beside the test suite. Prints a Markdown table; nothing is
 * written. Everything runs under one temp dir, removed at the end.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startGrove } from './servers.ts';
import { BENCH_CLIENT, commitRandomFile, startLargePeer, chunkListing, createBenchRepo, diskBytes, evicted, insertSmallRuns, measure, rewriteOnePercent, type Measured } from './large-common.ts';
import { cleanup, fmtBytes, gitOk, percentile, RssSampler, setGitHome } from './util.ts';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sizeMiB = Number(process.argv.find((a) => a.startsWith('--size='))?.slice(7) ?? 1024);
const TOKEN = 'grove_bench_large_token_0123456789';
const insertEdits = process.argv.includes('--edit=insert');
const versions = Number(process.argv.find((a) => a.startsWith('--versions='))?.slice(11) ?? 2);
const CONCURRENT_CLONES = process.argv.includes('--no-concurrent') ? 0 : 8;

const tmp = await mkdtemp(path.join(os.tmpdir(), 'grove-bench-large-'));
try {
  const home = path.join(tmp, 'home');
  await mkdir(home);
  setGitHome(home);
  const { work, file, oid } = await commitRandomFile(tmp, sizeMiB);

  const grove = await startGrove(PROJECT_ROOT, path.join(tmp, 'grove'), TOKEN, { env: { GROVE_MAX_PACK_BYTES: String(8 * 1024 ** 3) } });
  await createBenchRepo(grove);
  const groveAuth = ['-c', `http.extraHeader=Authorization: Bearer ${TOKEN}`];

  const { peer, peerRepo } = await startLargePeer(tmp);

  const sides = [
    { name: 'Grove', url: `${grove.url}/bench/large.git`, auth: groveAuth, roots: [grove.pid] },
    { name: 'peer', url: `${peer.url}/bench/large.git`, auth: [] as string[], roots: [peer.nginxPid, peer.fcgiwrapPid] },
  ];
  const results = new Map<string, Record<string, Measured>>();
  let ingestMs = Number.NaN;
  let evictMs = Number.NaN;
  for (const side of sides) {
    const row: Record<string, Measured> = {};
    row.push = await measure(side.roots, () => gitOk([...side.auth, 'push', '-q', side.url, 'main'], { cwd: work, timeoutMs: 1_800_000 }));
    if (side.name === 'Grove') {
      // The chunk store takes the blob in after the push (a worker thread); the listing answers once it has.
      const ingestStarted = performance.now();
      await chunkListing(grove, oid);
      ingestMs = performance.now() - ingestStarted;
      // Then maintenance evicts it from git: every clone below is spliced from the store.
      await evicted(grove, 1);
      evictMs = performance.now() - ingestStarted;
    }
    row.clone = await measure(side.roots, () => gitOk([...side.auth, 'clone', '-q', '--bare', side.url, path.join(tmp, `${side.name}-full.git`)], { timeoutMs: 1_800_000 }));
    row.shallow = await measure(side.roots, () => gitOk([...side.auth, 'clone', '-q', '--bare', '--depth', '1', side.url, path.join(tmp, `${side.name}-shallow.git`)], { timeoutMs: 1_800_000 }));
    // A clone counts only if it holds the file (an empty or refused clone would still exit 0 for some paths).
    for (const kind of ['full', 'shallow']) {
      const size = Number((await gitOk(['--git-dir', path.join(tmp, `${side.name}-${kind}.git`), 'cat-file', '-s', oid])).stdout.trim());
      if (size !== sizeMiB * 1024 * 1024) throw new Error(`${side.name}'s ${kind} clone holds ${size} bytes of the file`);
    }
    await rm(path.join(tmp, `${side.name}-full.git`), { recursive: true, force: true });
    await rm(path.join(tmp, `${side.name}-shallow.git`), { recursive: true, force: true });
    // Eight full clones at once (the wall time is the last one's).
    if (CONCURRENT_CLONES === 0) {
      results.set(side.name, row);
      continue;
    }
    const dirs = Array.from({ length: CONCURRENT_CLONES }, (_, i) => path.join(tmp, `${side.name}-concurrent-${i}.git`));
    row.concurrent = await measure(side.roots, () => Promise.all(dirs.map((dir) => gitOk([...side.auth, 'clone', '-q', '--bare', side.url, dir], { timeoutMs: 1_800_000 }))));
    for (const dir of dirs) {
      const size = Number((await gitOk(['--git-dir', dir, 'cat-file', '-s', oid])).stdout.trim());
      if (size !== sizeMiB * 1024 * 1024) throw new Error(`${side.name}'s concurrent clone holds ${size} bytes of the file`);
      await rm(dir, { recursive: true, force: true });
    }
    results.set(side.name, row);
  }


  // 1 MiB ranges at random offsets: one client, then 16 at once.
  const size = sizeMiB * 1024 * 1024;
  const rangeRead = async (): Promise<number> => {
    const start = Math.floor(Math.random() * (size - 1024 * 1024));
    const t0 = performance.now();
    const response = await fetch(`${grove.url}/api/v1/repos/bench/large/blobs/${oid}`, { headers: { ...grove.authHeaders, Range: `bytes=${start}-${start + 1024 * 1024 - 1}` } });
    const body = Buffer.from(await response.arrayBuffer());
    if (response.status !== 206 || body.length !== 1024 * 1024) throw new Error(`range read answered ${response.status} with ${body.length} bytes`);
    return performance.now() - t0;
  };
  for (let i = 0; i < 10; i++) await rangeRead(); // warm
  const latencies: number[] = [];
  for (let i = 0; i < 200; i++) latencies.push(await rangeRead());
  const sampler = new RssSampler([grove.pid], 50);
  await sampler.start();
  const concurrent = (await Promise.all(Array.from({ length: 16 }, async () => {
    const mine: number[] = [];
    for (let i = 0; i < 25; i++) mine.push(await rangeRead());
    return mine;
  }))).flat();
  const rangeRss = await sampler.stop();

  // Versions 2..N, each edited (1% rewritten in 16 regions, or small runs inserted) and pushed to both sides.
  for (let version = 2; version <= versions; version++) {
    if (insertEdits) await insertSmallRuns(file);
    else await rewriteOnePercent(file, size);
    await gitOk([...BENCH_CLIENT, 'commit', '-q', '-am', `weights v${version}`], { cwd: work, timeoutMs: 1_200_000 });
    const next = (await gitOk(['rev-parse', 'HEAD:weights.bin'], { cwd: work })).stdout.trim();
    for (const side of sides) await gitOk([...side.auth, 'push', '-q', side.url, 'main'], { cwd: work, timeoutMs: 1_800_000 });
    await chunkListing(grove, next);
    await evicted(grove, version);
  }
  const groveGit = await diskBytes(path.join(tmp, 'grove', 'repos'));
  const groveStore = await diskBytes(path.join(tmp, 'grove', 'bigstore'));
  const peerGit = await diskBytes(peerRepo);

  const g = results.get('Grove')!;
  const p = results.get('peer')!;
  const ms = (v: number) => `${(v / 1000).toFixed(2)} s`;
  const line = (what: string, key: string) =>
    `| ${what} | ${ms(g[key]!.wallMs)} | ${ms(p[key]!.wallMs)} | ${(g[key]!.wallMs / p[key]!.wallMs).toFixed(2)}x | ${ms(g[key]!.cpuMs)} / ${ms(p[key]!.cpuMs)} | ${fmtBytes(g[key]!.peakRss)} / ${fmtBytes(p[key]!.peakRss)} |`;
  console.log(`\n${sizeMiB} MiB of random bytes in one file (blob ${oid.slice(0, 12)}), git ${(await gitOk(['--version'])).stdout.trim()}\n`);
  console.log('| step | Grove wall | peer wall | ratio | server CPU Grove / peer | server peak RSS Grove / peer |');
  console.log('|---|---|---|---|---|---|');
  console.log(line('push (git CLI)', 'push'));
  console.log(line('full clone (bare)', 'clone'));
  console.log(line('clone --depth 1 (bare)', 'shallow'));
  if (CONCURRENT_CLONES > 0) console.log(line(`${CONCURRENT_CLONES} full clones at once`, 'concurrent'));
  const f1 = (v: number) => v.toFixed(1);
  console.log(`\nChunk store ingest of the blob, from the push's end: ${ms(ingestMs)} (${(size / 1024 / 1024 / (ingestMs / 1000)).toFixed(0)} MiB/s); evicted from git ${ms(evictMs)} after the push's end`);
  console.log(`1 MiB Range reads at random offsets (Grove, from the chunk store): 1 client, 200 reads: p50 ${f1(percentile(latencies, 50))} ms, p99 ${f1(percentile(latencies, 99))} ms; 16 clients, 400 reads: p50 ${f1(percentile(concurrent, 50))} ms, p99 ${f1(percentile(concurrent, 99))} ms; Grove's own processes ${fmtBytes(rangeRss.baselineServer)} PSS before the 16 clients, ${fmtBytes(rangeRss.peakServer)} at their peak`);
  console.log(`${versions} versions (each after the first ${insertEdits ? 'with 16 runs of 64 random bytes inserted' : 'with 1% rewritten in 16 regions'}) on disk: Grove ${fmtBytes(groveGit + groveStore)} (git ${fmtBytes(groveGit)} + chunk store ${fmtBytes(groveStore)}, every version evicted from git), peer ${fmtBytes(peerGit)}; the chunk store alone holds them in ${(groveStore / (versions * size) * 100).toFixed(0)}% of their ${fmtBytes(versions * size)}`);
  await grove.stop();
  await peer.stop();
} finally {
  await cleanup();
  await rm(tmp, { recursive: true, force: true });
}
