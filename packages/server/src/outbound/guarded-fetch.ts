/**
 * fetch for requests Grove makes on its own behalf: every connection's address is checked
 * against the OutboundPolicy after DNS resolution and before connecting (so a name that
 * resolves to 127.0.0.1 — or changes to it between a check and the request, DNS
 * rebinding — is refused), and redirects are never followed.
 */
import dns from 'node:dns';
import net from 'node:net';
import { Agent, fetch, type RequestInit, type Response } from 'undici';
import type { OutboundPolicy } from './outbound-policy.ts';

export class OutboundRefusedError extends Error {
  override name = 'OutboundRefusedError';
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

export class GuardedFetch {
  readonly #policy: OutboundPolicy;
  readonly #agent: Agent;

  constructor(policy: OutboundPolicy) {
    this.#policy = policy;
    this.#agent = new Agent({ connect: { lookup: (host: string, options: dns.LookupOptions, callback: LookupCallback) => this.#lookup(host, options, callback) } });
  }

  /** A request that is refused for its destination rejects with OutboundRefusedError (as the fetch error's cause). */
  async fetch(url: string, init: Omit<RequestInit, 'dispatcher' | 'redirect'> = {}): Promise<Response> {
    // An address in the URL is connected to without a lookup: check it here.
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    if (net.isIP(host) !== 0) {
      const refusal = this.#policy.refusal(host, host);
      if (refusal !== null) throw new OutboundRefusedError(refusal);
    }
    return fetch(url, { ...init, dispatcher: this.#agent, redirect: 'manual' });
  }

  /** Resolves `host` and checks every address, as the connection will (for answers at configuration time). */
  async check(host: string): Promise<string | null> {
    const bare = host.replace(/^\[|\]$/g, '');
    let addresses: dns.LookupAddress[];
    try {
      addresses = await dns.promises.lookup(bare, { all: true });
    } catch {
      return null; // not resolvable now: deliveries will try again, and check again
    }
    for (const { address } of addresses) {
      const refusal = this.#policy.refusal(bare, address);
      if (refusal !== null) return refusal;
    }
    return null;
  }

  /**
   * The address a connection to `host` must use, checked (for git, which resolves on its own:
   * it is told this address, so a name cannot resolve elsewhere between the check and the
   * connection). Null for an address literal, which needs no pin; throws
   * OutboundRefusedError when the destination is not allowed, and the lookup's error when
   * the name does not resolve.
   */
  async pin(host: string): Promise<string | null> {
    const bare = host.replace(/^\[|\]$/g, '');
    if (net.isIP(bare) !== 0) {
      const refusal = this.#policy.refusal(bare, bare);
      if (refusal !== null) throw new OutboundRefusedError(refusal);
      return null;
    }
    const addresses = await dns.promises.lookup(bare, { all: true });
    for (const { address } of addresses) {
      const refusal = this.#policy.refusal(bare, address);
      if (refusal !== null) throw new OutboundRefusedError(refusal);
    }
    return addresses[0]!.address;
  }

  /** Ends every connection at once: shutdown must not wait for a receiver that never answers. */
  async close(): Promise<void> {
    await this.#agent.destroy();
  }

  #lookup(host: string, options: dns.LookupOptions, callback: LookupCallback): void {
    dns.lookup(host, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      for (const { address } of addresses) {
        const refusal = this.#policy.refusal(host, address);
        if (refusal !== null) return callback(new OutboundRefusedError(refusal), []);
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  }
}
