/**
 * Free space of the data directory's filesystem, and what to do when it runs low. Below
 * the reserve (`GROVE_DISK_RESERVE_BYTES`), the optional writers — the pack cache and
 * background maintenance — pause and give space back, so the reserve is left for pushes,
 * API writes and the database. When space really runs out, an operation fails cleanly
 * (isOutOfSpace tells the callers' error paths) and nothing stays half-written.
 */
import { statfs } from 'node:fs/promises';

const CHECK_EVERY_MS = 500;

export class DiskSpace {
  readonly #dir: string;
  readonly reserveBytes: number;
  readonly #lowListeners: (() => void)[] = [];
  #checked = 0;
  #free = Number.POSITIVE_INFINITY;
  #checking: Promise<number> | null = null;

  constructor(dir: string, reserveBytes: number) {
    this.#dir = dir;
    this.reserveBytes = reserveBytes;
  }

  /** Bytes available to Grove (statfs `bavail`), measured at most every 500 ms. */
  async free(): Promise<number> {
    if (Date.now() - this.#checked < CHECK_EVERY_MS) return this.#free;
    this.#checking ??= statfs(this.#dir).then(
      (stats) => {
        this.#free = stats.bavail * stats.bsize;
        this.#checked = Date.now();
        return this.#free;
      },
      () => this.#free, // cannot tell: keep the last answer
    ).finally(() => {
      this.#checking = null;
    });
    return this.#checking;
  }

  /**
   * True when writing `bytes` more would eat into the reserve: optional writers then skip
   * their write, and listeners (the pack cache) are told to give space back.
   */
  async low(bytes = 0): Promise<boolean> {
    const low = (await this.free()) - bytes < this.reserveBytes;
    if (low) for (const listener of this.#lowListeners) listener();
    return low;
  }

  onLow(listener: () => void): void {
    this.#lowListeners.push(listener);
  }
}

/** Whether an error means the disk (or the database's disk) is full. Pure. */
export function isOutOfSpace(error: unknown): boolean {
  const { code, stderr, message } = (error ?? {}) as { code?: unknown; stderr?: unknown; message?: unknown };
  // 53100: PostgreSQL's disk_full.
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL' || code === '53100') return true;
  const text = `${typeof stderr === 'string' ? stderr : ''}\n${typeof message === 'string' ? message : ''}`;
  return /No space left on device|Out of diskspace|Disk quota exceeded|database or disk is full/i.test(text);
}

export const OUT_OF_SPACE_MESSAGE = 'the server is out of disk space; nothing was changed — retry once space is freed';
