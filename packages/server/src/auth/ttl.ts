/** Time-to-live values: "90s", "30m", "1h", "7d", or a number of seconds. Pure. */

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

export const MAX_KEY_TTL_SECONDS = 366 * 86400;

export function parseTtl(value: string | number): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : null;
  const match = /^(\d{1,9})([smhd])?$/.exec(value.trim());
  if (!match) return null;
  const seconds = Number(match[1]) * UNIT_SECONDS[(match[2] ?? 's') as keyof typeof UNIT_SECONDS];
  return seconds > 0 ? seconds : null;
}
