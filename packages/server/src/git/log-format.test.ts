import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BlameParser, isoWithOffset, parseCommitRecords, parseLsTreeRecord } from './log-format.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const T = 'c'.repeat(40);

describe('git output parsers for the read API', () => {
  it('parses NUL-separated commit records, root and merge commits, multi-line messages', () => {
    const record = (sha: string, parents: string, message: string) => [sha, parents, T, 'Ann', 'ann@x', '2024-01-02T03:04:05+02:00', 'Cy', 'cy@x', '2024-01-02T03:04:06-05:30', message].join('\0') + '\0';
    const commits = parseCommitRecords(record(A, `${B} ${T}`, 'merge\n\nbody with\n') + record(B, '', 'root\n'));
    assert.equal(commits.length, 2);
    assert.deepEqual(commits[0], {
      sha: A, parents: [B, T], tree: T, message: 'merge\n\nbody with',
      author: { name: 'Ann', email: 'ann@x', date: '2024-01-02T03:04:05+02:00' },
      committer: { name: 'Cy', email: 'cy@x', date: '2024-01-02T03:04:06-05:30' },
    });
    assert.deepEqual(commits[1]!.parents, []);
    assert.deepEqual(parseCommitRecords(''), []);
  });

  it('parses ls-tree -l -z records with tabs and spaces in names', () => {
    assert.deepEqual(parseLsTreeRecord(`100644 blob ${A}      12\tsrc/a b\tc.txt`, 'root'), { name: 'a b\tc.txt', path: 'root/src/a b\tc.txt', type: 'file', mode: '100644', sha: A, size: 12 });
    assert.deepEqual(parseLsTreeRecord(`040000 tree ${A}       -\tdir`, ''), { name: 'dir', path: 'dir', type: 'dir', mode: '040000', sha: A });
    assert.equal(parseLsTreeRecord(`160000 commit ${A}       -\tsub`, '')!.type, 'submodule');
    assert.equal(parseLsTreeRecord(`120000 blob ${A}       3\tlink`, '')!.type, 'symlink');
    assert.equal(parseLsTreeRecord('garbage', ''), null);
  });

  it('turns blame porcelain into ranges, merging adjacent groups of one commit', () => {
    const parser = new BlameParser();
    const lines = [
      `${A} 1 1 2`, 'author Ann', 'author-mail <ann@x>', 'author-time 1700000000', 'author-tz +0130', 'summary first', 'filename f', '\tline 1',
      `${A} 2 2`, '\tline 2',
      `${B} 1 3 1`, 'author Bob', 'author-mail <bob@x>', 'author-time 1700000100', 'author-tz -0800', 'summary second', 'previous x f', 'filename f', '\tauthor Mallory',
      `${A} 3 4 1`, 'filename f', '\tline 4',
      `${A} 4 5 1`, 'filename f', '\tline 5',
    ];
    for (const line of lines) parser.push(line);
    assert.deepEqual(parser.ranges(), [
      { start: 1, lines: 2, commit: { sha: A, author: { name: 'Ann', email: 'ann@x' }, date: '2023-11-14T23:43:20+01:30', summary: 'first' } },
      { start: 3, lines: 1, commit: { sha: B, author: { name: 'Bob', email: 'bob@x' }, date: '2023-11-14T14:15:00-08:00', summary: 'second' } },
      { start: 4, lines: 2, commit: { sha: A, author: { name: 'Ann', email: 'ann@x' }, date: '2023-11-14T23:43:20+01:30', summary: 'first' } },
    ]);
  });

  it('formats unix times with their own offset', () => {
    assert.equal(isoWithOffset(0, '+0000'), '1970-01-01T00:00:00+00:00');
    assert.equal(isoWithOffset(0, '-0130'), '1969-12-31T22:30:00-01:30');
  });
});
