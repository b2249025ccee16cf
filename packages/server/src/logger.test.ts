import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LogOutput } from './log-output.ts';
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

describe('LogOutput', () => {
  it('writes whole lines to its descriptor', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'grove-log-'));
    try {
      const file = path.join(dir, 'log');
      const fd = openSync(file, 'w');
      const output = new LogOutput(fd);
      output.write('{"msg":"one"}\n');
      output.write('{"msg":"twö"}\n');
      closeSync(fd);
      assert.equal(readFileSync(file, 'utf8'), '{"msg":"one"}\n{"msg":"twö"}\n');
      assert.equal(output.broken, false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('drops lines once the reader of a pipe has gone away, instead of failing or retrying', () => {
    // a descriptor that was closed fails like a pipe whose reader went away (the serve test closes a real pipe)
    const fd = openSync(os.devNull, 'w');
    closeSync(fd);
    const output = new LogOutput(fd);
    assert.equal(output.write('lost\n'), true);
    assert.equal(output.broken, true);
    assert.equal(output.write('also lost\n'), true);
  });
});
