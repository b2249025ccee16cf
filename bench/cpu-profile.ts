/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`, a .cpuprofile JSON): the functions that
 * spent the most time themselves (self time), with their file, so the benchmark's details
 * say what Grove's own process was busy with.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export interface HotFunction {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  readonly share: number;
}

export interface CpuInfo {
  readonly totalMs: number;
  /** Time the process was idle (V8's "(idle)" node). */
  readonly idleMs: number;
  readonly top: readonly HotFunction[];
}

export async function summarizeProfile(file: string, projectRoot: string, limit = 20): Promise<CpuInfo> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // A sample's time is the gap to the next one.
  for (let i = 0; i < samples.length; i++) {
    const ms = (deltas[i + 1] ?? 0) / 1000;
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + ms);
  }
  const grouped = new Map<string, HotFunction>();
  let idleMs = 0;
  let totalMs = 0;
  for (const [id, ms] of self) {
    const node = byId.get(id);
    if (!node) continue;
    totalMs += ms;
    const name = node.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') {
      idleMs += ms;
      continue;
    }
    const url = node.callFrame.url.replace(/^file:\/\//, '');
    const where = url ? `${url.startsWith(projectRoot) ? path.relative(projectRoot, url) : url.replace(/^.*node_modules\//, 'node_modules/')}:${node.callFrame.lineNumber + 1}` : '(native)';
    const key = `${name}@${where}`;
    const entry = grouped.get(key);
    grouped.set(key, { name, where, selfMs: (entry?.selfMs ?? 0) + ms, share: 0 });
  }
  const busy = totalMs - idleMs;
  const top = [...grouped.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, limit).map((f) => ({ ...f, share: busy > 0 ? f.selfMs / busy : 0 }));
  return { totalMs, idleMs, top };
}
