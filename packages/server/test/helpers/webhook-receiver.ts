/** A real HTTP webhook receiver on 127.0.0.1 that records every delivery and answers as told. */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type { GroveEvent } from '@grove/sdk';

export interface Received {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  /** The raw body as received, before any JSON parsing. */
  readonly body: string;
  readonly event: GroveEvent;
  readonly at: number;
  /** What the receiver answered (null: it never answered). */
  readonly status: number | null;
}

/** What to answer a delivery: a status code, or 'hang' to never answer. */
export type Answer = number | 'hang';

export class Receiver {
  readonly received: Received[] = [];
  /** Every request that reached the receiver, answered or not. */
  connections = 0;
  answer: (request: { path: string; event: GroveEvent; index: number }) => Answer = () => 200;
  readonly #server: http.Server;
  readonly url: string;

  private constructor(server: http.Server, url: string) {
    this.#server = server;
    this.url = url;
  }

  static async start(port = 0): Promise<Receiver> {
    let receiver!: Receiver;
    const server = http.createServer((request, response) => {
      receiver.connections++;
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const event = JSON.parse(body) as GroveEvent;
        const index = receiver.received.length;
        const answer = receiver.answer({ path: request.url ?? '/', event, index });
        receiver.received.push({ path: request.url ?? '/', headers: request.headers, body, event, at: Date.now(), status: answer === 'hang' ? null : answer });
        if (answer === 'hang') return; // never answers: the socket stays open until close()
        response.writeHead(answer, { 'content-type': 'text/plain' }).end(answer < 300 ? 'ok' : 'nope');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const address = server.address() as net.AddressInfo;
    receiver = new Receiver(server, `http://127.0.0.1:${address.port}`);
    return receiver;
  }

  /** Deliveries answered 2xx (what a receiver has "accepted"). */
  accepted(filter: (r: Received) => boolean = () => true): Received[] {
    return this.received.filter((r) => r.status !== null && r.status < 300 && filter(r));
  }

  /** Polls until `predicate` holds; fails with `what` and what was received after `timeoutMs`. */
  async waitFor(what: string, predicate: (received: Received[]) => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.received)) {
      if (Date.now() > deadline) {
        const got = this.received.map((r) => `${r.path} ${r.event.type}#${r.event.id} ${r.event.repo} → ${r.status}`).join('\n  ');
        assert.fail(`${what}: not within ${timeoutMs} ms; received:\n  ${got || '(nothing)'}`);
      }
      await delay(20);
    }
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

