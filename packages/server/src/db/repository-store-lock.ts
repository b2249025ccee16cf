/**
 * One node per PostgreSQL database while repositories live on the node's own disk.
 *
 * With GROVE_DATABASE_URL set, metadata lives in PostgreSQL but each repository's objects and
 * refs are still in <data>/repos of the node that serves it. A second node on the same
 * database would see every repository row and none of the repositories (or, worse, accept
 * pushes into a copy the first node never sees). So a node holds a session advisory lock for
 * as long as it runs, and a second one refuses to start, naming the holder. The lock is a
 * session lock on a connection of its own (not the pool's): it lasts exactly as long as that
 * connection, so a node that dies frees it with its connection.
 */
import pg from 'pg';
import { ADVISORY_LOCKS, LOCK_NAMESPACE } from './dialect.ts';

export class RepositoryStoreLockedError extends Error {
  constructor(holder: string | null) {
    super(
      `another Grove node${holder === null ? '' : ` (${holder})`} is serving this PostgreSQL database. ` +
        'Repositories are stored on the node that serves them, so only one node may use a database; ' +
        'stop the other node, or give this one its own database',
    );
    this.name = 'RepositoryStoreLockedError';
  }
}

export class RepositoryStoreLock {
  readonly #url: string;
  readonly #applicationName: string;
  readonly #onLost: (error: Error) => void;
  #client: pg.Client | null = null;
  #closed = false;

  private constructor(url: string, applicationName: string, onLost: (error: Error) => void) {
    this.#url = url;
    this.#applicationName = applicationName;
    this.#onLost = onLost;
  }

  /**
   * Takes the lock or throws RepositoryStoreLockedError. `onLost` is called if the lock's
   * connection drops and the lock cannot be taken back (another node took it meanwhile).
   */
  static async take(url: string, applicationName: string, onLost: (error: Error) => void): Promise<RepositoryStoreLock> {
    const lock = new RepositoryStoreLock(url, applicationName, onLost);
    await lock.#acquire();
    return lock;
  }

  async #acquire(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url, application_name: this.#applicationName, connectionTimeoutMillis: 10_000 });
    client.on('error', () => undefined);
    await client.connect().catch((error: unknown) => {
      const { hostname, port } = new URL(this.#url);
      throw new Error(`cannot reach PostgreSQL at ${hostname}:${port || 5432} (${(error as Error).message}); check GROVE_DATABASE_URL`, { cause: error });
    });
    const taken = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1, $2) as locked', [LOCK_NAMESPACE, ADVISORY_LOCKS.repositoryStore]);
    if (taken.rows[0]?.locked !== true) {
      const holder = await client
        .query<{ name: string }>(
          `select a.application_name as name from pg_locks l join pg_stat_activity a on a.pid = l.pid
            where l.locktype = 'advisory' and l.classid = $1 and l.objid = $2 and l.granted limit 1`,
          [LOCK_NAMESPACE, ADVISORY_LOCKS.repositoryStore],
        )
        .then((r) => r.rows[0]?.name ?? null, () => null);
      await client.end().catch(() => undefined);
      throw new RepositoryStoreLockedError(holder);
    }
    client.once('end', () => void this.#reacquire());
    this.#client = client;
  }

  /** The connection dropped (a database restart frees the lock with it): take it back, or give up. */
  async #reacquire(): Promise<void> {
    this.#client = null;
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        await this.#acquire();
        return;
      } catch (error) {
        if (error instanceof RepositoryStoreLockedError) return this.#onLost(error);
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 200 * 2 ** attempt)).unref());
      }
    }
  }

  async release(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = null;
    client?.removeAllListeners('end');
    await client?.end().catch(() => undefined);
  }
}
