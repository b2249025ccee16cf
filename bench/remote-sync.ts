/**
 * `node --conditions=grove-source bench/remote-sync.ts [--commits=N] [--branches=N] [--rounds=N] [--niceness=N]`:
 * remote sync against the reference peer (nginx + fcgiwrap + `git http-backend`) as the remote,
 * for docs/remote-sync.md ("Measured") and docs/benchmarks.md:
 *
 * - import of a generated repository (100,000 commits and 100 tags by default): Grove's one-call
 *   import (POST → status succeeded) against `git clone --bare` of the same URL, median of 3,
 *   and the growth of Grove's own processes' memory (PSS of node + launcher; git children apart);
 * - webhook → Grove ref updated: the remote (1,000 branches) moves main, a signed push webhook
 *   is sent, until Grove's branch API shows the new commit; p50/p95 over `rounds`;
 * - accepted Grove push → remote ref updated (push-forward): from `git push` to Grove returning
 *   until the remote's ref file has the commit; p50/p95;
 * - a no-op poll: ten upstreams polled every 10 s for 35 s, the mean of Grove's own
 *   `grove_sync_poll_seconds{result="noop"}`.
 *
 * Run on a quiet machine, never beside the test suite. Prints a Markdown table; nothing is written.
 */
import { createHmac } from 'node:crypto';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ensurePeer, startGrove, startPeer } from './servers.ts';
import { cleanup, fmtBytes, gitOk, percentile, RssSampler, run, setGitHome, sleep } from './util.ts';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const COMMITS = arg('commits', 100_000);
const BRANCHES = arg('branches', 1_000);
const ROUNDS = arg('rounds', 20);
/** Grove's git children run niced (GROVE_GIT_NICENESS, default 5); here the remote shares the two cores. */
const NICENESS = arg('niceness', 5);
const TOKEN = 'grove_bench_remote_sync_token_0123456789';

