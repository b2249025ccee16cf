/**
 * Where Grove may send requests of its own (webhook deliveries now, remote sync later):
 * anywhere public, but not to loopback, link-local, private, shared, multicast or reserved
 * addresses — the classic SSRF targets (cloud metadata at 169.254.169.254, admin ports on
 * localhost, the internal network) — unless the operator's allow-list
 * (`GROVE_ALLOWED_OUTBOUND`: host names, addresses or CIDRs, comma-separated) names them.
 * Pure: decisions on addresses already resolved; the I/O is in guarded-fetch.ts.
 */
import net from 'node:net';

const FORBIDDEN_V4: readonly [string, number][] = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];

const FORBIDDEN_V6: readonly [string, number][] = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b::', 96], // NAT64 (reaches IPv4 addresses)
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
];

export class OutboundPolicy {
  readonly #forbidden = new net.BlockList();
  readonly #allowedAddresses = new net.BlockList();
  readonly #allowedHosts = new Set<string>();
  /** The allow-list as given, for messages. */
  readonly allowList: readonly string[];

  /** `allowList`: host names, IP addresses and CIDRs; throws for an entry that is none of them. */
  constructor(allowList: readonly string[] = []) {
    for (const [address, prefix] of FORBIDDEN_V4) this.#forbidden.addSubnet(address, prefix, 'ipv4');
    for (const [address, prefix] of FORBIDDEN_V6) this.#forbidden.addSubnet(address, prefix, 'ipv6');
    for (const entry of allowList) {
      const [address, prefixText, ...rest] = entry.split('/');
      const family = net.isIP(address ?? '');
      if (family !== 0 && rest.length === 0) {
        const prefix = prefixText === undefined ? (family === 4 ? 32 : 128) : Number(prefixText);
        if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) throw new Error(`GROVE_ALLOWED_OUTBOUND: ${entry} has a bad prefix length`);
        this.#allowedAddresses.addSubnet(address!, prefix, family === 4 ? 'ipv4' : 'ipv6');
      } else if (/^[A-Za-z0-9.-]+$/.test(entry) && prefixText === undefined) {
        this.#allowedHosts.add(entry.toLowerCase().replace(/\.$/, ''));
      } else {
        throw new Error(`GROVE_ALLOWED_OUTBOUND: ${JSON.stringify(entry)} is not a host name, an IP address or a CIDR`);
      }
    }
    this.allowList = [...allowList];
  }

  static parse(value: string | undefined): OutboundPolicy {
    return new OutboundPolicy((value ?? '').split(',').map((s) => s.trim()).filter((s) => s !== ''));
  }

  /** Whether requests to `host` are allowed whatever it resolves to (it is on the allow-list by name). */
  hostAllowed(host: string): boolean {
    return this.#allowedHosts.has(host.toLowerCase().replace(/\.$/, ''));
  }

  /** Null when `address` (resolved for `host`) may be connected to, else why not. */
  refusal(host: string, address: string): string | null {
    const family = net.isIP(address);
    if (family === 0) return `${address} is not an IP address`;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (!this.#forbidden.check(address, type)) return null;
    if (this.hostAllowed(host) || this.#allowedAddresses.check(address, type)) return null;
    return `${host === address ? address : `${host} (${address})`} is a loopback, private or reserved address; an operator can allow it with GROVE_ALLOWED_OUTBOUND`;
  }
}
