#!/usr/bin/env node
// The grove command of a clone: Node >= 22.18 runs the TypeScript sources directly (type
// stripping). Workspace packages resolve to their sources through the "grove-source" export
// condition; the installed package (packages/server/bin/grove.js) runs the built dist/ instead.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`grove: Node.js >= 22.18 is required (this is ${process.version})\n`);
  process.exit(1);
}
const { registerHooks } = await import('node:module');
registerHooks({
  resolve: (specifier, context, nextResolve) => nextResolve(specifier, { ...context, conditions: [...context.conditions, 'grove-source'] }),
});
const { runCli } = await import('../packages/server/src/cli/main.ts');
await runCli(process.argv);
