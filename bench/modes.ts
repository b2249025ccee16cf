/** The benchmark's modes (sizes of every workload) and its command-line options. */
import path from 'node:path';
import type { LoadOp, Transport } from './load-client.ts';

export interface Mode {
  readonly name: 'quick' | 'full';
  readonly commits: number;
  /** Per server and workload, split into `loadRounds` interleaved rounds. */
  readonly loadSeconds: Readonly<Record<LoadOp, number>>;
  readonly loadRounds: number;
  readonly loadRequests: Readonly<Record<LoadOp, number>>;
  readonly cloneSamples: number;
  readonly agents: number;
  readonly agentConcurrency: number;
  readonly stormPushes: number;
  readonly stormLanes: number;
  readonly fetchSamples: number;
  /** Concurrent clones whose memory is measured on both servers, and on Grove alone. */
  readonly rssClones: number;
  readonly rssClonesGrove: number;
  /** The fleet run: agents that each clone, commit and push, so many at once. */
  readonly fleetAgents: number;
  readonly fleetConcurrency: number;
  /** The fairness run: agents pushing (half alone, half beside a runaway key's clones). */
  readonly fairnessAgents: number;
  readonly fairnessClones: number;
  readonly creates: number;
  readonly orgRepos: number;
  readonly lists: number;
}

export const QUICK: Mode = {
  name: 'quick',
  commits: 2000,
  loadSeconds: { 'ls-refs': 5, 'info-refs': 5, 'shallow-fetch': 6, 'full-fetch': 8 },
  loadRequests: { 'ls-refs': 50_000, 'info-refs': 50_000, 'shallow-fetch': 20_000, 'full-fetch': 5_000 },
  loadRounds: 4,
  cloneSamples: 5,
  agents: 64,
  agentConcurrency: 16,
  stormPushes: 300,
  stormLanes: 4,
  fetchSamples: 5,
  rssClones: 200,
  rssClonesGrove: 1000,
  fleetAgents: 256,
  fleetConcurrency: 64,
  fairnessAgents: 64,
  fairnessClones: 500,
  creates: 200,
  orgRepos: 2000,
  lists: 200,
};

export const FULL: Mode = {
  name: 'full',
  commits: 5000,
  loadSeconds: { 'ls-refs': 15, 'info-refs': 15, 'shallow-fetch': 20, 'full-fetch': 30 },
  loadRequests: { 'ls-refs': 500_000, 'info-refs': 500_000, 'shallow-fetch': 100_000, 'full-fetch': 20_000 },
  loadRounds: 6,
  cloneSamples: 7,
  agents: 64,
  agentConcurrency: 16,
  stormPushes: 2000,
  stormLanes: 4,
  fetchSamples: 9,
  rssClones: 200,
  rssClonesGrove: 1000,
  fleetAgents: 256,
  fleetConcurrency: 64,
  fairnessAgents: 64,
  fairnessClones: 500,
  creates: 200,
  orgRepos: 10_000,
  lists: 200,
};

/** The workloads, in the order they run; `--only` picks some. */
export const STAGES = ['load', 'rss', 'clone', 'agents', 'storm', 'fleet', 'fairness', 'api'] as const;
export type Stage = (typeof STAGES)[number];

export interface Options {
  readonly mode: Mode;
  readonly concurrency: number;
  readonly transport: Transport;
  readonly ceiling: boolean;
  readonly peer: boolean;
  readonly write: boolean;
  readonly out: string;
  readonly stages: ReadonlySet<Stage>;
  /** Write a CPU profile of Grove over the whole run and summarize it in the details. */
  readonly cpuProfile: boolean;
  /** Run the clone's TypeScript sources (bin/grove.js) instead of the built package (packages/server/bin/grove.js). */
  readonly source: boolean;
}

export const USAGE = 'usage: node bench/run.ts [--quick|--full] [--only STAGE,...] [--cpu-prof] [--source] [--concurrency N] [--client raw|http] [--no-peer] [--no-ceiling] [--no-write] [--out FILE]\n'
  + `stages: ${STAGES.join(', ')}\n`;

export function parseArgs(argv: readonly string[], projectRoot: string): Options {
  let mode = QUICK;
  let concurrency = 8;
  let peer = true;
  let write = true;
  let transport: Transport = 'raw';
  let ceiling = true;
  let cpuProfile = false;
  let source = false;
  let stages: ReadonlySet<Stage> = new Set(STAGES);
  let out = path.join(projectRoot, 'docs', 'benchmarks.md');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') mode = QUICK;
    else if (arg === '--full') mode = FULL;
    else if (arg === '--no-peer') peer = false;
    else if (arg === '--no-ceiling') ceiling = false;
    else if (arg === '--cpu-prof') cpuProfile = true;
    else if (arg === '--source') source = true;
    else if (arg === '--client') {
      const value = argv[++i];
      if (value !== 'raw' && value !== 'http') throw new Error('--client must be raw or http');
      transport = value;
    } else if (arg === '--only') {
      const names = (argv[++i] ?? '').split(',').filter(Boolean);
      const unknown = names.filter((n) => !(STAGES as readonly string[]).includes(n));
      if (names.length === 0 || unknown.length > 0) throw new Error(`--only takes stages among ${STAGES.join(', ')}${unknown.length ? ` (not ${unknown.join(', ')})` : ''}`);
      stages = new Set(names as Stage[]);
    } else if (arg === '--no-write') write = false;
    else if (arg === '--concurrency') concurrency = Number(argv[++i]);
    else if (arg === '--out') out = path.resolve(argv[++i] ?? '');
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (see --help)`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new Error('--concurrency must be an integer in 1..256');
  // A partial run must not overwrite the full table.
  if (stages.size !== STAGES.length && write && !argv.includes('--out')) write = false;
  return { mode, concurrency, transport, ceiling, peer, write, out, stages, cpuProfile, source };
}
