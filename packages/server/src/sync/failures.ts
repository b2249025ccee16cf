/** How a failed sync is reported and retried (docs/remote-sync.md, "Failures"). Pure. */
import { OutboundRefusedError } from '../outbound/guarded-fetch.ts';
import { RemoteGitError } from '../repo/remote-git.ts';
import { SecretOpenError } from '../secrets/secret-box.ts';
import { CredentialUnusableError } from './upstream-store.ts';

/** Ten failures in a row pause an upstream. */
export const PAUSE_AFTER_FAILURES = 10;

/** Backoff after `failures` failures in a row: 30 s × 2ⁿ⁻¹, jittered ±20 %, at most an hour. */
export function backoffMs(failures: number, random: () => number = Math.random): number {
  const base = Math.min(3600_000, 30_000 * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export interface SyncFailure {
  readonly code: string;
  /** Already redacted: git's output is scrubbed where it is read. */
  readonly message: string;
  /** Retrying cannot help until someone acts (a rejected credential, a missing remote): pause at once. */
  readonly pause: boolean;
}

export function failureOf(error: unknown): SyncFailure {
  if (error instanceof RemoteGitError) return { code: error.failure, message: error.message, pause: error.failure === 'credential_rejected' || error.failure === 'remote_not_found' };
  if (error instanceof OutboundRefusedError) return { code: 'remote_refused', message: error.message, pause: true };
  if (error instanceof SecretOpenError || error instanceof CredentialUnusableError) return { code: 'credential_unusable', message: error.message, pause: true };
  if ((error as NodeJS.ErrnoException).code === 'ENOTFOUND') return { code: 'remote_unreachable', message: `the remote's host name does not resolve`, pause: false };
  return { code: 'internal', message: 'internal error during the sync (see the server log)', pause: false };
}
