/** What one benchmark run found, filled in stage by stage. */
import { performance } from 'node:perf_hooks';
import type { CpuInfo } from './cpu-profile.ts';
import type { ApiResult, CloneTimes, PushFleetResult, RepoLayout, StormResult } from './e2e.ts';
import type { FairnessResult } from './fairness.ts';
import type { FleetResult, ProbeResult } from './fleet.ts';
import type { LoadResult, Transport } from './load-client.ts';
import type { Mode } from './modes.ts';
import type { PushBreakdown } from './server-metrics.ts';
import type { GeneratedRepo } from './workload.ts';
import { fmtMs, log, type RssStats } from './util.ts';

export interface RssResult extends RssStats {
  readonly load: LoadResult;
}

export interface Results {
  started: Date;
  durationMs: number;
  mode: Mode;
  concurrency: number;
  transport: Transport;
  /** What ran as Grove: the built package or the clone's sources. */
  groveBuild: 'package' | 'source';
  /** Where the harness's git clients keep their checkouts. */
  clientDir: string;
  peerAvailable: boolean;
  /** Grove's memory right after start, before any workload: its node process (RSS) and its tree (PSS). */
  groveIdleRss: number;
  groveIdlePss: number;
  busyBeforePercent: number;
  peerMessage: string;
  peerFcgiChildren: number;
  machine: Record<string, string>;
  repo: GeneratedRepo | null;
  initialPushMs: number | null;
  mirrorMs: number | null;
  layoutInitial: Map<string, RepoLayout>;
  layoutPrepared: Map<string, RepoLayout>;
  load: Map<string, LoadResult>;
  /** By side, and `grove-many` for the bigger Grove-only run. */
  rss: Map<string, RssResult>;
  clone: Map<string, CloneTimes> | null;
  agents: Map<string, PushFleetResult>;
  storm: Map<string, StormResult>;
  fleet: Map<string, FleetResult>;
  fairness: FairnessResult | null;
  /** Latency of other requests while each side's fleet ran. */
  probes: Map<string, ProbeResult[]>;
  /** Grove's push phases during the agents, storm and fleet workloads. */
  pushBreakdowns: Map<string, PushBreakdown>;
  api: ApiResult | null;
  cpuProfile: CpuInfo | null;
  problems: string[];
  groveLogTail: string;
  groveExit: string;
}

export function emptyResults(mode: Mode, concurrency: number, transport: Transport, groveBuild: Results['groveBuild'], peerMessage: string): Results {
  return {
    started: new Date(),
    durationMs: 0,
    mode,
    concurrency,
    transport,
    groveBuild,
    clientDir: 'the temp dir',
    peerAvailable: false,
    groveIdleRss: 0,
    groveIdlePss: 0,
    busyBeforePercent: Number.NaN,
    peerMessage,
    peerFcgiChildren: 0,
    machine: {},
    repo: null,
    initialPushMs: null,
    mirrorMs: null,
    layoutInitial: new Map(),
    layoutPrepared: new Map(),
    load: new Map(),
    rss: new Map(),
    clone: null,
    agents: new Map(),
    storm: new Map(),
    fleet: new Map(),
    fairness: null,
    probes: new Map(),
    pushBreakdowns: new Map(),
    api: null,
    cpuProfile: null,
    problems: [],
    groveLogTail: '',
    groveExit: '',
  };
}

export const key = (side: string, what: string): string => `${side}:${what}`;

/** Runs one named stage: logs it, times it, and turns a failure into a reported problem. */
export async function stage<T>(results: Results, name: string, fn: () => Promise<T>): Promise<T | null> {
  log(`== ${name}`);
  const started = performance.now();
  try {
    const value = await fn();
    log(`   ${name}: done in ${fmtMs(performance.now() - started)}`);
    return value;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    results.problems.push(`${name}: ${message.split('\n').slice(0, 6).join(' / ')}`);
    log(`   ${name}: FAILED: ${message}`);
    return null;
  }
}
