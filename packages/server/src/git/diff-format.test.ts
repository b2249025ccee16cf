import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { attachHunks, parseRawNumstat, PatchParser } from './diff-format.ts';

const Z = '0'.repeat(40);
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

const RAW = [
  `:100644 100644 ${A} ${B} M`, 'm.txt',
  `:100644 100644 ${A} ${A} R100`, 'old name.txt', 'new name.txt',
  `:000000 100644 ${Z} ${B} A`, 'bin.dat',
  `:100644 120000 ${A} ${B} T`, 'link',
  `:100644 000000 ${A} ${Z} D`, 'gone.txt',
  '2\t1\tm.txt', '0\t0\t', 'old name.txt', 'new name.txt', '-\t-\tbin.dat', '1\t1\tlink', '0\t3\tgone.txt', '',
].join('\0');

const PATCH = `diff --git a/m.txt b/m.txt
index aaaaaaa..bbbbbbb 100644
--- a/m.txt
+++ b/m.txt
@@ -1,2 +1,3 @@ context
 one
-two
+2
+three
diff --git a/old name.txt b/new name.txt
similarity index 100%
rename from old name.txt
rename to new name.txt
diff --git a/bin.dat b/bin.dat
new file mode 100644
index 0000000..bbbbbbb
Binary files /dev/null and b/bin.dat differ
diff --git a/link b/link
deleted file mode 100644
index aaaaaaa..0000000
--- a/link
+++ /dev/null
@@ -1 +0,0 @@
-x
\\ No newline at end of file
diff --git a/link b/link
new file mode 120000
index 0000000..bbbbbbb
--- /dev/null
+++ b/link
@@ -0,0 +1 @@
+target
\\ No newline at end of file
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
index aaaaaaa..0000000
--- a/gone.txt
+++ /dev/null
@@ -1,3 +0,0 @@
--- not a header
-+++ not either
-diff --git a/x b/x
`.split('\n').slice(0, -1);

function parse(limits = { maxLines: 1000, maxBytes: 1 << 20 }) {
  const parser = new PatchParser(limits);
  for (const line of PATCH) if (!parser.push(line)) break;
  return parser;
}

describe('diff parsers', () => {
  it('reads statuses, paths, renames and line counts from raw + numstat', () => {
    const changes = parseRawNumstat(RAW);
    assert.deepEqual(changes.map((c) => [c.status, c.path, c.previousPath, c.additions, c.deletions, c.binary]), [
      ['modified', 'm.txt', undefined, 2, 1, false],
      ['renamed', 'new name.txt', 'old name.txt', 0, 0, false],
      ['added', 'bin.dat', undefined, 0, 0, true],
      ['typechange', 'link', undefined, 1, 1, false],
      ['deleted', 'gone.txt', undefined, 0, 3, false],
    ]);
  });

  it('pairs sections with changes (a type change has two) and keeps hunk lines that look like headers', () => {
    const parser = parse();
    assert.equal(parser.sections.length, 6);
    const files = attachHunks(parseRawNumstat(RAW), parser.sections);
    assert.deepEqual(files.map((f) => [f.path, f.hunks.length, f.truncated]), [['m.txt', 1, false], ['new name.txt', 0, false], ['bin.dat', 0, false], ['link', 2, false], ['gone.txt', 1, false]]);
    assert.deepEqual(files[0]!.hunks[0], { oldStart: 1, oldLines: 2, newStart: 1, newLines: 3, header: '@@ -1,2 +1,3 @@ context', lines: [' one', '-two', '+2', '+three'] });
    assert.deepEqual(files[3]!.hunks.map((h) => h.lines), [['-x', '\\ No newline at end of file'], ['+target', '\\ No newline at end of file']]);
    assert.deepEqual(files[4]!.hunks[0]!.lines, ['--- not a header', '-+++ not either', '-diff --git a/x b/x']);
  });

  it('stops at the line limit, dropping the unfinished hunk and marking what is missing', () => {
    const parser = parse({ maxLines: 7, maxBytes: 1 << 20 });
    assert.equal(parser.stopped, true);
    const files = attachHunks(parseRawNumstat(RAW), parser.sections);
    assert.deepEqual(files.map((f) => [f.path, f.hunks.length, f.truncated]), [['m.txt', 1, false], ['new name.txt', 0, false], ['bin.dat', 0, false], ['link', 0, true], ['gone.txt', 0, true]]);
  });

  it('stops at the byte limit too', () => {
    const parser = parse({ maxLines: 1000, maxBytes: 10 });
    const files = attachHunks(parseRawNumstat(RAW), parser.sections);
    assert.equal(files[0]!.truncated, true);
    assert.deepEqual(files[0]!.hunks, []);
  });

  it('stops pairing when a section header names another path', () => {
    const sections = parse().sections.slice(1);
    const files = attachHunks(parseRawNumstat(RAW), sections);
    assert.ok(files.every((f) => f.hunks.length === 0));
    assert.deepEqual(files.map((f) => f.truncated), [true, true, false, true, true]);
  });
});
