/**
 * The messages between Grove and its git launcher (git-launcher.ts, launcher-main.ts).
 *
 * Grove sends `base` once, then a `spawn` for each child over the IPC channel. The launcher opens three connections to Grove's
 * Unix socket, writes on each a header of the command's id (32 hex digits) and the stream's
 * index (0 stdin, 1 stdout, 2 stderr), then forks git with those sockets as its stdio and
 * closes its own copies: from then on git's bytes flow straight between git and Grove, with
 * no copy through the launcher. It answers `spawned` (with the pid) or `failed`, and `exit`
 * when the child is reaped.
 */

export const HEADER_BYTES = 33;

/** Sent first, once: what every child shares (spawn messages carry only what differs). */
export interface BaseMessage {
  readonly t: 'base';
  readonly file: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

export interface SpawnMessage {
  readonly t: 'spawn';
  readonly id: string;
  /** After the base arguments. */
  readonly args: readonly string[];
  /** Added to the base environment. */
  readonly env: Readonly<Record<string, string>>;
}

export type LauncherMessage =
  | { readonly t: 'spawned'; readonly id: string; readonly pid: number }
  | { readonly t: 'failed'; readonly id: string; readonly message: string }
  | { readonly t: 'exit'; readonly id: string; readonly code: number | null; readonly signal: NodeJS.Signals | null };
