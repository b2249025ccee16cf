/**
 * `node --conditions=grove-source bench/thin-delta.ts [--size=MiB]`: the thin-delta push of
 * a big file (issue 13's row 5). A file of random bytes (256 MiB by default) is pushed to
 * Grove and to the reference peer; then 1% of it is rewritten in 16 regions and pushed
 * again. A stock git client sends that second version as a delta against the first (its
 * own core.bigFileThreshold is 512 MiB), so the server has to rebuild the whole blob from
 * a small pack. On Grove the first version has been evicted from git by then: the push
 * writes it back into the quarantine from the chunk store and indexes the pack again.
 * Measured on each side: the second push's wall time and the server tree's peak RSS (git
 * children included); on Grove also the chunk store's ingest of the new version (it reads
 * the rebuilt blob once through `git cat-file`) and the peak RSS of a 1 MiB Range read of
 * it afterwards (from the chunk store, not git).
 *
 * Run on a quiet machine, never beside the test suite. Prints the figures; writes nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { chunkListing, createBenchRepo, evicted, measure, rewriteOnePercent } from './large-common.ts';
import { ensurePeer, startGrove, startPeer } from './servers.ts';
import { cleanup, fmtBytes, gitOk, RssSampler, setGitHome } from './util.ts';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sizeMiB = Number(process.argv.find((a) => a.startsWith('--size='))?.slice(7) ?? 256);
const TOKEN = 'grove_bench_thin_token_0123456789';

const tmp = await mkdtemp(path.join(os.tmpdir(), 'grove-bench-thin-'));
try {
  const home = path.join(tmp, 'home');
  await mkdir(home);
  setGitHome(home);
  const work = path.join(tmp, 'work');
  await gitOk(['init', '-q', '-b', 'main', work]);
  const file = path.join(work, 'weights.bin');
  const size = sizeMiB * 1024 * 1024;
  await writeFile(file, randomBytes(size));
  const client = ['-c', 'user.name=Bench', '-c', 'user.email=bench@example.com'];
  await gitOk([...client, 'add', 'weights.bin'], { cwd: work, timeoutMs: 1_200_000 });
  await gitOk([...client, 'commit', '-q', '-m', 'v1'], { cwd: work });

  const grove = await startGrove(PROJECT_ROOT, path.join(tmp, 'grove'), TOKEN);
  await createBenchRepo(grove);
  const availability = await ensurePeer();
  if (!availability.ok) throw new Error(`the reference peer is unavailable: ${availability.message}`);
  const peer = await startPeer(path.join(tmp, 'peer'), path.join(tmp, 'peer', 'root'), availability.httpBackend, 16);
  const peerRepo = path.join(peer.projectRoot, 'bench', 'large.git');
  await gitOk(['init', '-q', '--bare', '-b', 'main', peerRepo]);
  for (const [k, v] of [['http.receivepack', 'true'], ['receive.fsckObjects', 'true']] as const) await gitOk(['config', k, v], { cwd: peerRepo });
  const sides = [
    { name: 'Grove', url: `${grove.url}/bench/large.git`, auth: ['-c', `http.extraHeader=Authorization: Bearer ${TOKEN}`], roots: [grove.pid] },
    { name: 'peer', url: `${peer.url}/bench/large.git`, auth: [] as string[], roots: [peer.nginxPid, peer.fcgiwrapPid] },
  ];
  for (const side of sides) await gitOk([...side.auth, 'push', '-q', side.url, 'main'], { cwd: work, timeoutMs: 1_800_000 });
  const v1 = (await gitOk(['rev-parse', 'HEAD:weights.bin'], { cwd: work })).stdout.trim();
  await chunkListing(grove, v1);
  await evicted(grove, 1);

  await rewriteOnePercent(file, size);
  await gitOk([...client, 'commit', '-q', '-am', 'v2'], { cwd: work, timeoutMs: 1_200_000 });
  const v2 = (await gitOk(['rev-parse', 'HEAD:weights.bin'], { cwd: work })).stdout.trim();

  console.log(`\n${sizeMiB} MiB of random bytes, then 1% rewritten in 16 regions and pushed again by the git CLI (${(await gitOk(['--version'])).stdout.trim()})\n`);
  console.log('| second push | wall | pack sent | server peak RSS (tree) |');
  console.log('|---|---|---|---|');
  for (const side of sides) {
    let packBytes = 0;
    const pushed = await measure(side.roots, async () => {
      const result = await gitOk([...side.auth, 'push', '--progress', side.url, 'main'], { cwd: work, timeoutMs: 1_800_000 });
      const match = /Writing objects: 100% \(\d+\/\d+\), ([\d.]+) (KiB|MiB|bytes)/.exec(result.stderr);
      if (match) packBytes = Number(match[1]) * (match[2] === 'MiB' ? 1024 * 1024 : match[2] === 'KiB' ? 1024 : 1);
    });
    console.log(`| ${side.name} | ${(pushed.wallMs / 1000).toFixed(2)} s | ${fmtBytes(packBytes)} | ${fmtBytes(pushed.peakRss)} |`);
  }
  const ingest = await measure([grove.pid], () => chunkListing(grove, v2));
  console.log(`\nGrove's ingest of the new version into the chunk store: ${(ingest.wallMs / 1000).toFixed(2)} s, server tree peak RSS ${fmtBytes(ingest.peakRss)}`);
  const sampler = new RssSampler([grove.pid], 20);
  await sampler.start();
  const t0 = performance.now();
  const range = await fetch(`${grove.url}/api/v1/repos/bench/large/blobs/${v2}`, { headers: { ...grove.authHeaders, Range: `bytes=${size - 1024 * 1024}-${size - 1}` } });
  const body = Buffer.from(await range.arrayBuffer());
  const rangeMs = performance.now() - t0;
  const rangeRss = await sampler.stop();
  if (range.status !== 206 || body.length !== 1024 * 1024) throw new Error(`range read answered ${range.status} with ${body.length} bytes`);
  console.log(`A 1 MiB Range read at the end of the new version afterwards: ${rangeMs.toFixed(1)} ms, server tree peak RSS ${fmtBytes(rangeRss.peakTree)}`);
  await grove.stop();
  await peer.stop();
} finally {
  await cleanup();
  await rm(tmp, { recursive: true, force: true });
}
