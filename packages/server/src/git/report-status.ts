/**
 * report-status / report-status-v2 (gitprotocol-pack, "Report Status"):
 *
 *   PKT("unpack ok" | "unpack <error>")
 *   *(PKT("ok <ref>") | PKT("ng <ref> <reason>"))
 *   flush-pkt
 *
 * With side-band the whole report is itself pkt-lined inside band 1, then an outer
 * flush ends the response. Plain ok/ng is valid report-status-v2.
 */
import { FLUSH_PKT, pktLine } from './pkt-line.ts';

export type RefResult = { readonly ref: string; readonly ok: true } | { readonly ref: string; readonly ok: false; readonly reason: string };

export function reportStatus(unpackError: string | null, results: readonly RefResult[]): Buffer {
  const lines: Buffer[] = [pktLine(unpackError === null ? 'unpack ok\n' : `unpack ${oneLine(unpackError)}\n`)];
  for (const result of results) {
    lines.push(pktLine(result.ok ? `ok ${result.ref}\n` : `ng ${result.ref} ${oneLine(result.reason)}\n`));
  }
  lines.push(FLUSH_PKT);
  return Buffer.concat(lines);
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').trim() || 'failed';
}
