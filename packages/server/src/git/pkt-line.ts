/**
 * pkt-line framing (gitprotocol-common, "pkt-line Format").
 *
 *   pkt-line     = data-pkt / flush-pkt / delim-pkt / response-end-pkt
 *   data-pkt     = pkt-len pkt-payload     ; pkt-len = 4 lowercase hex digits, counts itself
 *   flush-pkt    = "0000"                  ; end of a message or list
 *   delim-pkt    = "0001"                  ; v2: separates sections
 *   response-end = "0002"                  ; v2 stateless: never sent on the HTTP wire
 *
 * The largest packet is 65520 bytes (65516 of payload). "0003" is invalid and "0004"
 * (empty data) is never written. Text payloads may or may not end in LF: readers strip
 * one. Payloads are 8-bit clean.
 */

export const MAX_PKT_LEN = 65520;
export const MAX_PKT_PAYLOAD = MAX_PKT_LEN - 4;

export const FLUSH_PKT = Buffer.from('0000');
export const DELIM_PKT = Buffer.from('0001');

export type Packet =
  | { readonly kind: 'flush' }
  | { readonly kind: 'delim' }
  | { readonly kind: 'response-end' }
  | { readonly kind: 'data'; readonly payload: Buffer };

/** A malformed pkt-line stream. The message is safe to show to the client. */
export class PktLineError extends Error {
  override name = 'PktLineError';
}

/** Frames one data packet. Strings are written as UTF-8. */
export function pktLine(payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  if (body.length === 0) throw new RangeError('empty pkt-line payload');
  if (body.length > MAX_PKT_PAYLOAD) throw new RangeError(`pkt-line payload of ${body.length} bytes is too large`);
  const header = (body.length + 4).toString(16).padStart(4, '0');
  return Buffer.concat([Buffer.from(header, 'ascii'), body]);
}

/**
 * Many data packets and a final flush in one buffer, with one allocation: what a ref
 * advertisement or an ls-refs answer of thousands of refs is made of.
 */
export function pktLines(payloads: readonly string[]): Buffer {
  let total = 4;
  const sizes = payloads.map((payload) => {
    const size = Buffer.byteLength(payload, 'utf8');
    if (size === 0) throw new RangeError('empty pkt-line payload');
    if (size > MAX_PKT_PAYLOAD) throw new RangeError(`pkt-line payload of ${size} bytes is too large`);
    total += size + 4;
    return size;
  });
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  payloads.forEach((payload, i) => {
    offset += out.write((sizes[i]! + 4).toString(16).padStart(4, '0'), offset, 'latin1');
    offset += out.write(payload, offset, 'utf8');
  });
  out.write('0000', offset, 'latin1');
  return out;
}

/** Decodes a 4-byte length header; returns the total packet length or a special kind. */
export function decodeLength(header: Buffer): number {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    const c = header[i]!;
    let digit: number;
    if (c >= 0x30 && c <= 0x39) digit = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) digit = c - 0x61 + 10;
    else if (c >= 0x41 && c <= 0x46) digit = c - 0x41 + 10;
    else throw new PktLineError(`protocol error: bad line length character: ${JSON.stringify(header.toString('latin1'))}`);
    value = value * 16 + digit;
  }
  if (value === 3) throw new PktLineError('protocol error: bad line length 3');
  if (value === 4) throw new PktLineError('protocol error: empty pkt-line');
  if (value > MAX_PKT_LEN) throw new PktLineError(`protocol error: bad line length ${value}`);
  return value;
}

/** Returns the payload as text without one trailing LF. */
export function packetText(payload: Buffer): string {
  const end = payload.length > 0 && payload[payload.length - 1] === 0x0a ? payload.length - 1 : payload.length;
  return payload.toString('utf8', 0, end);
}

/**
 * Parses every packet of a complete buffer. Throws PktLineError on bad framing,
 * including a buffer that ends inside a packet.
 */
export function parsePackets(buffer: Buffer): Packet[] {
  const packets: Packet[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    if (buffer.length - offset < 4) throw new PktLineError('protocol error: truncated pkt-line length');
    const length = decodeLength(buffer.subarray(offset, offset + 4));
    if (length < 4) {
      packets.push(specialPacket(length));
      offset += 4;
      continue;
    }
    if (buffer.length - offset < length) throw new PktLineError('protocol error: truncated pkt-line');
    packets.push({ kind: 'data', payload: buffer.subarray(offset + 4, offset + length) });
    offset += length;
  }
  return packets;
}

export function specialPacket(length: number): Packet {
  if (length === 0) return { kind: 'flush' };
  if (length === 1) return { kind: 'delim' };
  return { kind: 'response-end' };
}

/**
 * Reads packets one at a time from a byte stream, then hands back whatever follows
 * (receive-pack sends a raw pack after its pkt-line head). Holds at most one packet
 * plus one chunk in memory.
 */
export class PktLineReader {
  readonly #source: AsyncIterator<Buffer>;
  #buffer: Buffer = Buffer.alloc(0);
  #ended = false;
  #consumed = 0;

  constructor(source: AsyncIterable<Buffer | string>) {
    const iterator = source[Symbol.asyncIterator]();
    this.#source = {
      next: async () => {
        const result = await iterator.next();
        if (result.done) return result;
        const value = typeof result.value === 'string' ? Buffer.from(result.value) : result.value;
        return { done: false, value };
      },
      return: async () => (iterator.return ? (await iterator.return(), { done: true, value: undefined }) : { done: true, value: undefined }),
    };
  }

  /** Bytes of the stream consumed as packets so far. */
  get consumed(): number {
    return this.#consumed;
  }

  async #fill(want: number): Promise<boolean> {
    while (this.#buffer.length < want) {
      if (this.#ended) return false;
      const next = await this.#source.next();
      if (next.done) {
        this.#ended = true;
        return false;
      }
      this.#buffer = this.#buffer.length === 0 ? next.value : Buffer.concat([this.#buffer, next.value]);
    }
    return true;
  }

  /** The next packet, or null at a clean end of stream (between packets). */
  async read(): Promise<Packet | null> {
    if (!(await this.#fill(4))) {
      if (this.#buffer.length === 0) return null;
      throw new PktLineError('protocol error: truncated pkt-line length');
    }
    const length = decodeLength(this.#buffer.subarray(0, 4));
    if (length < 4) {
      this.#take(4);
      return specialPacket(length);
    }
    if (!(await this.#fill(length))) throw new PktLineError('protocol error: truncated pkt-line');
    const packet = this.#take(length);
    return { kind: 'data', payload: packet.subarray(4) };
  }

  /** True when no byte is left (drains nothing). */
  async atEnd(): Promise<boolean> {
    return !(await this.#fill(1));
  }

  #take(length: number): Buffer {
    const out = Buffer.from(this.#buffer.subarray(0, length));
    this.#buffer = this.#buffer.subarray(length);
    this.#consumed += length;
    return out;
  }

  /** Everything after the packets read so far, as it arrives. */
  async *rest(): AsyncGenerator<Buffer> {
    if (this.#buffer.length > 0) {
      const head = this.#buffer;
      this.#buffer = Buffer.alloc(0);
      yield head;
    }
    while (!this.#ended) {
      const next = await this.#source.next();
      if (next.done) {
        this.#ended = true;
        break;
      }
      yield next.value;
    }
  }
}
