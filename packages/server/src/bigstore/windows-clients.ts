/**
 * Git for Windows keeps object sizes in a 32-bit `unsigned long`, so a blob of 4 GiB or more
 * is truncated on the way in or out (git-for-windows#6012; partial fixes upstream in 2026).
 * A client that names itself Git for Windows (`agent=git/2.47.1.windows.1`, or its HTTP
 * User-Agent) is warned over side-band when a fetch sends it such a blob, so the damage is
 * not silent. Pure.
 */
import type { BlobSize } from './splice.ts';

export const WINDOWS_OBJECT_LIMIT = 4 * 1024 ** 3;

/** Whether a git agent string is Git for Windows's. */
export function isGitForWindows(agent: string | null | undefined): boolean {
  return agent !== null && agent !== undefined && /^git\/[^ ]*\.windows\.\d+/i.test(agent);
}

/** One progress line (`warning: …`, no newline) per blob the client cannot hold; git prints it as `remote: warning: …`. */
export function windowsWarnings(blobs: readonly BlobSize[]): string[] {
  return blobs
    .filter((blob) => blob.size >= WINDOWS_OBJECT_LIMIT)
    .map((blob) => `warning: grove: blob ${blob.oid} is ${blob.size} bytes: Git for Windows truncates objects of 4 GiB or more (git-for-windows#6012); read it with the API (grove cat --blob, ranges) or use git on Linux, macOS or WSL`);
}
