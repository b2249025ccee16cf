#!/usr/bin/env node
// The grove command. Node >= 22.18 runs the TypeScript sources directly (type stripping).
import { runCli } from '../packages/server/src/cli/main.ts';

await runCli(process.argv);
