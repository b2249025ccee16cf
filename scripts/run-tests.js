#!/usr/bin/env node
// Runs every test file with Node's test runner: unit tests beside the code
// (packages/*/src/**/*.test.ts) and integration tests (packages/*/test/**/*.test.ts).
// Prints the spec report, then one summary line: "N passed, N failed, N skipped".
// Extra arguments are passed to `node --test` (e.g. a file path or --test-name-pattern).
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const files = args.some((a) => !a.startsWith('-'))
  ? []
  : globSync(['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts'], { cwd: root }).sort();
const result = spawnSync(
  process.execPath,
  [
    // Workspace packages resolve to their TypeScript sources, not their built dist/.
    '--conditions=grove-source',
    '--test',
    `--test-concurrency=${process.env.GROVE_TEST_CONCURRENCY ?? '2'}`,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    `--test-reporter=${path.join(root, 'scripts/summary-reporter.js')}`,
    '--test-reporter-destination=stdout',
    ...args,
    ...files,
  ],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
