import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FLUSH_PKT, PktLineError, PktLineReader, decodeLength, packetText, parsePackets, pktLine, pktLines, MAX_PKT_PAYLOAD } from './pkt-line.ts';

async function* chunks(buffer: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buffer.length; i += size) yield buffer.subarray(i, i + size);
}

describe('pkt-line', () => {
  it('frames many payloads and a flush in one buffer exactly as one packet at a time would', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1, maxLength: 80, unit: 'grapheme' }), { maxLength: 30 }), (payloads) => {
        assert.deepEqual(pktLines(payloads), Buffer.concat([...payloads.map((p) => pktLine(p)), FLUSH_PKT]));
      }),
    );
  });

  it('frames a payload with a lowercase hex length that counts itself', () => {
    assert.equal(pktLine('a\n').toString(), '0006a\n');
    assert.equal(pktLine(Buffer.alloc(0xfff0 - 4)).subarray(0, 4).toString(), 'fff0');
  });

  it('refuses empty and oversize payloads when writing', () => {
    assert.throws(() => pktLine(''), RangeError);
    assert.throws(() => pktLine(Buffer.alloc(MAX_PKT_PAYLOAD + 1)), RangeError);
  });

  it('rejects bad hex, the invalid lengths 3 and 4, and lengths over 65520', () => {
    assert.throws(() => decodeLength(Buffer.from('00g0')), PktLineError);
    assert.throws(() => decodeLength(Buffer.from('0003')), PktLineError);
    assert.throws(() => decodeLength(Buffer.from('0004')), PktLineError);
    assert.throws(() => decodeLength(Buffer.from('fff1')), PktLineError);
    assert.equal(decodeLength(Buffer.from('FFF0')), 0xfff0);
  });

  it('parses flush, delim and response-end packets', () => {
    assert.deepEqual(parsePackets(Buffer.from('000000010002')).map((p) => p.kind), ['flush', 'delim', 'response-end']);
  });

  it('rejects a buffer that ends inside a packet', () => {
    assert.throws(() => parsePackets(Buffer.from('0009ab')), /truncated/);
    assert.throws(() => parsePackets(Buffer.from('00')), /truncated/);
  });

  it('strips exactly one trailing LF from text payloads', () => {
    assert.equal(packetText(Buffer.from('want x\n')), 'want x');
    assert.equal(packetText(Buffer.from('a\n\n')), 'a\n');
    assert.equal(packetText(Buffer.from('no-lf')), 'no-lf');
  });

  it('round-trips any payloads through the streaming reader whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 20 }), fc.integer({ min: 1, max: 64 }), async (payloads, chunkSize) => {
        const wire = Buffer.concat([...payloads.map((p) => pktLine(Buffer.from(p))), Buffer.from('0000'), Buffer.from('PACKrest')]);
        const reader = new PktLineReader(chunks(wire, chunkSize));
        for (const payload of payloads) {
          const packet = await reader.read();
          assert.ok(packet?.kind === 'data');
          assert.deepEqual(new Uint8Array(packet.payload), payload);
        }
        assert.equal((await reader.read())?.kind, 'flush');
        const rest: Buffer[] = [];
        for await (const chunk of reader.rest()) rest.push(chunk);
        assert.equal(Buffer.concat(rest).toString(), 'PACKrest');
      }),
      { numRuns: 200 },
    );
  });

  it('either parses or throws PktLineError for any input, never anything else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 1, max: 16 }), async (bytes, chunkSize) => {
        const reader = new PktLineReader(chunks(Buffer.from(bytes), chunkSize));
        try {
          for (let i = 0; i < 300; i++) if ((await reader.read()) === null) break;
        } catch (error) {
          assert.ok(error instanceof PktLineError, String(error));
        }
        try {
          parsePackets(Buffer.from(bytes));
        } catch (error) {
          assert.ok(error instanceof PktLineError, String(error));
        }
      }),
      { numRuns: 500 },
    );
  });
});
