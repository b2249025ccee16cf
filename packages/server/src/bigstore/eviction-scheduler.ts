/**
 * Stored once (docs/large-files.md): when the chunk store has durably taken big blobs of a
 * repository, they are linked to every repository that borrows its objects (forks, forks of
 * forks: they read the blobs through its object directory today, from the store once the
 * blobs are gone), then evicted from its git by the maintenance queue. Embedded mode only:
 * a cluster node's chunk store is its own, so there git stays complete.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Db } from '../db/database.ts';
import { findBorrowers } from '../db/repos.ts';
import type { Maintenance } from '../repo/maintenance.ts';
import type { Bigstore } from './bigstore.ts';
import type { GitRunner } from '../repo/git-command.ts';

/** What a server's eviction of big blobs offers its callers: one node's (here) or a cluster's (cluster/cluster-evictions.ts). */
export interface BigBlobEvictions {
  /** Resolves once every blob stored so far has been evicted (tests). */
  idle(): Promise<void>;
}

export class EvictionScheduler implements BigBlobEvictions {
  readonly #db: Db;
  readonly #bigstore: Bigstore;
  readonly #maintenance: Maintenance;
  readonly #pending = new Set<Promise<void>>();

  readonly #git: GitRunner;
  readonly #gitDirOf: (repoId: string) => string;

  constructor(db: Db, bigstore: Bigstore, maintenance: Maintenance, git: GitRunner, gitDirOf: (repoId: string) => string, logger: Pick<Logger, 'warn'>) {
    this.#db = db;
    this.#bigstore = bigstore;
    this.#maintenance = maintenance;
    this.#git = git;
    this.#gitDirOf = gitDirOf;
    bigstore.onHeld((repoId, gitDir, oids) => {
      const scheduled = this.#schedule(repoId, gitDir, oids).catch((error: unknown) => logger.warn({ err: error, repoId }, 'big blobs could not be scheduled for eviction'));
      this.#pending.add(scheduled);
      void scheduled.finally(() => this.#pending.delete(scheduled));
    });
  }

  async #schedule(repoId: string, gitDir: string, oids: readonly string[]): Promise<void> {
    const borrowers: string[] = [];
    for (let level = [repoId]; level.length > 0; ) {
      level = (await Promise.all(level.map((id) => findBorrowers(this.#db, id)))).flat().map((row) => row.id);
      borrowers.push(...level);
    }
    await this.#bigstore.linkTo(borrowers, oids);
    this.#maintenance.scheduleEviction(gitDir, oids, (oid) => this.#bigstore.heldFor(repoId, oid) !== null);
  }

  /**
   * After a restart: blobs the store holds that git still has (the server stopped between an
   * ingest and its eviction) are evicted now, one repository at a time, in the background.
   */
  async resume(): Promise<number> {
    let scheduled = 0;
    for (const repoId of this.#bigstore.linkedRepositories()) {
      const gitDir = this.#gitDirOf(repoId);
      // A fork reaches its source's blobs through alternates: asking git would name those too.
      if (await access(path.join(gitDir, 'objects', 'info', 'alternates')).then(() => true, () => false)) continue;
      const oids = this.#bigstore.linkedBlobs(repoId);
      const result = await this.#git.run(['cat-file', '--batch-check=%(objectname) %(objecttype)'], { gitDir, input: `${oids.join('\n')}\n` });
      if (result.code !== 0) continue; // a repository deleted meanwhile
      const present = result.stdout.toString('utf8').split('\n').filter((line) => line.endsWith(' blob')).map((line) => line.split(' ')[0]!);
      if (present.length === 0) continue;
      this.#bigstore.heldAgain(repoId, gitDir, present);
      scheduled += present.length;
    }
    return scheduled;
  }

  /** Resolves once every ingest asked for so far has been stored and evicted (tests). */
  async idle(): Promise<void> {
    do {
      await this.#bigstore.idle();
      await Promise.all(this.#pending);
      await this.#maintenance.idle();
    } while (this.#pending.size > 0);
  }
}
