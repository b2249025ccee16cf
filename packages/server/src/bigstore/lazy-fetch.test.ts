import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { inflateSync } from 'node:zlib';
import { parsePackets, packetText } from '../git/pkt-line.ts';
import { encodeV2Request, parseV2Request, type V2Request } from '../git/v2-request.ts';
import { adler32 } from './adler32.ts';
import { storedFrame } from './frames.ts';
import { blobOnlyFetchResponse, wantedOids, wantsAnything, withoutWants } from './lazy-fetch.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const fetch: V2Request = { command: 'fetch', agent: 'git/2.39.5', serverOptions: [], args: ['thin-pack', `want ${A}`, `want ${B}`, 'filter blob:none', 'done'] };

test('the wants of a fetch are found, taken out, and what is left is known', () => {
  assert.deepEqual(wantedOids(fetch), [A, B]);
  const rest = withoutWants(fetch, new Set([A]));
  assert.deepEqual(rest.args, ['thin-pack', `want ${B}`, 'filter blob:none', 'done']);
  assert.equal(wantsAnything(rest), true);
  assert.equal(wantsAnything(withoutWants(fetch, new Set([A, B]))), false);
  assert.equal(wantsAnything({ ...fetch, args: ['want-ref refs/heads/main', 'done'] }), true);
});

test('a request encoded again parses to the same request', () => {
  const rest = withoutWants(fetch, new Set([A]));
  assert.deepEqual(parseV2Request(encodeV2Request(rest)), rest);
});

test('a blob-only response is a packfile section whose side-band pack holds the blob, verifiably', async () => {
  const bytes = Buffer.from('hello, big world\n'.repeat(1000));
  const oid = createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
  const frames = async function* () {
    yield { bytes: storedFrame(bytes), length: bytes.length, adler32: adler32(bytes) };
  };
  for (const done of [true, false]) {
    const request = { ...fetch, args: done ? [`want ${oid}`, 'done'] : [`want ${oid}`] };
    const parts: Buffer[] = [];
    for await (const piece of blobOnlyFetchResponse(request, [{ oid, size: bytes.length, frames }])) parts.push(piece);
    const packets = parsePackets(Buffer.concat(parts));
    const text = packets.filter((p) => p.kind === 'data').map((p) => (p.kind === 'data' ? packetText(p.payload) : ''));
    assert.equal(text.includes('packfile'), true);
    assert.equal(text.includes('acknowledgments'), !done);
    const pack = Buffer.concat(packets.flatMap((p) => (p.kind === 'data' && p.payload[0] === 1 && packetText(p.payload) !== 'packfile' ? [p.payload.subarray(1)] : [])));
    assert.equal(pack.toString('latin1', 0, 4), 'PACK');
    assert.equal(pack.readUInt32BE(8), 1);
    assert.deepEqual(pack.subarray(-20), createHash('sha1').update(pack.subarray(0, -20)).digest());
    // Entry header (type 3, size in 4 + 7·n bits), then the zlib stream of the blob.
    let at = 12;
    while (pack[at]! & 0x80) at++;
    assert.ok(inflateSync(pack.subarray(at + 1, -20)).equals(bytes));
  }
});

test('a blob-only response carries progress lines on side-band 2, before the pack', async () => {
  const bytes = Buffer.from('x'.repeat(100));
  const oid = createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
  const frames = async function* () {
    yield { bytes: storedFrame(bytes), length: bytes.length, adler32: adler32(bytes) };
  };
  const parts: Buffer[] = [];
  for await (const piece of blobOnlyFetchResponse({ ...fetch, args: [`want ${oid}`, 'done'] }, [{ oid, size: bytes.length, frames }], ['warning: too big for you'])) parts.push(piece);
  const payloads = parsePackets(Buffer.concat(parts)).flatMap((p) => (p.kind === 'data' ? [p.payload] : []));
  const progress = payloads.findIndex((p) => p[0] === 2);
  assert.equal(payloads[progress]!.subarray(1).toString('utf8'), 'warning: too big for you\n');
  assert.ok(progress < payloads.findIndex((p) => p[0] === 1 && p.subarray(1, 5).toString('latin1') === 'PACK'));
});
