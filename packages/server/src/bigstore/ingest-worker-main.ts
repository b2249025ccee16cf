/**
 * The ingest worker's entry. In a clone, workspace packages resolve to their TypeScript
 * sources through the "grove-source" condition, which bin/grove.js adds with a module
 * hook; hooks are per thread, so the worker adds it again before loading anything. Built
 * (dist/), the condition is not needed and not added.
 */
import { registerHooks } from 'node:module';

if (import.meta.url.endsWith('.ts')) {
  registerHooks({
    resolve: (specifier, context, nextResolve) => nextResolve(specifier, { ...context, conditions: [...context.conditions, 'grove-source'] }),
  });
}
await import(`./ingest-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`);
