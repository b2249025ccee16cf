import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ZERO_OID } from '../git/oid.ts';
import { GitRunner } from './git-command.ts';
import { failedRef, planBatch, RefTransaction, type TransactionResult } from './ref-transaction.ts';
import { findRef } from './ref-snapshot.ts';
import { RefView } from './ref-view.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const group = (...refs: string[]) => ({ updates: refs.map((ref) => ({ ref, oldOid: A, newOid: B })) });

describe('planBatch', () => {
  it('puts writers of different refs into one batch', () => {
    const queued = [group('refs/heads/a'), group('refs/heads/b'), group('refs/heads/c', 'refs/heads/d')];
    assert.deepEqual(planBatch(queued), { batch: queued, waiting: [] });
  });

  it('leaves a writer of a ref already in the batch for the next one', () => {
    const [first, second, third] = [group('refs/heads/a'), group('refs/heads/a'), group('refs/heads/b')];
    assert.deepEqual(planBatch([first, second, third]), { batch: [first, third], waiting: [second] });
  });

  it('keeps writers of one ref in arrival order: a later writer never overtakes a waiting one', () => {
    const [x, y, z] = [group('refs/heads/a'), group('refs/heads/a', 'refs/heads/b'), group('refs/heads/b')];
    assert.deepEqual(planBatch([x, y, z]), { batch: [x], waiting: [y, z] });
  });

  it('always takes the first writer, whatever it holds', () => {
    const odd = group('refs/heads/a', 'refs/heads/a');
    assert.deepEqual(planBatch([odd, group('refs/heads/b')]).batch[0], odd);
  });
});

describe('failedRef', () => {
  it('names the ref whose compare-and-swap failed', () => {
    assert.equal(failedRef(`fatal: cannot lock ref 'refs/heads/x': is at ${A} but expected ${B}\n`), 'refs/heads/x');
    assert.equal(failedRef("fatal: cannot lock ref 'refs/heads/x': reference already exists\n"), 'refs/heads/x');
    assert.equal(failedRef(`fatal: prepare: cannot update ref 'refs/heads/x': trying to write non-commit object ${A} to branch 'refs/heads/x'\n`), 'refs/heads/x');
  });

  it('names none when two refs of the batch clash with each other, or git says nothing it can parse', () => {
    assert.equal(failedRef("fatal: cannot lock ref 'refs/heads/d/e': cannot process 'refs/heads/d' and 'refs/heads/d/e' at the same time\n"), null);
    assert.equal(failedRef('fatal: something else entirely\n'), null);
  });
});