const tmp = await mkdtemp(path.join(os.tmpdir(), 'grove-bench-remote-sync-'));
try {
  const home = path.join(tmp, 'home');
  await mkdir(home);
  setGitHome(home);
  const availability = await ensurePeer();
  if (!availability.ok) throw new Error(`the reference peer is not available: ${availability.message}`);
  const projects = path.join(tmp, 'projects');
  const peer = await startPeer(path.join(tmp, 'peer'), projects, availability.httpBackend, 4);
  const grove = await startGrove(PROJECT_ROOT, path.join(tmp, 'grove'), TOKEN, { env: { GROVE_ALLOWED_OUTBOUND: '127.0.0.1', GROVE_ALLOW_INSECURE_REMOTES: 'true', GROVE_SYNC_POLL_SECONDS: '3600', GROVE_GIT_NICENESS: String(NICENESS) } });
  const api = async (method: string, route: string, body?: unknown): Promise<any> => {
    const response = await fetch(`${grove.url}/api/v1${route}`, { method, headers: { ...grove.authHeaders, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await response.text();
    if (response.status >= 400) throw new Error(`${method} ${route}: ${response.status} ${text}`);
    return text === '' ? null : JSON.parse(text);
  };
  await api('POST', '/orgs', { name: 'bench' });
  const rows: string[][] = [];

  // Import.
  const big = path.join(projects, 'big.git');
  await generate(big, COMMITS, 100);
  const peerUrl = (name: string) => `${peer.url}/${name}.git`;
  // Grove checks every object it takes from a remote (transfer.fsckObjects): the fair reference checks them too.
  const cloneMs: number[] = [];
  const plainCloneMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    let started = performance.now();
    await gitOk(['-c', 'transfer.fsckObjects=true', 'clone', '-q', '--bare', peerUrl('big'), path.join(tmp, `clone-${i}.git`)], { timeoutMs: 1_800_000 });
    cloneMs.push(performance.now() - started);
    started = performance.now();
    await gitOk(['clone', '-q', '--bare', peerUrl('big'), path.join(tmp, `plain-clone-${i}.git`)], { timeoutMs: 1_800_000 });
    plainCloneMs.push(performance.now() - started);
  }
  const importMs: number[] = [];
  let memory = { growth: 0, peakTree: 0 };
  for (let i = 0; i < 3; i++) {
    const sampler = new RssSampler([grove.pid], 50);
    await sampler.start();
    const started = performance.now();
    const answer = await api('POST', '/orgs/bench/repos', { name: `big-${i}`, import: { url: peerUrl('big') } });
    for (;;) {
      const state = await api('GET', `/orgs/bench/imports/${answer.import.id}`);
      if (state.status === 'succeeded') break;
      if (state.status === 'failed') throw new Error(`import failed: ${JSON.stringify(state.error)}`);
      await sleep(20);
    }
    importMs.push(performance.now() - started);
    const stats = await sampler.stop();
    if (i === 0) memory = { growth: stats.peakServer - stats.baselineServer, peakTree: stats.peakTree };
  }
  const clone = median(cloneMs);
  const imported = median(importMs);
  rows.push([`import of ${COMMITS.toLocaleString('en-US')} commits (Grove's git at niceness ${NICENESS}), 100 tags, against \`git clone --bare\` checking objects as Grove does (fsck): wall time (median of 3)`, ms(imported), ms(clone), `${(imported / clone).toFixed(2)}x`, '<= 1.2x', imported / clone <= 1.2 ? 'met' : '**not met**']);
  rows.push(['  same, against a plain `git clone --bare` (no object checks)', ms(imported), ms(median(plainCloneMs)), `${(imported / median(plainCloneMs)).toFixed(2)}x`, '', '']);
  rows.push(['  same, growth of Grove\'s own memory (PSS of node + launcher)', fmtBytes(memory.growth), '—', '—', '<= 30 MB', memory.growth <= 30 * 1024 * 1024 ? 'met' : '**not met**']);
  rows.push(['  same, peak of the whole tree (git children included)', fmtBytes(memory.peakTree), '—', '—', '', '']);

  // A remote with many branches, followed by one Grove repository; agent branches pushed back.
  const followed = path.join(projects, 'followed.git');
  await generate(followed, 50, 0, BRANCHES);
  await gitOk(['--git-dir', followed, 'config', 'http.receivepack', 'true']);
  await api('POST', '/orgs/bench/repos', { name: 'followed' });
  const upstream = await api('PUT', '/repos/bench/followed/upstreams/origin', {
    url: peerUrl('followed'),
    rules: [{ refs: 'refs/heads/agent/**', direction: 'push' }, { refs: 'refs/heads/**', direction: 'pull' }, { refs: 'refs/tags/**', direction: 'pull' }],
  });
  await waitFor(async () => (await api('GET', `/repos/bench/followed/upstreams/origin/syncs/${upstream.syncRun}`)).status === 'succeeded');
  const work = path.join(tmp, 'work');
  await gitOk(['clone', '-q', '-c', `http.extraHeader=Authorization: Bearer ${TOKEN}`, `${grove.url}/bench/followed.git`, work]);

  const webhookLag: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    await gitOk(['-C', work, 'commit', '-q', '--allow-empty', '-m', `upstream ${i}`]);
    const sha = (await gitOk(['-C', work, 'rev-parse', 'HEAD'])).stdout.trim();
    await gitOk(['-C', work, 'push', '-q', followed, 'HEAD:refs/heads/main']);
    const body = JSON.stringify({ ref: 'refs/heads/main', after: sha });
    const started = performance.now();
    await fetch(`${grove.url}${upstream.webhook.url}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${createHmac('sha256', upstream.webhook.secret).update(body).digest('hex')}` }, body });
    await waitFor(async () => (await api('GET', '/repos/bench/followed/branches/main')).sha === sha, 1);
    webhookLag.push(performance.now() - started);
  }
  rows.push([`webhook received → Grove ref updated (${BRANCHES.toLocaleString('en-US')} branches), p50 / p95 of ${ROUNDS}`, `${ms(percentile(webhookLag, 50))} / ${ms(percentile(webhookLag, 95))}`, '—', '—', 'p95 <= 0.5 s', percentile(webhookLag, 95) <= 500 ? 'met' : '**not met**']);

  const pushLag: number[] = [];
  const grovePush = ['-c', `http.extraHeader=Authorization: Bearer ${TOKEN}`, '-C', work, 'push', '-q', `${grove.url}/bench/followed.git`];
  for (let i = 0; i < ROUNDS; i++) {
    await gitOk(['-C', work, 'commit', '-q', '--allow-empty', '-m', `agent ${i}`]);
    const sha = (await gitOk(['-C', work, 'rev-parse', 'HEAD'])).stdout.trim();
    await gitOk([...grovePush, `HEAD:refs/heads/agent/b${i % 4}`, '--force']);
    const started = performance.now();
    await waitFor(async () => (await readFile(path.join(followed, 'refs', 'heads', 'agent', `b${i % 4}`), 'utf8').catch(() => '')).trim() === sha, 1);
    pushLag.push(performance.now() - started);
  }
  rows.push([`accepted Grove push → remote ref updated, p50 / p95 of ${ROUNDS}`, `${ms(percentile(pushLag, 50))} / ${ms(percentile(pushLag, 95))}`, '—', '—', 'p95 <= 1.5 s', percentile(pushLag, 95) <= 1500 ? 'met' : '**not met**']);

  // No-op polls: ten upstreams of small repositories, polled every 10 s.
  for (let i = 0; i < 10; i++) {
    await generate(path.join(projects, `polled-${i}.git`), 20, 2);
    await api('POST', '/orgs/bench/repos', { name: `polled-${i}` });
    await api('PUT', `/repos/bench/polled-${i}/upstreams/origin`, { url: peerUrl(`polled-${i}`), pollIntervalSeconds: 10 });
  }
  await sleep(35_000);
  const metrics = await (await fetch(`${grove.url}/metrics`)).text();
  const sum = Number(/^grove_sync_poll_seconds_sum\{result="noop"\} (\S+)$/m.exec(metrics)?.[1] ?? NaN);
  const count = Number(/^grove_sync_poll_seconds_count\{result="noop"\} (\S+)$/m.exec(metrics)?.[1] ?? NaN);
  rows.push([`a no-op poll (ls-remote and the comparison; mean of ${count})`, ms((sum / count) * 1000), '—', '—', '<= 0.1 s, 0 REST calls', sum / count <= 0.1 ? 'met' : '**not met**']);

  console.log('| workload | Grove | peer | ratio | target | met? |\n|---|---:|---:|---:|---|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  await grove.stop();
  await peer.stop();
} finally {
  await cleanup();
}

