/** The result table: rows, ratios, targets, and its text and Markdown renderings. */

export type Better = 'higher' | 'lower';

export interface Row {
  readonly workload: string;
  /** Measured values (null when not measured). */
  readonly grove: number | null;
  readonly peer: number | null;
  readonly unit: string;
  readonly better: Better;
  /** Cell texts when the plain number is not enough (e.g. "812 ms, 0 failed"). */
  readonly groveText?: string;
  readonly peerText?: string;
  /** Computes the Grove:peer ratio from grove/peer (default), or none. */
  readonly noRatio?: boolean;
  readonly target?: Target;
}

export interface Target {
  /** As written in issue 5. */
  readonly text: string;
  /** Decides met / not met from the row; null = not measured. */
  readonly check: (row: Row, ratio: number | null) => boolean | null;
  /** What the target is judged on: the Grove:peer ratio (default) or Grove's own value. */
  readonly on?: 'ratio' | 'grove';
}

export function ratioOf(row: Row): number | null {
  if (row.noRatio || row.grove === null || row.peer === null) return null;
  if (!Number.isFinite(row.grove) || !Number.isFinite(row.peer) || row.peer === 0) return null;
  return row.grove / row.peer;
}

export function verdict(row: Row): 'met' | 'not met' | 'not measured' | '' {
  if (!row.target) return '';
  const result = row.target.check(row, ratioOf(row));
  return result === null ? 'not measured' : result ? 'met' : 'not met';
}

function fmtValue(value: number | null, unit: string): string {
  if (value === null || !Number.isFinite(value)) return 'n/a';
  let text: string;
  if (unit === 'x') text = value.toFixed(2);
  else if (Math.abs(value) >= 1000) text = Math.round(value).toLocaleString('en-US');
  else if (Math.abs(value) >= 100) text = value.toFixed(0);
  else if (Math.abs(value) >= 10) text = value.toFixed(1);
  else text = value.toFixed(2);
  return unit === 'x' ? `${text}x` : `${text} ${unit}`;
}

export function fmtRatio(ratio: number | null): string {
  if (ratio === null) return '—';
  if (ratio >= 100) return `${ratio.toFixed(0)}x`;
  if (ratio >= 10) return `${ratio.toFixed(1)}x`;
  return `${ratio.toFixed(2)}x`;
}

export interface Cells {
  readonly workload: string;
  readonly grove: string;
  readonly peer: string;
  readonly ratio: string;
  readonly better: string;
  readonly target: string;
  readonly verdict: string;
}

export function cells(row: Row, peerAvailable: boolean): Cells {
  const v = verdict(row);
  return {
    workload: row.workload,
    grove: row.groveText ?? fmtValue(row.grove, row.unit),
    peer: row.peerText ?? (row.peer === null && !peerAvailable ? 'unavailable' : row.peer === null ? '—' : fmtValue(row.peer, row.unit)),
    ratio: fmtRatio(ratioOf(row)),
    better: row.noRatio ? `${row.better} (value)` : row.better,
    target: row.target?.text ?? '',
    verdict: v,
  };
}

const HEADERS: Cells = { workload: 'workload', grove: 'Grove', peer: 'peer (http-backend)', ratio: 'ratio G:P', better: 'better is', target: 'target', verdict: 'met?' };
const KEYS: (keyof Cells)[] = ['workload', 'grove', 'peer', 'ratio', 'better', 'target', 'verdict'];

export function textTable(rows: readonly Row[], peerAvailable: boolean): string {
  const all = [HEADERS, ...rows.map((r) => cells(r, peerAvailable))];
  const widths = KEYS.map((k) => Math.max(...all.map((c) => c[k].length)));
  const line = (c: Cells): string => KEYS.map((k, i) => (k === 'workload' || k === 'target' || k === 'verdict' || k === 'better' ? c[k].padEnd(widths[i]!) : c[k].padStart(widths[i]!))).join('  ').trimEnd();
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(HEADERS), sep, ...all.slice(1).map(line)].join('\n');
}

function md(text: string): string {
  return text.replace(/\|/g, '\\|');
}

export function markdownTable(rows: readonly Row[], peerAvailable: boolean): string {
  const out = [
    `| ${KEYS.map((k) => HEADERS[k]).join(' | ')} |`,
    `|${KEYS.map((k) => (k === 'grove' || k === 'peer' || k === 'ratio' ? '---:' : '---')).join('|')}|`,
  ];
  for (const row of rows) {
    const c = cells(row, peerAvailable);
    out.push(`| ${KEYS.map((k) => md(k === 'verdict' && c.verdict ? (c.verdict === 'met' ? 'met' : `**${c.verdict}**`) : c[k])).join(' | ')} |`);
  }
  return out.join('\n');
}