describe('RefTransaction group commit', () => {
  let dir: string;
  let gitDir: string;
  let git: GitRunner;
  let refs: RefView;
  let commits: string[];

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'grove-reftx-'));
    gitDir = path.join(dir, 'repo.git');
    const run = (args: string[], input?: string) => execFileSync('git', args, { cwd: dir, input, env: { PATH: process.env.PATH, GIT_CONFIG_NOSYSTEM: '1', HOME: dir, GIT_AUTHOR_NAME: 'A', GIT_AUTHOR_EMAIL: 'a@example.com', GIT_COMMITTER_NAME: 'A', GIT_COMMITTER_EMAIL: 'a@example.com' } }).toString().trim();
    run(['init', '-q', '--bare', gitDir]);
    const tree = run(['--git-dir', gitDir, 'mktree'], '');
    commits = [1, 2, 3].map((n) => run(['--git-dir', gitDir, 'commit-tree', tree, '-m', `c${n}`], ''));
    git = new GitRunner({ homeDir: dir, maxProcesses: 8, maxProcessesPerRepo: 8, queueTimeoutMs: 10_000 });
    refs = new RefView(git);
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Queues `writes` while the repository's queue is held, so that they all form the next batch. */
  async function inOneBatch(transaction: RefTransaction, writes: (() => Promise<TransactionResult | TransactionResult[]>)[]): Promise<(TransactionResult | TransactionResult[])[]> {
    let release!: () => void;
    const held = transaction.exclusive(gitDir, () => new Promise<void>((resolve) => (release = resolve)));
    const results = writes.map((write) => write());
    release();
    await held;
    return Promise.all(results);
  }

  it('applies writers of different branches in one update-ref run', async () => {
    const transaction = new RefTransaction(git, refs);
    const results = await inOneBatch(transaction, [
      () => transaction.apply(gitDir, [{ ref: 'refs/heads/one', oldOid: ZERO_OID, newOid: commits[0]! }]),
      () => transaction.apply(gitDir, [{ ref: 'refs/heads/two', oldOid: ZERO_OID, newOid: commits[1]! }]),
      () => transaction.applyEach(gitDir, [{ ref: 'refs/heads/three', oldOid: ZERO_OID, newOid: commits[2]! }]),
    ]);
    assert.deepEqual(results, [{ ok: true }, { ok: true }, [{ ok: true }]]);
    assert.equal(transaction.stats.transactions, 1);
    const snapshot = await refs.read(gitDir);
    assert.equal(findRef(snapshot, 'refs/heads/two')?.oid, commits[1]);
  });

  it('fails only the writer whose compare-and-swap is stale; the other writer in the batch still lands', async () => {
    const transaction = new RefTransaction(git, refs);
    const [stale, fresh] = await inOneBatch(transaction, [
      () => transaction.apply(gitDir, [{ ref: 'refs/heads/one', oldOid: commits[2]!, newOid: commits[1]! }]),
      () => transaction.apply(gitDir, [{ ref: 'refs/heads/two', oldOid: commits[1]!, newOid: commits[2]! }]),
    ]);
    assert.equal((stale as TransactionResult).ok, false);
    assert.match((stale as { reason: string }).reason, /stale old value: the ref is now at/);
    assert.deepEqual(fresh, { ok: true });
    const snapshot = await refs.read(gitDir);
    assert.equal(findRef(snapshot, 'refs/heads/one')?.oid, commits[0], 'the stale writer moved nothing');
    assert.equal(findRef(snapshot, 'refs/heads/two')?.oid, commits[2]);
  });

  it('fails an atomic writer alone, all of its refs unmoved, when one of them is stale', async () => {
    const transaction = new RefTransaction(git, refs);
    const [atomic, other] = await inOneBatch(transaction, [
      () => transaction.apply(gitDir, [
        { ref: 'refs/heads/four', oldOid: ZERO_OID, newOid: commits[0]! },
        { ref: 'refs/heads/three', oldOid: ZERO_OID, newOid: commits[0]! }, // exists: stale
      ]),
      () => transaction.apply(gitDir, [{ ref: 'refs/heads/five', oldOid: ZERO_OID, newOid: commits[1]! }]),
    ]);
    assert.equal((atomic as TransactionResult).ok, false);
    assert.deepEqual(other, { ok: true });
    const snapshot = await refs.read(gitDir);
    assert.equal(findRef(snapshot, 'refs/heads/four'), undefined, 'no ref of the atomic writer moved');
    assert.equal(findRef(snapshot, 'refs/heads/three')?.oid, commits[2]);
    assert.equal(findRef(snapshot, 'refs/heads/five')?.oid, commits[1]);
  });

  it('answers each writer on its own when refs of the batch clash with each other', async () => {
    const transaction = new RefTransaction(git, refs);
    const [file, directory] = await inOneBatch(transaction, [
      () => transaction.apply(gitDir, [{ ref: 'refs/heads/d', oldOid: ZERO_OID, newOid: commits[0]! }]),
      () => transaction.apply(gitDir, [{ ref: 'refs/heads/d/e', oldOid: ZERO_OID, newOid: commits[0]! }]),
    ]);
    assert.deepEqual(file, { ok: true }, 'the first writer lands');
    assert.equal((directory as TransactionResult).ok, false);
    assert.match((directory as { reason: string }).reason, /both a file and a directory/);
  });

  it('keeps the ref view exact: a branch moved by a transaction is read back without reading the repository again', async () => {
    const transaction = new RefTransaction(git, refs);
    const before = await refs.read(gitDir);
    const reads = git.spawnStats.get('for-each-ref')?.count ?? 0;
    assert.deepEqual(await transaction.apply(gitDir, [{ ref: 'refs/heads/one', oldOid: commits[0]!, newOid: commits[2]! }]), { ok: true });
    const after = await refs.read(gitDir);
    assert.equal(findRef(after, 'refs/heads/one')?.oid, commits[2]);
    assert.notEqual(after.digest, before.digest);
    assert.equal(git.spawnStats.get('for-each-ref')?.count ?? 0, reads, 'the view was updated in place, not read again');
    const names = after.refs.map((r) => r.name);
    assert.deepEqual(names, [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), 'still sorted in byte order');
  });
});
