/**
 * Cluster-wide jobs that exactly one node should run at a time (webhook delivery, the
 * sweeper): a row per job in `leases` names its holder and when the hold expires. A node
 * takes a free or expired lease, renews it well before it expires, and gives it up when it
 * stops; a node that dies loses it at expiry and another node takes over. A holder that
 * cannot renew in time (a long pause) stops the job before its lease can have passed on.
 *
 * Embedded mode has one node: `SoleNodeLeases` always holds every lease.
 */

import type { Db } from '../db/database.ts';

export interface Leases {
  /** Whether this node holds `name` now (taking or renewing it as needed). */
  hold(name: string): Promise<boolean>;
  /** Gives up one lease, if this node holds it (a job that is done: another node may take it at once). */
  release(name: string): Promise<void>;
  /** Gives up every lease this node holds (shutdown). */
  releaseAll(): Promise<void>;
}

export class SoleNodeLeases implements Leases {
  async hold(): Promise<boolean> {
    return true;
  }
  async release(): Promise<void> {}
  async releaseAll(): Promise<void> {}
}

/** How long a lease lasts unless renewed, and how early it is renewed. */
export const LEASE_MS = 15_000;
const RENEW_AFTER_MS = LEASE_MS / 3;

export class DatabaseLeases implements Leases {
  readonly #db: Db;
  readonly #owner: string;
  /** Until when this node knows it holds each lease (its own clock, started before asking). */
  readonly #heldUntil = new Map<string, number>();

  constructor(db: Db, owner: string) {
    this.#db = db;
    this.#owner = owner;
  }

  async hold(name: string): Promise<boolean> {
    const now = Date.now();
    const until = this.#heldUntil.get(name) ?? 0;
    if (until - now > LEASE_MS - RENEW_AFTER_MS) return true;
    const expires = new Date(now + LEASE_MS).toISOString();
    // Take it if free, expired or already ours; otherwise nothing changes.
    const taken = await this.#db
      .insertInto('leases')
      .values({ name, owner: this.#owner, expires_at: expires })
      .onConflict((oc) =>
        oc.column('name').doUpdateSet({ owner: this.#owner, expires_at: expires }).where((eb) =>
          eb.or([eb('leases.owner', '=', this.#owner), eb('leases.expires_at', '<', new Date(now).toISOString())])),
      )
      .returning('owner')
      .executeTakeFirst()
      .catch(() => undefined); // the database is down: not held
    if (taken?.owner === this.#owner) {
      this.#heldUntil.set(name, now + LEASE_MS);
      return true;
    }
    this.#heldUntil.delete(name);
    return false;
  }

  async release(name: string): Promise<void> {
    if (!this.#heldUntil.delete(name)) return;
    await this.#db.deleteFrom('leases').where('name', '=', name).where('owner', '=', this.#owner).execute().catch(() => undefined); // expires anyway
  }

  async releaseAll(): Promise<void> {
    const names = [...this.#heldUntil.keys()];
    this.#heldUntil.clear();
    if (names.length === 0) return;
    await this.#db.deleteFrom('leases').where('name', 'in', names).where('owner', '=', this.#owner).execute().catch(() => undefined);
  }
}

