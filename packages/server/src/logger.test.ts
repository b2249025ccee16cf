import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { resolveLogFormat } from './logger.ts';

describe('resolveLogFormat', () => {
  it('writes plain text to a terminal and JSON to anything else when left on auto', () => {
    assert.equal(resolveLogFormat('auto', true), 'pretty');
    assert.equal(resolveLogFormat('auto', false), 'json');
  });
  it('keeps an explicit choice whatever the output is', () => {
    for (const terminal of [true, false]) {
      assert.equal(resolveLogFormat('json', terminal), 'json');
      assert.equal(resolveLogFormat('pretty', terminal), 'pretty');
    }
  });
});
