#!/usr/bin/env node
// The grove command. Node >= 22.18 runs the TypeScript sources directly (type stripping).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`grove: Node.js >= 22.18 is required (this is ${process.version})\n`);
  process.exit(1);
}
const { runCli } = await import('../packages/server/src/cli/main.ts');
await runCli(process.argv);
