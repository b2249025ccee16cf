/**
 * Fair share instead of rate limits: work that runs git (git transfers, the repository API)
 * takes a slot of its credential and a slot of its org. A credential may run `perKey` at once
 * and queue `queuedPerKey` more; an org `perOrg` and `queuedPerOrg`. Within the limits
 * nothing is refused — a burst waits its turn (FIFO within an org, skipping waiters whose own
 * key is at its limit) — and one runaway key fills only its own queue, so the rest of the
 * fleet keeps its slots. Over a queue limit, or after waiting `queueTimeoutMs`, the request
 * is refused with a retryable FairShareRefusal (REST 429, git an ERR line).
 *
 * A signed token counts against its signing key (a fleet minting one token per agent shares
 * the key's share), the root token against "root".
 */
import type { Principal } from '../auth/principal.ts';

export interface FairShareLimits {
  readonly perKey: number;
  readonly queuedPerKey: number;
  readonly perOrg: number;
  readonly queuedPerOrg: number;
  readonly queueTimeoutMs: number;
}

export class FairShareRefusal extends Error {
  override name = 'FairShareRefusal';
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Whose share a request takes. Pure. */
export function shareKey(principal: Principal): string {
  switch (principal.kind) {
    case 'root':
      return 'root';
    case 'key':
      return principal.id;
    case 'signed':
      return `signing-key:${principal.signingKeyId}`;
  }
}

interface Counts {
  running: number;
  queued: number;
}

interface Waiter {
  readonly key: string;
  readonly grant: () => void;
  timer: NodeJS.Timeout | undefined;
}

export class FairShare {
  readonly #limits: FairShareLimits;
  readonly #keys = new Map<string, Counts>();
  readonly #orgs = new Map<string, Counts>();
  readonly #waiting = new Map<string, Waiter[]>();

  readonly #onRefused: (key: string, org: string) => void;

  /** `onRefused` counts refusals (metrics); entries of idle credentials and orgs are dropped. */
  constructor(limits: FairShareLimits, onRefused: (key: string, org: string) => void = () => {}) {
    this.#limits = limits;
    this.#onRefused = onRefused;
  }

  /** Takes a slot for `key` in `org` (waiting if need be); the returned function gives it back, once. */
  async enter(key: string, org: string): Promise<() => void> {
    const keyCounts = counts(this.#keys, key);
    const orgCounts = counts(this.#orgs, org);
    if (keyCounts.running < this.#limits.perKey && orgCounts.running < this.#limits.perOrg) {
      keyCounts.running++;
      orgCounts.running++;
    } else {
      if (keyCounts.queued >= this.#limits.queuedPerKey || orgCounts.queued >= this.#limits.queuedPerOrg) {
        this.#onRefused(key, org);
        this.#forgetIdle(key, org);
        const whose = keyCounts.queued >= this.#limits.queuedPerKey ? 'this credential' : `org ${org}`;
        throw new FairShareRefusal(`too many concurrent requests for ${whose} (${this.#limits.perKey} running and ${this.#limits.queuedPerKey} queued per credential, ${this.#limits.perOrg} and ${this.#limits.queuedPerOrg} per org); retry shortly`, 1);
      }
      await this.#wait(key, org, keyCounts, orgCounts);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      keyCounts.running--;
      orgCounts.running--;
      this.#admitWaiters(org);
      // A key spanning orgs may wait in another org for the slot it just gave back.
      if (keyCounts.queued > 0) for (const other of this.#waiting.keys()) if (other !== org) this.#admitWaiters(other);
      this.#forgetIdle(key, org);
    };
  }

  /** Running and queued counts by credential and by org, for /metrics (only those with activity). */
  snapshot(): { keys: ReadonlyMap<string, Readonly<Counts>>; orgs: ReadonlyMap<string, Readonly<Counts>> } {
    return { keys: this.#keys, orgs: this.#orgs };
  }

  #wait(key: string, org: string, keyCounts: Counts, orgCounts: Counts): Promise<void> {
    keyCounts.queued++;
    orgCounts.queued++;
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        key,
        grant: () => {
          clearTimeout(waiter.timer);
          keyCounts.queued--;
          orgCounts.queued--;
          keyCounts.running++;
          orgCounts.running++;
          resolve();
        },
        timer: undefined,
      };
      waiter.timer = setTimeout(() => {
        const list = this.#waiting.get(org) ?? [];
        const index = list.indexOf(waiter);
        if (index !== -1) list.splice(index, 1);
        keyCounts.queued--;
        orgCounts.queued--;
        this.#onRefused(key, org);
        this.#forgetIdle(key, org);
        reject(new FairShareRefusal(`waited ${this.#limits.queueTimeoutMs} ms for a turn of this credential; retry shortly`, 5));
      }, this.#limits.queueTimeoutMs);
      waiter.timer.unref(); // a waiting request is held by its connection, not by this timer
      let list = this.#waiting.get(org);
      if (list === undefined) this.#waiting.set(org, (list = []));
      list.push(waiter);
    });
  }

  /** Gives free slots of the org to the first waiters whose own key has room. */
  #admitWaiters(org: string): void {
    const list = this.#waiting.get(org);
    if (list === undefined) return;
    const orgCounts = counts(this.#orgs, org);
    for (let i = 0; i < list.length && orgCounts.running < this.#limits.perOrg; ) {
      const waiter = list[i]!;
      if (counts(this.#keys, waiter.key).running < this.#limits.perKey) {
        list.splice(i, 1);
        waiter.grant();
      } else {
        i++;
      }
    }
    if (list.length === 0) this.#waiting.delete(org);
  }

  #forgetIdle(key: string, org: string): void {
    const keyCounts = this.#keys.get(key);
    if (keyCounts && keyCounts.running === 0 && keyCounts.queued === 0) this.#keys.delete(key);
    const orgCounts = this.#orgs.get(org);
    if (orgCounts && orgCounts.running === 0 && orgCounts.queued === 0) this.#orgs.delete(org);
  }
}

function counts(map: Map<string, Counts>, name: string): Counts {
  let entry = map.get(name);
  if (entry === undefined) map.set(name, (entry = { running: 0, queued: 0 }));
  return entry;
}
