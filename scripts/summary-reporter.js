// A node:test reporter that prints one closing line: "N passed, N failed, N skipped",
// followed by each failure's file, name and error (run-tests.js prints them again after the
// last pass, so the end of a long run's output says what failed and why). Suites are not
// counted, only tests.
const MAX_ERROR_LINES = 30;

export default async function* summaryReporter(source) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const failures = [];
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    if (event.data.details?.type === 'suite') {
      // A suite fails without a failing test when its hooks throw: count that.
      if (event.type === 'test:fail' && event.data.details?.error?.failureType === 'hookFailed') {
        failed++;
        failures.push(describeFailure(event.data));
      }
      continue;
    }
    if (event.data.skip || event.data.todo) skipped++;
    else if (event.type === 'test:pass') passed++;
    else {
      failed++;
      failures.push(describeFailure(event.data));
    }
  }
  yield `\n${passed} passed, ${failed} failed, ${skipped} skipped\n`;
  for (const failure of failures) yield failure;
}

function describeFailure(data) {
  const error = data.details?.error;
  const cause = error?.cause ?? error;
  const text = String(cause?.stack ?? cause?.message ?? cause ?? 'unknown error');
  const lines = text.split('\n');
  const shown = lines.slice(0, MAX_ERROR_LINES).map((line) => `    ${line}`).join('\n');
  const more = lines.length > MAX_ERROR_LINES ? `\n    … ${lines.length - MAX_ERROR_LINES} more lines` : '';
  return `\nFAILED ${data.file ?? ''} › ${data.name}\n${shown}${more}\n`;
}
