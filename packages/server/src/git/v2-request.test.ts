import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pktLine } from './pkt-line.ts';
import { parseV2Request, V2RequestError } from './v2-request.ts';
import { lsRefsResponse, parseLsRefsArgs } from './ls-refs.ts';

const body = (...parts: (string | Buffer)[]) => Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : p === '0000' || p === '0001' ? Buffer.from(p) : pktLine(p))));

describe('protocol v2 request parser', () => {
  it('parses command, capabilities and arguments', () => {
    const request = parseV2Request(body('command=ls-refs\n', 'agent=git/2.39.5', 'object-format=sha1', 'server-option=x=y', '0001', 'peel\n', 'symrefs\n', 'ref-prefix HEAD\n', '0000'));
    assert.deepEqual(request, { command: 'ls-refs', agent: 'git/2.39.5', serverOptions: ['x=y'], args: ['peel', 'symrefs', 'ref-prefix HEAD'] });
  });

  it('returns null for a flush-only body', () => {
    assert.equal(parseV2Request(Buffer.from('0000')), null);
  });

  it('refuses unknown commands and capabilities, a second command, and other object formats', () => {
    assert.throws(() => parseV2Request(body('command=bundle-uri', '0001', '0000')), /invalid command/);
    assert.throws(() => parseV2Request(body('command=fetch', 'session-id=1', '0001', '0000')), /unknown capability/);
    assert.throws(() => parseV2Request(body('command=fetch', 'command=ls-refs', '0000')), /more than one command/);
    assert.throws(() => parseV2Request(body('command=fetch', 'object-format=sha256', '0000')), /mismatched object format/);
  });

  it('requires a flush at the end', () => {
    assert.throws(() => parseV2Request(body('command=fetch', '0001', 'done')), /expected flush/);
  });

  it('either parses or throws V2RequestError for any input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          parseV2Request(Buffer.from(bytes));
        } catch (error) {
          assert.ok(error instanceof V2RequestError, String(error));
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('ls-refs', () => {
  const snapshot = {
    head: { target: 'refs/heads/main' },
    refs: [
      { name: 'refs/heads/dev', oid: '1'.repeat(40), peeled: null },
      { name: 'refs/heads/main', oid: '2'.repeat(40), peeled: null },
      { name: 'refs/tags/v1', oid: '3'.repeat(40), peeled: '2'.repeat(40) },
    ],
    hidden: [],
    digest: 'd',
  };

  it('lists HEAD first with its symref target, then refs, peeling tags when asked', () => {
    const text = lsRefsResponse(snapshot, parseLsRefsArgs(['symrefs', 'peel'])).toString();
    assert.equal(text, [
      pktLine(`${'2'.repeat(40)} HEAD symref-target:refs/heads/main\n`),
      pktLine(`${'1'.repeat(40)} refs/heads/dev\n`),
      pktLine(`${'2'.repeat(40)} refs/heads/main\n`),
      pktLine(`${'3'.repeat(40)} refs/tags/v1 peeled:${'2'.repeat(40)}\n`),
      Buffer.from('0000'),
    ].map(String).join(''));
  });

  it('filters by ref-prefix, HEAD included only when a prefix matches it', () => {
    const text = lsRefsResponse(snapshot, parseLsRefsArgs(['ref-prefix refs/tags/'])).toString();
    assert.ok(!text.includes('HEAD') && !text.includes('refs/heads/') && text.includes('refs/tags/v1'));
  });

  it('reports an unborn HEAD only when asked', () => {
    const empty = { head: { target: 'refs/heads/trunk' }, refs: [], hidden: [], digest: 'd' };
    assert.equal(lsRefsResponse(empty, parseLsRefsArgs(['symrefs', 'unborn'])).toString(), `${pktLine('unborn HEAD symref-target:refs/heads/trunk\n')}0000`);
    assert.equal(lsRefsResponse(empty, parseLsRefsArgs(['symrefs'])).toString(), '0000');
    assert.equal(lsRefsResponse(empty, parseLsRefsArgs(['unborn'])).toString(), '0000');
  });

  it('refuses unknown arguments', () => {
    assert.throws(() => parseLsRefsArgs(['exclude refs/x']), V2RequestError);
  });
});
