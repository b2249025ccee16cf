#!/usr/bin/env node
// The grove command of the installed package (npm install -g @grove/server, npx @grove/server):
// runs the compiled JavaScript in dist/. A clone runs the TypeScript sources through the
// repository's bin/grove.js instead.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`grove: Node.js >= 22.18 is required (this is ${process.version})\n`);
  process.exit(1);
}
const { runCli } = await import('../dist/cli/main.js');
await runCli(process.argv);
