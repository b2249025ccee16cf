import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isGitForWindows, WINDOWS_OBJECT_LIMIT, windowsWarnings } from './windows-clients.ts';

test('Git for Windows is told apart by its agent string', () => {
  for (const agent of ['git/2.47.1.windows.1', 'git/2.39.0.windows.2', 'git/2.45.2.windows.1 (something)']) assert.equal(isGitForWindows(agent), true, agent);
  for (const agent of ['git/2.39.5', 'git/2.43.0', 'JGit/6.7', 'git/isomorphic-git@1.25.0', 'Mozilla/5.0 (Windows NT 10.0)', '', null, undefined]) assert.equal(isGitForWindows(agent), false, String(agent));
});

test('a warning names each blob of 4 GiB or more, and only those', () => {
  const big = 'a'.repeat(40);
  const warnings = windowsWarnings([{ oid: 'b'.repeat(40), size: WINDOWS_OBJECT_LIMIT - 1 }, { oid: big, size: WINDOWS_OBJECT_LIMIT }]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, new RegExp(`blob ${big} is ${WINDOWS_OBJECT_LIMIT} bytes: Git for Windows truncates objects of 4 GiB or more`));
  assert.deepEqual(windowsWarnings([]), []);
});
