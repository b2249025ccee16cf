import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blobSizeLimit, parsePackRequest, SpliceError, withMissingAllowed } from './splice.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);

test('parsePackRequest reads shallow lines, wants and the haves after --not', () => {
  assert.deepEqual(parsePackRequest(`--shallow ${C}\n${A}\n--not\n${B}\n\n`), { shallow: [C], wants: [A], haves: [B] });
  assert.deepEqual(parsePackRequest(`${A}\n${B}\n--not\n\n`), { shallow: [], wants: [A, B], haves: [] });
});

test('parsePackRequest refuses anything upload-pack does not write', () => {
  assert.throws(() => parsePackRequest(`${A}\n--all\n`), SpliceError);
  assert.throws(() => parsePackRequest('--shallow nonsense\n'), SpliceError);
});

test('blobSizeLimit finds the smallest blob:limit, with units and inside combine:', () => {
  assert.equal(blobSizeLimit(null), null);
  assert.equal(blobSizeLimit('blob:none'), null);
  assert.equal(blobSizeLimit('blob:limit=1048576'), 1048576);
  assert.equal(blobSizeLimit('blob:limit=10m'), 10 * 1024 ** 2);
  assert.equal(blobSizeLimit('blob:limit=2k'), 2048);
  assert.equal(blobSizeLimit('blob:limit=1g'), 1024 ** 3);
  assert.equal(blobSizeLimit(`combine:${encodeURIComponent('blob:limit=5m')}+tree:0+${encodeURIComponent('blob:limit=3m')}`), 3 * 1024 ** 2);
});

test('withMissingAllowed puts --missing=allow-any right after the pack-objects subcommand', () => {
  assert.deepEqual(withMissingAllowed(['--shallow-file', '', 'pack-objects', '--revs', '--stdout']), ['--shallow-file', '', 'pack-objects', '--missing=allow-any', '--revs', '--stdout']);
  assert.throws(() => withMissingAllowed(['rev-list']), SpliceError);
});
