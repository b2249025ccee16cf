/**
 * A counting semaphore that queues instead of failing: a burst of requests waits
 * for a slot rather than getting an error, up to a queue timeout after which the
 * caller gets a clear, retryable LimiterTimeoutError. Exposes its counts for metrics.
 */

export class LimiterTimeoutError extends Error {
  override name = 'LimiterTimeoutError';
}

interface Waiter {
  readonly grant: () => void;
  timer: NodeJS.Timeout | undefined;
}

export class Limiter {
  readonly #limit: number;
  #running = 0;
  readonly #waiting: Waiter[] = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('limit must be a positive integer');
    this.#limit = limit;
  }

  get running(): number {
    return this.#running;
  }

  get queued(): number {
    return this.#waiting.length;
  }

  /** Waits for a slot (at most `timeoutMs`, if given); the returned function gives it back (once). */
  async acquire(timeoutMs?: number): Promise<() => void> {
    if (this.#running < this.#limit) {
      this.#running++;
    } else {
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = { grant: resolve, timer: undefined };
        if (timeoutMs !== undefined) {
          waiter.timer = setTimeout(() => {
            const index = this.#waiting.indexOf(waiter);
            if (index !== -1) this.#waiting.splice(index, 1);
            reject(new LimiterTimeoutError(`waited ${timeoutMs} ms for a free slot`));
          }, timeoutMs);
        }
        this.#waiting.push(waiter);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) {
        clearTimeout(next.timer);
        next.grant(); // the slot passes straight to the next waiter
      } else {
        this.#running--;
      }
    };
  }
}
