import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OutboundPolicy } from './outbound-policy.ts';

describe('OutboundPolicy', () => {
  const policy = new OutboundPolicy();

  it('refuses loopback, link-local, private, shared, multicast and reserved addresses, IPv4 and IPv6 (mapped ones too)', () => {
    for (const address of ['127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fd00::1', 'fc00::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '64:ff9b::7f00:1']) {
      assert.notEqual(policy.refusal(address, address), null, address);
    }
  });

  it('allows public addresses, IPv4 and IPv6', () => {
    for (const address of ['1.1.1.1', '8.8.8.8', '172.32.0.1', '192.169.0.1', '2606:4700:4700::1111', '2a00:1450:4001::1']) {
      assert.equal(policy.refusal(address, address), null, address);
    }
  });

  it('names the host, the address and the setting in a refusal', () => {
    assert.equal(policy.refusal('hooks.internal', '10.0.0.5'), 'hooks.internal (10.0.0.5) is a loopback, private or reserved address; an operator can allow it with GROVE_ALLOWED_OUTBOUND');
  });

  it('allows what the allow-list names: an address, a CIDR or a host name (whatever it resolves to)', () => {
    const allowing = OutboundPolicy.parse('127.0.0.1, 10.20.0.0/16,hooks.internal., fd00::/8');
    assert.equal(allowing.refusal('127.0.0.1', '127.0.0.1'), null);
    assert.notEqual(allowing.refusal('127.0.0.2', '127.0.0.2'), null);
    assert.equal(allowing.refusal('x', '10.20.99.1'), null);
    assert.notEqual(allowing.refusal('x', '10.21.0.1'), null);
    assert.equal(allowing.refusal('HOOKS.internal', '192.168.0.9'), null);
    assert.equal(allowing.refusal('x', 'fd12::1'), null);
  });

  it('rejects allow-list entries that are no host, address or CIDR', () => {
    assert.throws(() => OutboundPolicy.parse('10.0.0.0/33'), /bad prefix length/);
    assert.throws(() => OutboundPolicy.parse('http://x'), /is not a host name, an IP address or a CIDR/);
    assert.throws(() => OutboundPolicy.parse('host/8'), /is not a host name/);
  });
});
