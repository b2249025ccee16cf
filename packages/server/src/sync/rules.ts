/**
 * An upstream's ref rules (docs/remote-sync.md, "Rules"): an ordered list, the first rule
 * whose glob matches a ref decides how that ref syncs. Globs follow auth/glob.ts over the
 * full ref name (`refs/heads/agent/**`, `refs/tags/*`). Pure.
 */
import { compileBranchGlob } from '../auth/glob.ts';
import { checkRefFormat } from '../git/ref-name.ts';

export type SyncDirection = 'pull' | 'push' | 'both';
/** What a sync does with a ref both sides changed (or a tag that moved). */
export type OnDivergence = 'skip' | 'overwrite' | 'keep';
export type Deletions = 'ignore' | 'propagate';

export interface SyncRule {
  readonly refs: string;
  readonly direction: SyncDirection;
  readonly onDivergence: OnDivergence;
  readonly deletions: Deletions;
}

const MAX_RULES = 50;
const DIRECTIONS: readonly SyncDirection[] = ['pull', 'push', 'both'];
const DIVERGENCE: readonly OnDivergence[] = ['skip', 'overwrite', 'keep'];
const DELETIONS: readonly Deletions[] = ['ignore', 'propagate'];

/** Where `keep` publishes the upstream's tip of a diverged branch: `refs/heads/upstream/<branch>`. */
export const KEEP_PREFIX = 'refs/heads/upstream/';
/** Grove's own refs (tracking, backups): never synced, never written by clients. */
export const HIDDEN_PREFIX = 'refs/grove/';

/** Without rules: every branch and tag pulled, fast-forward only, deletions ignored, divergence reported. */
export const DEFAULT_RULES: readonly SyncRule[] = [
  { refs: 'refs/heads/**', direction: 'pull', onDivergence: 'skip', deletions: 'ignore' },
  { refs: 'refs/tags/**', direction: 'pull', onDivergence: 'skip', deletions: 'ignore' },
];

/** A read-only mirror follows the remote exactly; what it overwrites is kept as a backup ref. */
export const MIRROR_RULES: readonly SyncRule[] = [
  { refs: 'refs/heads/**', direction: 'pull', onDivergence: 'overwrite', deletions: 'propagate' },
  { refs: 'refs/tags/**', direction: 'pull', onDivergence: 'overwrite', deletions: 'propagate' },
];

export function parseSyncRules(value: unknown): { rules: SyncRule[] } | { error: string } {
  if (!Array.isArray(value)) return { error: 'rules must be an array' };
  if (value.length === 0) return { error: 'rules must not be empty (omit them for the defaults)' };
  if (value.length > MAX_RULES) return { error: `at most ${MAX_RULES} rules` };
  const rules: SyncRule[] = [];
  for (const [index, item] of value.entries()) {
    const where = `rules[${index}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return { error: `${where} must be an object` };
    const { refs, direction, onDivergence = 'skip', deletions = 'ignore', ...rest } = item as Record<string, unknown>;
    const unknown = Object.keys(rest)[0];
    if (unknown !== undefined) return { error: `${where} has unknown field ${JSON.stringify(unknown)}` };
    const problem = checkRefGlob(refs);
    if (problem !== null) return { error: `${where}.refs: ${problem}` };
    if (!DIRECTIONS.includes(direction as SyncDirection)) return { error: `${where}.direction must be one of ${DIRECTIONS.join(', ')}` };
    if (!DIVERGENCE.includes(onDivergence as OnDivergence)) return { error: `${where}.onDivergence must be one of ${DIVERGENCE.join(', ')}` };
    if (!DELETIONS.includes(deletions as Deletions)) return { error: `${where}.deletions must be one of ${DELETIONS.join(', ')}` };
    if (onDivergence === 'keep' && !(refs as string).startsWith('refs/heads/')) return { error: `${where}: onDivergence "keep" applies to branches only` };
    if (onDivergence === 'keep' && direction === 'push') return { error: `${where}: onDivergence "keep" publishes the upstream's tip, which a push rule never fetches into a branch` };
    rules.push({ refs: refs as string, direction: direction as SyncDirection, onDivergence: onDivergence as OnDivergence, deletions: deletions as Deletions });
  }
  return { rules };
}

function checkRefGlob(value: unknown): string | null {
  if (typeof value !== 'string' || value === '') return 'must be a non-empty string';
  if (value.length > 255) return 'must be at most 255 characters';
  if (!value.startsWith('refs/heads/') && !value.startsWith('refs/tags/')) return 'must start with refs/heads/ or refs/tags/';
  if (/\*{3,}/.test(value)) return 'may not contain ***';
  const reason = checkRefFormat(value.replace(/\*\*|\*|\?/g, 'x'));
  return reason === null ? null : `${JSON.stringify(value)} is not a valid ref pattern: ${reason}`;
}

/** The rule that decides `ref`, or null: no rule matches (outcome `filtered`). Hidden and keep refs never sync. */
export function ruleFor(rules: readonly SyncRule[], ref: string): SyncRule | null {
  if (ref.startsWith(HIDDEN_PREFIX) || ref.startsWith(KEEP_PREFIX)) return null;
  return rules.find((rule) => compileBranchGlob(rule.refs).test(ref)) ?? null;
}

export function pulls(rule: SyncRule | null): boolean {
  return rule !== null && rule.direction !== 'push';
}

export function pushes(rule: SyncRule | null): boolean {
  return rule !== null && rule.direction !== 'pull';
}

/** Tracking ref of `ref` for upstream `upstreamId`: the last value both sides agreed on. */
export function trackingRef(upstreamId: string, ref: string): string {
  return `${HIDDEN_PREFIX}upstreams/${upstreamId}/${ref.slice('refs/'.length)}`;
}

/** The prefix of an upstream's tracking refs. */
export function trackingPrefix(upstreamId: string): string {
  return `${HIDDEN_PREFIX}upstreams/${upstreamId}/`;
}

/** Where a sync keeps a tip it overwrote, so no commit becomes unreachable (`side`: whose tip). */
export function backupRef(upstreamId: string, runId: string, side: 'grove' | 'remote', ref: string): string {
  return `${HIDDEN_PREFIX}backups/${upstreamId}/${runId}/${side}/${ref.slice('refs/'.length)}`;
}

export function keepRef(ref: string): string {
  return `${KEEP_PREFIX}${ref.slice('refs/heads/'.length)}`;
}
