#!/usr/bin/env node
// Runs every test file with Node's test runner: unit tests beside the code
// (packages/*/src/**/*.test.ts) and integration tests (packages/*/test/**/*.test.ts).
//
//   --database sqlite     metadata in the embedded SQLite file (the default)
//   --database postgres   metadata in a private PostgreSQL cluster started for this run
//   --database cluster    every server a cluster of one: metadata and refs in a private
//                         PostgreSQL cluster, packs in a directory object store per server
//   --database all        the whole suite three times: sqlite, postgres, cluster
//
// Prints the spec report, then one summary line: "N passed, N failed, N skipped" (summed
// over the databases run). Other arguments are passed to `node --test` (e.g. a file path or
// --test-name-pattern).
import { spawn } from 'node:child_process';
import { globSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { PostgresCluster, postgresAvailable } = await import(path.join(root, 'packages/server/test/helpers/postgres-cluster.ts'));
const argv = process.argv.slice(2);
let database = 'sqlite';
const args = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--database') database = argv[++i];
  else if (argv[i].startsWith('--database=')) database = argv[i].slice('--database='.length);
  else args.push(argv[i]);
}
const databases = database === 'all' ? ['sqlite', 'postgres', 'cluster'] : [database];
for (const name of databases) {
  if (name !== 'sqlite' && name !== 'postgres' && name !== 'cluster') {
    console.error(`run-tests: --database must be sqlite, postgres, all or cluster, got ${name}`);
    process.exit(2);
  }
}
if ((databases.includes('postgres') || databases.includes('cluster')) && !postgresAvailable()) {
  console.error('run-tests: PostgreSQL is not installed (Debian: apt-get install postgresql); .ci/run installs it');
  process.exit(2);
}
const files = args.some((a) => !a.startsWith('-'))
  ? []
  : globSync(['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts'], { cwd: root }).sort();

const scratch = mkdtempSync(path.join(os.tmpdir(), 'grove-test-run-'));
const totals = { passed: 0, failed: 0, skipped: 0 };
/** Each pass's failures as its summary reporter wrote them, printed again at the very end. */
const failures = [];
let status = 0;
for (const name of databases) {
  if (databases.length > 1) console.log(`\n=== metadata database: ${name} ===\n`);
  const postgres = name === 'sqlite' ? null : await PostgresCluster.start();
  const summaryFile = path.join(scratch, `${name}.summary`);
  try {
    const env = postgres === null ? {} : { GROVE_TEST_POSTGRES_URL: postgres.url };
    if (name === 'cluster') env.GROVE_TEST_OBJECT_STORE_ROOT = path.join(scratch, 'objects');
    const code = await runSuite(env, summaryFile);
    if (code !== 0) status = code;
  } finally {
    await postgres?.stop();
  }
  const [line = '', ...failureTexts] = readFileSync(summaryFile, 'utf8').trim().split('\nFAILED ');
  for (const failure of failureTexts) failures.push(`[${name}] ${failure.trimEnd()}`);
  const [, passed, failed, skipped] = /(\d+) passed, (\d+) failed, (\d+) skipped/.exec(line) ?? [];
  if (passed === undefined) status ||= 1;
  totals.passed += Number(passed ?? 0);
  totals.failed += Number(failed ?? 0);
  totals.skipped += Number(skipped ?? 0);
  if (databases.length > 1) console.log(`\n${name}: ${line}`);
}
rmSync(scratch, { recursive: true, force: true });
if (failures.length > 0) console.log(`\nfailures (${failures.length}):\n\n${failures.join('\n\n')}`);
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(status);

function runSuite(env, summaryFile) {
  const child = spawn(
    process.execPath,
    [
      // Workspace packages resolve to their TypeScript sources, not their built dist/.
      '--conditions=grove-source',
      '--test',
      `--test-concurrency=${process.env.GROVE_TEST_CONCURRENCY ?? '2'}`,
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      `--test-reporter=${path.join(root, 'scripts/summary-reporter.js')}`,
      `--test-reporter-destination=${summaryFile}`,
      ...args,
      ...files,
    ],
    { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } },
  );
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}
