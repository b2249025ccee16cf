#!/usr/bin/env node
// The reliability torture and race tests on their own: `npm run torture` runs the CI-sized
// form (50 SIGKILL trials); `npm run torture -- --long` runs 500.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const long = process.argv.includes('--long');
const result = spawnSync(process.execPath, [path.join(root, 'scripts/run-tests.js'), 'packages/server/test/crash-torture.test.ts', 'packages/server/test/races.test.ts'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, GROVE_TORTURE_TRIALS: process.env.GROVE_TORTURE_TRIALS ?? (long ? '500' : '50'), GROVE_RACE_ROUNDS: process.env.GROVE_RACE_ROUNDS ?? (long ? '50' : '5') },
});
process.exit(result.status ?? 1);
