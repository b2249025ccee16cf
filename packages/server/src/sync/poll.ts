/**
 * What a poll decides from one `ls-remote` (docs/remote-sync.md, "Triggers"): whether a run is
 * needed, and a digest of everything that decision looked at. A ref a pull rule covers needs a
 * pull when the remote differs from its tracking ref; a ref a push rule covers needs a push
 * when Grove or the remote differs from it. A poll whose digest equals the one recorded after
 * the last run it caused has nothing new to offer — a divergence nobody resolved yet stays
 * reported by that run instead of making a run every interval. Pure.
 */
import { createHash } from 'node:crypto';
import { pulls, pushes, ruleFor, type SyncDirection, type SyncRule } from './rules.ts';

export interface PollDecision {
  readonly direction: SyncDirection | null;
  readonly digest: string;
}

export function pollDecision(rules: readonly SyncRule[], remote: ReadonlyMap<string, string>, tracking: ReadonlyMap<string, string>, grove: ReadonlyMap<string, string>): PollDecision {
  let pull = false;
  let push = false;
  const digest = createHash('sha256');
  for (const ref of [...new Set([...remote.keys(), ...tracking.keys(), ...grove.keys()])].sort()) {
    const rule = ruleFor(rules, ref);
    if (rule === null) continue;
    digest.update(`${ref}\0${remote.get(ref) ?? ''}\0${tracking.get(ref) ?? ''}\0${grove.get(ref) ?? ''}\n`);
    if (pulls(rule) && remote.get(ref) !== tracking.get(ref)) pull = true;
    // A pushed ref differs from the last agreement (a push-forward lost to a stop is re-queued here).
    if (pushes(rule) && (grove.get(ref) !== tracking.get(ref) || remote.get(ref) !== tracking.get(ref))) push = true;
  }
  return { direction: pull && push ? 'both' : pull ? 'pull' : push ? 'push' : null, digest: digest.digest('hex') };
}
