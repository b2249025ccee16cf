import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addedOrDeletedBlobs, renameFlagFor } from './rename-detection.ts';
import { BIG_BLOB_BYTES } from './big-blob.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const Z = '0'.repeat(40);

describe('rename detection for diffs', () => {
  it('finds inexact renames (-M) when no candidate is big, and exact ones only (-M100%) when one is', () => {
    assert.equal(renameFlagFor([]), '-M');
    assert.equal(renameFlagFor([10, BIG_BLOB_BYTES - 1]), '-M');
    assert.equal(renameFlagFor([10, BIG_BLOB_BYTES]), '-M100%');
  });

  it('takes the added and deleted blobs of diff-tree -z --raw output as candidates, not modified files or submodules', () => {
    const raw = [
      `:000000 100644 ${Z} ${A} A`, 'new.txt',
      `:100644 000000 ${B} ${Z} D`, 'old.txt',
      `:100644 100644 ${A} ${B} M`, 'changed.txt',
      `:000000 160000 ${Z} ${B} A`, 'vendor/lib',
      '',
    ].join('\0');
    assert.deepEqual(addedOrDeletedBlobs(raw), [A, B]);
    assert.deepEqual(addedOrDeletedBlobs(''), []);
  });
});