/** A bare repository with `commits` commits on main (each changing one of 100 files), `tags` tags and `branches` more branches. */
async function generate(dir: string, commits: number, tags: number, branches = 0): Promise<void> {
  await gitOk(['init', '-q', '--bare', '-b', 'main', dir]);
  let stream = '';
  const chunks: string[] = [];
  for (let i = 1; i <= commits; i++) {
    const content = `line ${i}\n`;
    stream += `commit refs/heads/main\nmark :${i}\ncommitter Bench <bench@example.com> ${1_700_000_000 + i} +0000\ndata ${`c${i}`.length}\nc${i}\n${i === 1 ? '' : `from :${i - 1}\n`}M 100644 inline f${i % 100}.txt\ndata ${content.length}\n${content}\n`;
    if (i % 2000 === 0) {
      chunks.push(stream);
      stream = '';
    }
  }
  for (let t = 1; t <= tags; t++) stream += `reset refs/tags/v${t}\nfrom :${Math.max(1, Math.floor((commits * t) / Math.max(1, tags)))}\n\n`;
  for (let b = 1; b <= branches; b++) stream += `reset refs/heads/topic-${b}\nfrom :${1 + (b % commits)}\n\n`;
  chunks.push(stream);
  const result = await run('git', ['--git-dir', dir, 'fast-import', '--quiet'], { input: chunks.join(''), timeoutMs: 600_000 });
  if (result.code !== 0) throw new Error(`fast-import failed: ${result.stderr}`);
  await gitOk(['--git-dir', dir, 'repack', '-adq', '--write-bitmap-index']);
  await gitOk(['--git-dir', dir, 'pack-refs', '--all']);
}

function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

function ms(value: number): string {
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${value.toFixed(value >= 100 ? 0 : 1)} ms`;
}

async function waitFor(check: () => Promise<boolean>, intervalMs = 50, timeoutMs = 600_000): Promise<void> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error('timed out');
    await sleep(intervalMs);
  }
}

