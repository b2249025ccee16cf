/** Domain events: what changed, in which org and repo, by whom. */
import type { Principal } from '../auth/principal.ts';

export const EVENT_TYPES = [
  'push',
  'branch.created',
  'branch.deleted',
  'tag.created',
  'tag.deleted',
  'commit.created',
  'merge.completed',
  'repo.created',
  'repo.deleted',
  'org.created',
  'org.deleted',
  'key.created',
  'key.revoked',
  'token.revoked',
  'webhook.created',
  'webhook.updated',
  'webhook.deleted',
  'policy.updated',
  'credential.created',
  'credential.rotated',
  'credential.deleted',
  'upstream.created',
  'upstream.updated',
  'upstream.deleted',
  'upstream.paused',
  'upstream.resumed',
  'sync.completed',
  'sync.failed',
  'repo.import.completed',
  'repo.import.failed',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface Actor {
  /** `sync`: a remote sync run of the upstream `id` (docs/remote-sync.md). */
  readonly kind: 'root' | 'key' | 'signed' | 'system' | 'sync';
  readonly id: string | null;
  readonly name: string | null;
}

export interface NewEvent {
  readonly type: EventType;
  readonly org: string;
  readonly repo: string | null;
  readonly repoId?: string | null;
  readonly actor: Actor;
  readonly payload: Record<string, unknown>;
}

export interface StoredEvent {
  /** Monotonic; also the SSE event id and Last-Event-ID. */
  readonly id: number;
  readonly type: EventType;
  readonly time: string;
  readonly org: string;
  readonly repo: string | null;
  readonly actor: Actor;
  readonly payload: Record<string, unknown>;
}

export function actorOf(principal: Principal | null): Actor {
  if (principal === null) return { kind: 'system', id: null, name: 'grove' };
  switch (principal.kind) {
    case 'root':
      return { kind: 'root', id: null, name: 'root' };
    case 'key':
      return { kind: 'key', id: principal.id, name: principal.name };
    case 'signed':
      return { kind: 'signed', id: principal.id, name: `signed token of ${principal.org}` };
  }
}

/** The ref-level events a set of applied ref changes implies (created/deleted branches and tags). */
export function refLifecycleEvents(base: Omit<NewEvent, 'type' | 'payload'>, changes: readonly { ref: string; before: string | null; after: string | null }[]): NewEvent[] {
  const events: NewEvent[] = [];
  for (const change of changes) {
    const kind = change.ref.startsWith('refs/heads/') ? 'branch' : change.ref.startsWith('refs/tags/') ? 'tag' : null;
    if (kind === null || (change.before !== null && change.after !== null)) continue;
    const name = change.ref.slice(kind === 'branch' ? 11 : 10);
    events.push({ ...base, type: `${kind}.${change.after === null ? 'deleted' : 'created'}`, payload: { name, ref: change.ref, sha: change.after ?? change.before } });
  }
  return events;
}
