/** Validation of repo ref policy rules (`PUT /repos/{org}/{repo}/policies`). Pure. */
import type { RefRule } from './authorize.ts';
import { checkBranchGlob } from './glob.ts';

const MAX_RULES = 100;
const FLAGS = ['protected', 'noForcePush', 'noDelete'] as const;

export function parseRefRules(value: unknown): { rules: RefRule[] } | { error: string } {
  if (!Array.isArray(value)) return { error: 'rules must be an array' };
  if (value.length > MAX_RULES) return { error: `at most ${MAX_RULES} rules` };
  const rules: RefRule[] = [];
  for (const [index, item] of value.entries()) {
    const where = `rules[${index}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return { error: `${where} must be an object` };
    const { pattern, ...flags } = item as Record<string, unknown>;
    const problem = checkBranchGlob(pattern as string);
    if (problem) return { error: `${where}.pattern: ${problem}` };
    const rule: { pattern: string; protected?: boolean; noForcePush?: boolean; noDelete?: boolean } = { pattern: pattern as string };
    for (const [key, flag] of Object.entries(flags)) {
      if (!(FLAGS as readonly string[]).includes(key)) return { error: `${where} has unknown field ${JSON.stringify(key)}` };
      if (typeof flag !== 'boolean') return { error: `${where}.${key} must be a boolean` };
      if (flag) rule[key as (typeof FLAGS)[number]] = true;
    }
    rules.push(rule);
  }
  return { rules };
}
