import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { GitRunner } from './git-command.ts';
import { evictBlobs } from './evict-blobs.ts';
import { fsckRepository, parseFsckOutput, type StoredBlobs } from './fsck.ts';

const TREE = 'e4ad4a2710c477c387da53e739a8a5b5f4366f40';
const BLOB = '6748685f571351399a146e40890add244cf5679a';

describe('parseFsckOutput', () => {
  it('takes a missing blob and the broken links to it apart from every other report', () => {
    const output = [
      `broken link from    tree ${TREE}`,
      `              to    blob ${BLOB}`,
      `missing blob ${BLOB}`,
      `missing blob ${BLOB}`,
      'notice: HEAD points to an unborn branch (main)',
      `error in tree ${TREE}: duplicateEntries: contains duplicate file entries`,
      `broken link from  commit ${BLOB}`,
      `              to    tree ${TREE}`,
      '',
    ].join('\n');
    assert.deepEqual(parseFsckOutput(output), {
      missingBlobs: [BLOB],
      reports: [
        { text: `broken link from tree ${TREE} to blob ${BLOB}`, missingBlob: BLOB },
        { text: `error in tree ${TREE}: duplicateEntries: contains duplicate file entries` },
        { text: `broken link from commit ${BLOB} to tree ${TREE}` },
      ],
    });
  });

  it('finds nothing in the output of a clean repository', () => {
    assert.deepEqual(parseFsckOutput(''), { missingBlobs: [], reports: [] });
  });
});

describe('fsckRepository on a repository that lost a blob', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'grove-fsck-'));
  const work = path.join(dir, 'work');
  const bare = path.join(dir, 'repo.git');
  const run = (args: string[], cwd = dir) => execFileSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@example.com', ...args], { cwd, encoding: 'utf8' });
  run(['init', '-q', '-b', 'main', work]);
  execFileSync('sh', ['-c', 'echo readme > README.md && head -c 5000 /dev/urandom > data.bin'], { cwd: work });
  run(['add', '.'], work);
  run(['commit', '-q', '-m', 'files'], work);
  run(['clone', '-q', '--bare', work, bare]);
  const lost = run(['rev-parse', 'HEAD:data.bin'], work).trim();
  const bytes = execFileSync('git', ['cat-file', 'blob', lost], { cwd: work });
  const git = new GitRunner({ homeDir: dir, maxProcesses: 4, maxProcessesPerRepo: 4, queueTimeoutMs: 10_000 });
  // The repository an eviction leaves: every object but that blob.
  before(() => evictBlobs(git, bare, new Set([lost])));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const store = (held: Buffer | null): StoredBlobs => ({ heldSize: (oid) => (oid === lost && held !== null ? bytes.length : null), open: () => Readable.from([held!]) });

  it('is clean when the store holds the blob for the repository and its bytes hash to its id', async () => {
    assert.deepEqual(await fsckRepository(git, bare, store(bytes)), { ok: true, problems: [], moreProblems: 0, storedBlobs: { count: 1, bytes: bytes.length } });
  });

  it('reports the blob missing when the store does not hold it, once, with no separate broken link', async () => {
    const report = await fsckRepository(git, bare, store(null));
    assert.equal(report.ok, false);
    assert.deepEqual(report.problems, [{ kind: 'missing', oid: lost, message: `missing blob ${lost}: neither git nor the chunk store holds it for this repository` }]);
  });

  it("reports a store copy whose bytes do not hash to the blob's id", async () => {
    const damaged = Buffer.from(bytes);
    damaged[100] = damaged[100]! ^ 0xff;
    const report = await fsckRepository(git, bare, store(damaged));
    assert.equal(report.ok, false);
    assert.equal(report.problems[0]?.kind, 'store');
    assert.match(report.problems[0]!.message, new RegExp(`copy of blob ${lost} \\(5000 bytes\\) hashes to [0-9a-f]{40}`));
    assert.equal(report.storedBlobs.count, 0);
  });

  it('reports damage git finds in objects it holds', async () => {
    rmSync(path.join(bare, 'HEAD'));
    const report = await fsckRepository(git, bare, store(bytes));
    assert.equal(report.ok, false);
    assert.ok(report.problems.some((p) => p.kind === 'git'), JSON.stringify(report));
  });
});
