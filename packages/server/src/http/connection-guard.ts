/**
 * Connection limits, so thousands of trickling connections (slowloris) cannot take the
 * server: at most `maxConnections` open at once and at most `maxPerAddress` from one client
 * address. A connection over a limit is answered `503` with `Retry-After` and closed before
 * any of its bytes are read (git prints "The requested URL returned error: 503"). The
 * header and body timeouts that end slow connections are the HTTP server's (app.ts).
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly maxPerAddress: number;
}

const BUSY = 'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 40\r\n\r\ntoo many connections; retry in a moment\n';

export class ConnectionGuard {
  readonly #limits: ConnectionLimits;
  readonly #perAddress = new Map<string, number>();
  #open = 0;
  /** Refusals since start, by which limit. */
  readonly refused = { total: 0, perAddress: 0 };

  constructor(limits: ConnectionLimits) {
    this.#limits = limits;
  }

  get open(): number {
    return this.#open;
  }

  /** Counts the server's connections and refuses those over a limit. */
  attach(server: Server): void {
    server.prependListener('connection', (socket: Socket) => this.#admit(socket));
  }

  #admit(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown';
    const fromAddress = this.#perAddress.get(address) ?? 0;
    const over = this.#open >= this.#limits.maxConnections ? 'total' : fromAddress >= this.#limits.maxPerAddress ? 'perAddress' : null;
    if (over !== null) {
      this.refused[over]++;
      socket.on('error', () => {}); // the client may be gone already
      socket.end(BUSY, () => socket.destroy());
      return;
    }
    this.#open++;
    this.#perAddress.set(address, fromAddress + 1);
    socket.once('close', () => {
      this.#open--;
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left === 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, left);
    });
  }
}
