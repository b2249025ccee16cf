import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';
import { pushAll, revParse } from './helpers/read-api.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const GROVE_BIN = path.join(ROOT, 'bin/grove.js');
const COMPILE_CACHE = path.join(os.tmpdir(), 'grove-test-node-compile-cache');

interface CliRun {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

function grove(args: readonly string[], env: Record<string, string>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [GROVE_BIN, ...args], { cwd: ROOT, env: { PATH: process.env.PATH, NODE_COMPILE_CACHE: COMPILE_CACHE, ...env }, encoding: 'buffer', timeout: 20_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr: stderr.toString('utf8') });
    });
  });
}

function ok(run: CliRun): Buffer {
  assert.equal(run.code, 0, `exit ${run.code}: ${run.stderr}`);
  assert.equal(run.stderr, '');
  return run.stdout;
}

describe('grove cat, ls, tree, log, show, diff, blame and archive', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const binary = Buffer.from([0, 1, 2, 255, 10, 13, 0]);

  before(async () => {
    server = await startTestServer();
    env = { GROVE_URL: server.url, GROVE_TOKEN: server.token };
    work = await tempDir();
    await initWorkRepo(work.path);
    await commitFile(work.path, 'docs/guide.md', 'step one\n', 'guide');
    await commitFile(work.path, 'bin.dat', binary, 'binary');
    await gitOk(['checkout', '-q', '-b', 'agent/fix'], { cwd: work.path });
    await commitFile(work.path, 'docs/guide.md', 'step one\nstep two\n', 'second step');
    await gitOk(['checkout', '-q', 'main'], { cwd: work.path });
    await pushAll(server, await server.createRepo('acme', 'cli'), work.path);
  });

  after(async () => {
    await server.close();
    await work[Symbol.asyncDispose]();
  });

  it('cat --range prints only those bytes of a file; --blob reads by object id, whole or a range', async () => {
    assert.deepEqual(ok(await grove(['cat', 'acme/cli', 'bin.dat', '--range', '2-4'], env)), binary.subarray(2, 5));
    assert.deepEqual(ok(await grove(['cat', 'acme/cli', 'bin.dat', '--range', '-2'], env)), binary.subarray(-2));
    assert.equal(ok(await grove(['cat', 'acme/cli', 'docs/guide.md', '--ref', 'agent/fix', '--range', '5-'], env)).toString(), 'one\nstep two\n');
    const oid = await revParse(work.path, 'main:bin.dat');
    assert.deepEqual(ok(await grove(['cat', 'acme/cli', oid, '--blob'], env)), binary);
    assert.deepEqual(ok(await grove(['cat', 'acme/cli', oid, '--blob', '--range', '3-3'], env)), binary.subarray(3, 4));
  });

  it('cat refuses a malformed --range, --ref with --blob, and a range past the end, with exit 1 and a message', async () => {
    for (const range of ['abc', '-', '5-2', '-0']) {
      const run = await grove(['cat', 'acme/cli', 'bin.dat', '--range', range], env);
      assert.equal(run.code, 1, `--range ${range}`);
      assert.match(run.stderr, /--range/);
    }
    const both = await grove(['cat', 'acme/cli', '0'.repeat(40), '--blob', '--ref', 'main'], env);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /--ref does not apply to --blob/);
    const past = await grove(['cat', 'acme/cli', 'bin.dat', '--range', '100-'], env);
    assert.equal(past.code, 1);
    assert.match(past.stderr, /outside the blob/);
  });

  it('cat prints a file byte for byte, at a ref', async () => {
    assert.deepEqual(ok(await grove(['cat', 'acme/cli', 'bin.dat'], env)), binary);
    assert.equal(ok(await grove(['cat', 'acme/cli', 'docs/guide.md', '--ref', 'agent/fix'], env)).toString(), 'step one\nstep two\n');
  });

  it('ls, tree, log and show print JSON', async () => {
    const listing = JSON.parse(ok(await grove(['ls', 'acme/cli'], env)).toString());
    assert.deepEqual(listing.entries.map((e: { name: string }) => e.name), ['bin.dat', 'docs']);
    const recursive = JSON.parse(ok(await grove(['ls', 'acme/cli', 'docs', '--recursive'], env)).toString());
    assert.deepEqual(recursive.entries.map((e: { path: string }) => e.path), ['docs/guide.md']);
    const tree = JSON.parse(ok(await grove(['tree', 'acme/cli', 'agent/fix', '--recursive'], env)).toString());
    assert.equal(tree.sha, await revParse(work.path, 'agent/fix'));
    const log = JSON.parse(ok(await grove(['log', 'acme/cli', '--ref', 'agent/fix', '--limit', '2'], env)).toString());
    assert.deepEqual(log.items.map((c: { message: string }) => c.message), ['second step', 'binary']);
    assert.equal(typeof log.nextCursor, 'string');
    const show = JSON.parse(ok(await grove(['show', 'acme/cli', 'agent/fix'], env)).toString());
    assert.deepEqual(show.files, [{ path: 'docs/guide.md', status: 'modified', additions: 1, deletions: 0, binary: false }]);
  });

  it('diff prints a unified diff that git apply accepts, or JSON with --json', async () => {
    const patch = ok(await grove(['diff', 'acme/cli', 'main...agent/fix'], env));
    assert.match(patch.toString(), /^\+step two$/m);
    const patchFile = path.join(work.path, '..', `${path.basename(work.path)}.patch`);
    await writeFile(patchFile, patch);
    const check = await git(['apply', '--check', patchFile], { cwd: work.path });
    assert.equal(check.code, 0, check.stderr);
    const json = JSON.parse(ok(await grove(['diff', 'acme/cli', 'main...agent/fix', '--json'], env)).toString());
    assert.deepEqual(json.files.map((f: { path: string; status: string }) => [f.path, f.status]), [['docs/guide.md', 'modified']]);
  });

  it('blame prints ranges; archive writes a .tar.gz to stdout', async () => {
    const blame = JSON.parse(ok(await grove(['blame', 'acme/cli', 'docs/guide.md', '--ref', 'agent/fix'], env)).toString());
    assert.deepEqual(blame.ranges.map((r: { start: number; lines: number }) => [r.start, r.lines]), [[1, 1], [2, 1]]);
    const archive = ok(await grove(['archive', 'acme/cli', 'main'], env));
    assert.deepEqual([archive[0], archive[1]], [0x1f, 0x8b]);
  });

  it('reports errors on stderr with the catalogue code and exits 1', async () => {
    const missing = await grove(['cat', 'acme/cli', 'nope.txt'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^grove: not_found: /);
    assert.equal(missing.stdout.length, 0);
    const badSpec = await grove(['diff', 'acme/cli', 'main..agent/fix'], env);
    assert.equal(badSpec.code, 1);
    assert.match(badSpec.stderr, /BASE\.\.\.HEAD/);
  });
});
