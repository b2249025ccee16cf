import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FileChange } from '../git/diff-format.ts';
import { asBinary, binarySection, changedBlobs, excludingLacking, touchesLacking } from './lacking-blobs.ts';

const ZERO = '0'.repeat(40);
const BIG = 'b'.repeat(40);
const BIG2 = 'c'.repeat(40);
const SMALL = 'a'.repeat(40);
const change = (fields: Partial<FileChange>): FileChange => ({ path: 'f', status: 'modified', oldMode: '100644', newMode: '100644', oldSha: SMALL, newSha: SMALL, additions: 1, deletions: 1, binary: false, ...fields });

test('changedBlobs names both sides of each change, without absent sides or gitlinks', () => {
  assert.deepEqual(changedBlobs([change({ oldSha: ZERO, newSha: BIG, status: 'added' }), change({ oldMode: '160000', newMode: '160000', oldSha: BIG2, newSha: SMALL })]), [BIG]);
});

test('changes touching lacking blobs are excluded by literal pathspecs, renames by both paths', () => {
  const lacking = new Set([BIG]);
  const changes = [change({ path: 'small.txt' }), change({ path: 'models/w.bin', newSha: BIG }), change({ path: 'new.bin', previousPath: 'old.bin', status: 'renamed', oldSha: BIG, newSha: BIG })];
  assert.equal(touchesLacking(changes[0]!, lacking), false);
  assert.equal(touchesLacking(changes[1]!, lacking), true);
  assert.deepEqual(excludingLacking(changes, lacking), ['--', ':(exclude,literal)models/w.bin', ':(exclude,literal)new.bin', ':(exclude,literal)old.bin']);
  assert.deepEqual(excludingLacking(changes, new Set()), []);
  assert.deepEqual(asBinary(changes[1]!), { ...changes[1]!, additions: 0, deletions: 0, binary: true });
});

test('a binary section names the change as git would, without data', () => {
  assert.equal(binarySection(change({ path: 'w.bin', status: 'added', oldMode: '000000', oldSha: ZERO, newSha: BIG })),
    `diff --git a/w.bin b/w.bin\nnew file mode 100644\nindex ${ZERO}..${BIG}\nBinary files /dev/null and b/w.bin differ\n`);
  assert.equal(binarySection(change({ path: 'w.bin', oldSha: BIG, newSha: BIG2 })),
    `diff --git a/w.bin b/w.bin\nindex ${BIG}..${BIG2} 100644\nBinary files a/w.bin and b/w.bin differ\n`);
  assert.equal(binarySection(change({ path: 'w.bin', status: 'deleted', newMode: '000000', oldSha: BIG, newSha: ZERO })),
    `diff --git a/w.bin b/w.bin\ndeleted file mode 100644\nindex ${BIG}..${ZERO}\nBinary files a/w.bin and /dev/null differ\n`);
});
