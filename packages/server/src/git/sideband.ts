/**
 * Side-band multiplexing (gitprotocol-capabilities, "side-band, side-band-64k").
 *
 * Each packet is `<len><band><data>`: band 1 carries data (the pack, or the
 * report-status stream of a push), band 2 progress text the client prints as
 * `remote: …`, band 3 a fatal error. git's writer caps data at packet_max - 5:
 * 65515 bytes with side-band-64k, 995 with side-band.
 */
import { pktLine } from './pkt-line.ts';

export const SIDEBAND_DATA = 1;
export const SIDEBAND_PROGRESS = 2;
export const SIDEBAND_ERROR = 3;

export type Band = typeof SIDEBAND_DATA | typeof SIDEBAND_PROGRESS | typeof SIDEBAND_ERROR;

export const SIDEBAND_64K_MAX_DATA = 65515;

/** An empty band-1 packet: clients ignore it; it keeps idle timers and proxies from cutting a slow response. */
export const SIDEBAND_KEEPALIVE = Buffer.from('0005\x01', 'latin1');
export const SIDEBAND_MAX_DATA = 995;

/** Frames `data` on `band`, split into as many packets as the limit requires. */
export function sidebandPackets(band: Band, data: Buffer | string, maxData = SIDEBAND_64K_MAX_DATA): Buffer[] {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const packets: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += maxData) {
    const chunk = bytes.subarray(offset, Math.min(offset + maxData, bytes.length));
    packets.push(pktLine(Buffer.concat([Buffer.from([band]), chunk])));
  }
  return packets;
}
