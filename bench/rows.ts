/**
 * The result table: one row per figure, with the targets of issue 10 (fleet performance II)
 * and those of issue 5 it did not replace. Ratios are Grove ÷ peer.
 */
import type { LoadOp, LoadResult } from './load-client.ts';
import type { Row } from './report.ts';
import { key, type Results } from './results.ts';
import { fmtMs, median } from './util.ts';

/** Which load op a table row shows (for the client-ceiling note). */
export const ROW_OPS = new Map<string, LoadOp>();

const atLeast = (n: number) => (_row: Row, ratio: number | null) => (ratio === null ? null : ratio >= n);
const atMost = (n: number) => (_row: Row, ratio: number | null) => (ratio === null ? null : ratio <= n);
const groveAtMost = (n: number) => (row: Row) => (row.grove === null ? null : row.grove <= n);
const groveBelow = (n: number) => (row: Row) => (row.grove === null ? null : row.grove < n);
const mb = (bytes: number | undefined): number | null => (bytes === undefined ? null : bytes / 1024 ** 2);

export function rows(r: Results): Row[] {
  const out: Row[] = [];
  const load = (side: string, op: LoadOp): LoadResult | undefined => r.load.get(key(side, op));
  const rps = (side: string, op: LoadOp): number | null => load(side, op)?.rps ?? null;
  const c = r.concurrency;
  const loadRow = (op: LoadOp, workload: string, target: number) => {
    ROW_OPS.set(workload, op);
    out.push({ workload, grove: rps('grove', op), peer: rps('peer', op), unit: 'req/s', better: 'higher', target: { text: `>= ${target}x`, check: atLeast(target) } });
  };
  loadRow('ls-refs', `ls-refs, req/s (c=${c})`, 10);
  loadRow('info-refs', `info/refs v2 advertisement, req/s (c=${c})`, 10);
  loadRow('shallow-fetch', `shallow clone (deepen 1) of one commit, req/s (c=${c})`, 12);
  loadRow('full-fetch', `full clone of one commit, req/s (c=${c})`, 8);

  const clone = (side: string): number | null => {
    const v = r.clone?.get(side);
    return v && v.samples.length > 0 ? v.medianMs : null;
  };
  out.push({ workload: `single full git clone, wall time (median of ${r.mode.cloneSamples})`, grove: clone('grove'), peer: clone('peer'), unit: 'ms', better: 'lower', target: { text: '<= 1.05x', check: atMost(1.05) } });

  const agents = r.agents.get('grove');
  const agentText = (side: string): string | undefined => {
    const a = r.agents.get(side);
    return a ? `${fmtMs(a.p50Ms)}, ${a.failures} failed` : undefined;
  };
  const noFailures = (failures: number | undefined, limit: number) => (_row: Row, ratio: number | null) => (ratio === null || failures === undefined ? null : ratio <= limit && failures === 0);
  out.push({
    workload: `${r.mode.agents} agents push a new branch (git CLI, ${r.mode.agentConcurrency} at once): p50`,
    grove: agents?.p50Ms ?? null,
    peer: r.agents.get('peer')?.p50Ms ?? null,
    unit: 'ms',
    better: 'lower',
    ...(agentText('grove') ? { groveText: agentText('grove')! } : {}),
    ...(agentText('peer') ? { peerText: agentText('peer')! } : {}),
    target: { text: '<= 1.0x, 0 failures', check: noFailures(agents?.failures, 1.0) },
  });
  out.push({ workload: '  same, p95', grove: agents?.p95Ms ?? null, peer: r.agents.get('peer')?.p95Ms ?? null, unit: 'ms', better: 'lower', target: { text: '<= 1.0x', check: atMost(1.0) } });

  const storm = (side: string) => r.storm.get(side);
  const pushes = storm('grove')?.pushes ?? r.mode.stormPushes;
  const quickNote = r.mode.name === 'quick' ? ' (quick mode: not 2,000)' : '';
  out.push({
    workload: `${pushes} small pushes in ${r.mode.stormLanes} parallel chains${quickNote}, total time`,
    grove: storm('grove')?.pushWallMs ?? null,
    peer: storm('peer')?.pushWallMs ?? null,
    unit: 'ms',
    better: 'lower',
    target: { text: '<= 1.0x', check: atMost(1.0) },
  });
  const medianOf = (values: readonly number[] | undefined): number | null => (values && values.length ? median(values) : null);
  out.push({ workload: '  git fetch right after them, p50', grove: medianOf(storm('grove')?.afterPushesMs), peer: medianOf(storm('peer')?.afterPushesMs), unit: 'ms', better: 'lower' });
  out.push({ workload: '  same, once the server is idle (its own maintenance done)', grove: medianOf(storm('grove')?.whenIdleMs), peer: medianOf(storm('peer')?.whenIdleMs), unit: 'ms', better: 'lower' });
  out.push({ workload: '  git fetch after repack -adb --write-midx, p50', grove: medianOf(storm('grove')?.afterRepackMs), peer: medianOf(storm('peer')?.afterRepackMs), unit: 'ms', better: 'lower' });
  const own = (side: string): number | null => {
    const a = medianOf(storm(side)?.afterPushesMs);
    const b = medianOf(storm(side)?.afterRepackMs);
    return a !== null && b !== null && b > 0 ? a / b : null;
  };
  out.push({ workload: '  fetch right after pushes ÷ after repack (each server\'s own)', grove: own('grove'), peer: own('peer'), unit: 'x', better: 'lower', noRatio: true, target: { text: '<= 1.5x (Grove)', on: 'grove', check: groveAtMost(1.5) } });

  const fleet = (side: string) => r.fleet.get(side);
  const fleetText = (side: string): string | undefined => {
    const f = fleet(side);
    return f ? `${fmtMs(f.endToEnd.p95Ms)}, ${f.failures} failed` : undefined;
  };
  out.push({
    workload: `fleet: ${r.mode.fleetAgents} agents (${r.mode.fleetConcurrency} at once) clone, commit, push: end-to-end p95`,
    grove: fleet('grove')?.endToEnd.p95Ms ?? null,
    peer: fleet('peer')?.endToEnd.p95Ms ?? null,
    unit: 'ms',
    better: 'lower',
    ...(fleetText('grove') ? { groveText: fleetText('grove')! } : {}),
    ...(fleetText('peer') ? { peerText: fleetText('peer')! } : {}),
    target: { text: '<= 1.0x, 0 failures', check: noFailures(fleet('grove')?.failures, 1.0) },
  });
  for (const step of ['clone', 'push'] as const) {
    out.push({ workload: `  same, ${step} step p95`, grove: fleet('grove')?.[step].p95Ms ?? null, peer: fleet('peer')?.[step].p95Ms ?? null, unit: 'ms', better: 'lower' });
  }
  const probe = (side: string, name: string) => r.probes.get(side)?.find((p) => p.name === name);
  const probeLabels = { 'ls-refs': 'ls-refs', branch: 'GET …/branches/{branch}', contents: 'small contents read' } as const;
  for (const name of ['ls-refs', 'branch', 'contents'] as const) {
    const g = probe('grove', name);
    out.push({
      workload: `  p99 of ${probeLabels[name]} during the fleet run`,
      grove: g?.latency.p99Ms ?? null,
      peer: name === 'ls-refs' ? probe('peer', name)?.latency.p99Ms ?? null : null,
      ...(name === 'ls-refs' ? {} : { peerText: '—' }),
      unit: 'ms',
      better: 'lower',
      noRatio: name !== 'ls-refs',
      target: { text: '< 50 ms (Grove), 0 errors', on: 'grove', check: (row) => (row.grove === null || g === undefined ? null : row.grove < 50 && g.errors === 0) },
    });
  }

  const fair = r.fairness;
  out.push({
    workload: `fairness: ${fair?.agents ?? r.mode.fairnessAgents / 2} agents pushing beside one key's ${r.mode.fairnessClones} concurrent clones: push p95 ÷ p95 alone (Grove)`,
    grove: fair && fair.alone.p95Ms > 0 ? fair.withRunaway.p95Ms / fair.alone.p95Ms : null,
    peer: null,
    ...(fair ? { groveText: `${(fair.withRunaway.p95Ms / fair.alone.p95Ms).toFixed(2)}x (${fmtMs(fair.withRunaway.p95Ms)} vs ${fmtMs(fair.alone.p95Ms)})` } : {}),
    peerText: '—',
    unit: 'x',
    better: 'lower',
    noRatio: true,
    target: { text: '<= 1.5x, 0 failures', on: 'grove', check: (row) => (row.grove === null || !fair ? null : row.grove <= 1.5 && fair.alone.failures + fair.withRunaway.failures === 0) },
  });

  const rss = (side: string) => r.rss.get(side);
  out.push({
    workload: `peak memory during ${r.mode.rssClones} concurrent clones: server processes (PSS)`,
    grove: mb(rss('grove')?.peakServer),
    peer: mb(rss('peer')?.peakServer),
    unit: 'MB',
    better: 'lower',
    target: { text: '<= 200 MB (Grove)', on: 'grove', check: groveAtMost(200) },
  });
  out.push({ workload: '  same, with their git children (their RSS added)', grove: mb(rss('grove')?.peakTree), peer: mb(rss('peer')?.peakTree), unit: 'MB', better: 'lower' });
  const many = rss('grove-many');
  out.push({
    workload: `${r.mode.rssClonesGrove} concurrent clones of one commit (Grove): peak memory`,
    grove: mb(many?.peakServer),
    peer: null,
    ...(many ? { groveText: `${(mb(many.peakServer) ?? 0).toFixed(0)} MB, ${many.load.errors} failed` } : {}),
    peerText: '—',
    unit: 'MB',
    better: 'lower',
    noRatio: true,
    target: { text: '0 failures, <= 400 MB', on: 'grove', check: (row) => (row.grove === null || many === undefined ? null : row.grove <= 400 && many.load.errors === 0) },
  });
  out.push({
    workload: 'idle memory right after start: Grove\'s node process (RSS)',
    grove: r.groveIdleRss > 0 ? mb(r.groveIdleRss) : null,
    peer: null,
    peerText: '—',
    unit: 'MB',
    better: 'lower',
    noRatio: true,
    target: { text: '<= 100 MB', on: 'grove', check: groveAtMost(100) },
  });
  out.push({ workload: '  same, with its git launcher (PSS)', grove: r.groveIdlePss > 0 ? mb(r.groveIdlePss) : null, peer: null, peerText: '—', unit: 'MB', better: 'lower', noRatio: true });

  const api = r.api;
  out.push({
    workload: `create repo via API, p50 (${api?.creates ?? r.mode.creates} creates, one at a time)`,
    grove: api ? api.createP50Ms : null,
    peer: null,
    peerText: '—',
    unit: 'ms',
    better: 'lower',
    noRatio: true,
    target: { text: '< 20 ms', on: 'grove', check: groveBelow(20) },
  });
  const orgNote = r.mode.name === 'quick' ? ' (quick mode: not 10,000)' : '';
  out.push({
    workload: `list a page (100) of an org with ${(api?.populated ?? r.mode.orgRepos).toLocaleString('en-US')} repos${orgNote}, p50`,
    grove: api ? api.listP50Ms : null,
    peer: null,
    peerText: '—',
    unit: 'ms',
    better: 'lower',
    noRatio: true,
    target: { text: '< 20 ms', on: 'grove', check: groveBelow(20) },
  });
  return out;
}
