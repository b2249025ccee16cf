import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PktLineError, PktLineReader, pktLine } from './pkt-line.ts';
import { readReceivePackRequest, ReceivePackRequestError } from './receive-pack-request.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const Z = '0'.repeat(40);

async function* once(buffer: Buffer): AsyncGenerator<Buffer> {
  yield buffer;
}

function parse(buffer: Buffer, maxCommands = 10_000) {
  return readReceivePackRequest(new PktLineReader(once(buffer)), { maxCommands, maxPushOptions: 100 });
}

describe('receive-pack request parser', () => {
  it('reads commands, capabilities after the NUL, push options and leaves the pack', async () => {
    const reader = new PktLineReader(once(Buffer.concat([
      pktLine(`${A} ${B} refs/heads/main\0 report-status-v2 side-band-64k quiet atomic push-options object-format=sha1 agent=git/2.39.5`),
      pktLine(`${Z} ${B} refs/heads/new`),
      pktLine(`${A} ${Z} refs/heads/old`),
      Buffer.from('0000'),
      pktLine('ci.skip'),
      Buffer.from('0000'),
      Buffer.from('PACK...'),
    ])));
    const request = await readReceivePackRequest(reader);
    assert.deepEqual(request.commands.map((c) => c.kind), ['update', 'create', 'delete']);
    assert.ok(request.capabilities.has('atomic'));
    assert.equal(request.agent, 'git/2.39.5');
    assert.deepEqual(request.pushOptions, ['ci.skip']);
    const rest: Buffer[] = [];
    for await (const chunk of reader.rest()) rest.push(chunk);
    assert.equal(Buffer.concat(rest).toString(), 'PACK...');
  });

  it('treats a zero-to-zero command as a delete of a ref the client never saw', async () => {
    const request = await parse(Buffer.concat([pktLine(`${Z} ${Z} refs/heads/gone\0report-status`), Buffer.from('0000')]));
    assert.equal(request.commands[0]!.kind, 'delete');
  });

  it('reads shallow lines before the commands', async () => {
    const request = await parse(Buffer.concat([pktLine(`shallow ${A}`), pktLine(`${A} ${B} refs/heads/main\0report-status`), Buffer.from('0000')]));
    assert.deepEqual(request.shallow, [A]);
  });

  it('accepts the flush-only probe as an empty request', async () => {
    assert.equal((await parse(Buffer.from('0000'))).commands.length, 0);
    assert.equal((await parse(Buffer.alloc(0))).commands.length, 0);
  });

  it('rejects unknown capabilities, other object formats and push certificates', async () => {
    await assert.rejects(parse(Buffer.concat([pktLine(`${A} ${B} refs/heads/main\0report-status bogus-cap`), Buffer.from('0000')])), ReceivePackRequestError);
    await assert.rejects(parse(Buffer.concat([pktLine(`${A} ${B} refs/heads/main\0object-format=sha256`), Buffer.from('0000')])), /object format/);
    await assert.rejects(parse(Buffer.concat([pktLine('push-cert\0report-status'), Buffer.from('0000')])), /push-cert/);
  });

  it('rejects malformed command lines and a missing flush', async () => {
    await assert.rejects(parse(Buffer.concat([pktLine(`${A} refs/heads/main`), Buffer.from('0000')])), ReceivePackRequestError);
    await assert.rejects(parse(pktLine(`${A} ${B} refs/heads/main\0report-status`)), /ended before the flush/);
  });

  it('refuses more commands than the limit', async () => {
    const lines = [pktLine(`${Z} ${B} refs/heads/b0\0report-status`)];
    for (let i = 1; i < 5; i++) lines.push(pktLine(`${Z} ${B} refs/heads/b${i}`));
    await assert.rejects(parse(Buffer.concat([...lines, Buffer.from('0000')]), 4), /too many ref updates/);
  });

  it('either parses or throws a typed error for any input', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.constant('0000'), fc.string({ maxLength: 120 }).map((s) => (s.length ? pktLine(s).toString('latin1') : '0000')), fc.string({ maxLength: 12 })), { maxLength: 8 }),
        async (parts) => {
          try {
            await parse(Buffer.from(parts.join(''), 'latin1'));
          } catch (error) {
            assert.ok(error instanceof ReceivePackRequestError || error instanceof PktLineError, String(error));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
