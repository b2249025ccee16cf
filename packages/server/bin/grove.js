#!/usr/bin/env -S node --max-semi-space-size=8
// The grove command of the installed package (npm install -g @grove/server, npx @grove/server):
// runs the compiled JavaScript in dist/. A clone runs the TypeScript sources through the
// repository's bin/grove.js instead. The young generation is capped at 2 x 8 MiB: V8's default
// lets it grow to 64 MiB under load, which is most of an idle server's resident memory and
// buys a git server nothing (pack bytes live in Buffers, outside the JavaScript heap).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`grove: Node.js >= 22.18 is required (this is ${process.version})\n`);
  process.exit(1);
}
const { runCli } = await import('../dist/cli/main.js');
await runCli(process.argv);
