/**
 * Where log lines go: written synchronously to a file descriptor, a line at a time, so nothing is
 * lost when the process exits. A reader that goes away (`grove serve | head`) turns logging off
 * instead of failing: pino's default destination (sonic-boom 4) retries a broken pipe forever in
 * its exit-time flushSync, which kept a SIGTERMed server alive at 100% of a busy-wait.
 */
import { writeSync } from 'node:fs';

const RETRY_AFTER_MS = 1;
const waitCell = new Int32Array(new SharedArrayBuffer(4));

export class LogOutput {
  #broken = false;
  readonly #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /** Whether the reader has gone away (EPIPE, EBADF): later lines are dropped. */
  get broken(): boolean {
    return this.#broken;
  }

  write(line: string): boolean {
    if (this.#broken) return true;
    let bytes = Buffer.from(line, 'utf8');
    while (bytes.length > 0) {
      try {
        bytes = bytes.subarray(writeSync(this.#fd, bytes));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // a non-blocking pipe that is full: wait for the reader, as a blocking write would
        if (code === 'EAGAIN') Atomics.wait(waitCell, 0, 0, RETRY_AFTER_MS);
        else {
          this.#broken = true;
          return true;
        }
      }
    }
    return true;
  }
}
