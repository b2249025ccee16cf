/**
 * Grove's own account of a workload, from its Prometheus endpoint: samples before and after,
 * and what changed — where each push's time went (grove_git_push_phase_seconds), how many git
 * processes of each kind a push cost and how long they took to start, how many ref
 * transactions the pushes shared.
 */
import { httpRequest } from './servers.ts';

export type Samples = ReadonlyMap<string, number>;

/** Parses the text exposition format: `name{labels} value` per line (comments skipped). */
export function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match) samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

export async function scrape(baseUrl: string): Promise<Samples> {
  const answer = await httpRequest(undefined, `${baseUrl}/metrics`, { timeoutMs: 10_000 });
  if (answer.status !== 200) throw new Error(`GET /metrics: HTTP ${answer.status}`);
  return parseExposition(answer.body);
}

export const PUSH_PHASES = ['parse', 'receive', 'objects', 'migrate', 'refs', 'report'] as const;

export interface PushBreakdown {
  readonly pushes: number;
  /** Mean server time per push, request to report. */
  readonly meanMs: number;
  /** Mean time per push in each phase. */
  readonly phasesMs: Readonly<Record<(typeof PUSH_PHASES)[number], number>>;
  /** git processes started per push, by command, and their mean start time. */
  readonly processes: readonly { command: string; perPush: number; startMs: number }[];
  /** Pushes per update-ref transaction (group commit). */
  readonly pushesPerTransaction: number;
}

export function pushBreakdown(before: Samples, after: Samples): PushBreakdown {
  const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
  const pushes = delta('grove_git_push_seconds_count');
  const per = (value: number) => (pushes > 0 ? value / pushes : Number.NaN);
  const phasesMs = Object.fromEntries(PUSH_PHASES.map((p) => [p, per(delta(`grove_git_push_phase_seconds_sum{phase="${p}"}`) * 1000)])) as PushBreakdown['phasesMs'];
  const processes: { command: string; perPush: number; startMs: number }[] = [];
  for (const name of after.keys()) {
    const match = /^grove_git_processes_started\{command="([^"]+)"\}$/.exec(name);
    if (!match) continue;
    const count = delta(name);
    if (count <= 0) continue;
    processes.push({ command: match[1]!, perPush: per(count), startMs: (delta(`grove_git_process_start_seconds{command="${match[1]}"}`) * 1000) / count });
  }
  processes.sort((a, b) => b.perPush - a.perPush);
  const transactions = delta('grove_ref_transactions');
  return {
    pushes,
    meanMs: per(delta('grove_git_push_seconds_sum') * 1000),
    phasesMs,
    processes,
    pushesPerTransaction: transactions > 0 ? pushes / transactions : Number.NaN,
  };
}
