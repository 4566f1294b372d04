/**
 * Import of packet captures (pcap and pcapng, as written by tcpdump) of plaintext PostgreSQL
 * traffic into pgward capture records: link layer (Ethernet, Linux cooked SLL/SLL2, BSD loopback,
 * raw IP), IPv4/IPv6, TCP reassembly per connection (sequence numbers; out-of-order segments held
 * and ordered; retransmitted and overlapping bytes dropped; SYN/FIN/RST), then protocol framing of
 * each direction. Connections that upgrade to TLS, or whose start is not in the capture, are
 * skipped with a warning.
 * pcap: https://www.tcpdump.org/manpages/pcap-savefile.5.html
 * pcapng: https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html
 * link types: https://www.tcpdump.org/linktypes.html
 */
import { FrontendFramer } from '../protocol/framing';
import { BackendType, StartupCode } from '../protocol/message-types';
import { readBackendMessage } from '../protocol/backend/backend-message';
import { PgwardError, ErrorCodes } from '../errors';
import { LEXICAL_SETTINGS } from '../sql/lexical';
import { makeHeader, type CaptureHeader, type CaptureRecord } from './format';
import { connectionFromStartup } from './startup-context';

export interface PcapImportOptions {
  /** PostgreSQL server port; default 5432. */
  serverPort?: number;
  maxSqlBytesInInput?: number;
}

export interface PcapImport {
  header: CaptureHeader;
  records: CaptureRecord[];
  warnings: string[];
  packets: number;
}

/** One TCP segment with its addresses, time in microseconds since the epoch. */
export interface TcpSegment {
  t: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  flags: number;
  payload: Buffer;
}

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;

function bad(msg: string): PgwardError {
  return new PgwardError(ErrorCodes.REPLAY_INPUT, `packet capture: ${msg}`);
}

export function isPacketCapture(head: Buffer): boolean {
  if (head.length < 4) return false;
  const m = head.readUInt32LE(0);
  return m === 0xa1b2c3d4 || m === 0xd4c3b2a1 || m === 0xa1b23c4d || m === 0x4d3cb2a1 || m === 0x0a0d0d0a;
}

// ---------------------------------------------------------------- file formats

interface RawPacket {
  t: number;
  linktype: number;
  data: Buffer;
  truncated: boolean;
}

/** The packets of a pcap or pcapng file, in file order. */
export function* readPackets(buf: Buffer): Generator<RawPacket> {
  if (buf.length < 4) throw bad('file too short');
  if (buf.readUInt32LE(0) === 0x0a0d0d0a) {
    yield* readPcapng(buf);
    return;
  }
  if (buf.length < 24) throw bad('file too short for a pcap header');
  const magicLE = buf.readUInt32LE(0);
  let le: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) le = true;
  else if (magicLE === 0xd4c3b2a1 || magicLE === 0x4d3cb2a1) le = false;
  else throw bad('not a pcap or pcapng file');
  const magic = le ? magicLE : buf.readUInt32BE(0);
  const nanos = magic === 0xa1b23c4d;
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  // The link type is the low 16 bits (the upper bits carry FCS information).
  const linktype = u32(20) & 0xffff;
  let off = 24;
  while (off + 16 <= buf.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    const orig = u32(off + 12);
    off += 16;
    if (off + incl > buf.length) throw bad(`packet record at ${off - 16} runs past the end of the file`);
    const t = sec * 1e6 + (nanos ? Math.floor(frac / 1000) : frac);
    yield { t, linktype, data: buf.subarray(off, off + incl), truncated: incl < orig };
    off += incl;
  }
}

function* readPcapng(buf: Buffer): Generator<RawPacket> {
  let off = 0;
  let le = true;
  let ifaces: Array<{ linktype: number; unitsPerSec: number }> = [];
  while (off + 12 <= buf.length) {
    let type = buf.readUInt32LE(off);
    if (type === 0x0a0d0d0a) {
      const bom = buf.readUInt32LE(off + 8);
      if (bom === 0x1a2b3c4d) le = true;
      else if (bom === 0x4d3c2b1a) le = false;
      else throw bad('pcapng section header with a bad byte-order magic');
      ifaces = [];
    }
    const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
    const u16 = (o: number): number => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
    type = u32(off);
    const len = u32(off + 4);
    if (len < 12 || len % 4 !== 0 || off + len > buf.length)
      throw bad(`pcapng block at ${off} has a bad length ${len}`);
    const body = off + 8;
    const end = off + len - 4;
    if (type === 0x00000001) {
      // Interface Description Block: link type, snaplen, options (if_tsresol = 9).
      const linktype = u16(body);
      let unitsPerSec = 1e6;
      let o = body + 8;
      while (o + 4 <= end) {
        const code = u16(o);
        const olen = u16(o + 2);
        if (code === 0) break;
        if (code === 9 && olen >= 1) {
          const r = buf[o + 4] as number;
          unitsPerSec = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** (r & 0x7f);
        }
        o += 4 + olen + ((4 - (olen % 4)) % 4);
      }
      ifaces.push({ linktype, unitsPerSec });
    } else if (type === 0x00000006 || type === 0x00000002) {
      // Enhanced Packet Block (6), obsolete Packet Block (2).
      const ifId = type === 6 ? u32(body) : u16(body);
      const iface = ifaces[ifId];
      if (!iface) throw bad(`packet for undeclared interface ${ifId}`);
      const ts = u32(body + 4) * 2 ** 32 + u32(body + 8);
      const capLen = u32(body + 12);
      const origLen = u32(body + 16);
      const start = body + 20;
      if (start + capLen > end) throw bad(`pcapng packet at ${off} runs past its block`);
      const t = Math.floor((ts / iface.unitsPerSec) * 1e6);
      yield {
        t,
        linktype: iface.linktype,
        data: buf.subarray(start, start + capLen),
        truncated: capLen < origLen,
      };
    } else if (type === 0x00000003) {
      // Simple Packet Block: interface 0, no timestamp.
      const iface = ifaces[0];
      if (!iface) throw bad('simple packet block without an interface');
      const origLen = u32(body);
      const capLen = Math.min(origLen, end - (body + 4));
      yield {
        t: 0,
        linktype: iface.linktype,
        data: buf.subarray(body + 4, body + 4 + capLen),
        truncated: capLen < origLen,
      };
    }
    off += len;
  }
}

// ---------------------------------------------------------------- link, IP, TCP

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;

/** The IP packet inside a link-layer frame, or null when it is not IP. */
function ipPayload(linktype: number, d: Buffer): Buffer | null {
  switch (linktype) {
    case 0: // DLT_NULL: address family in the capturing host's byte order
    case 108: {
      // DLT_LOOP: network byte order
      if (d.length < 4) return null;
      const fam =
        linktype === 108
          ? d.readUInt32BE(0)
          : d.readUInt32LE(0) > 0xffff
            ? d.readUInt32BE(0)
            : d.readUInt32LE(0);
      return fam === 2 || fam === 10 || fam === 24 || fam === 28 || fam === 30 ? d.subarray(4) : null;
    }
    case 1: {
      // Ethernet, with 802.1Q / 802.1ad tags skipped
      let o = 12;
      if (d.length < 14) return null;
      let et = d.readUInt16BE(o);
      while ((et === 0x8100 || et === 0x88a8) && d.length >= o + 6) {
        o += 4;
        et = d.readUInt16BE(o);
      }
      return et === ETHERTYPE_IPV4 || et === ETHERTYPE_IPV6 ? d.subarray(o + 2) : null;
    }
    case 113: {
      // Linux cooked capture v1: protocol at 14
      if (d.length < 16) return null;
      const et = d.readUInt16BE(14);
      return et === ETHERTYPE_IPV4 || et === ETHERTYPE_IPV6 ? d.subarray(16) : null;
    }
    case 276: {
      // Linux cooked capture v2: protocol at 0, header 20 bytes
      if (d.length < 20) return null;
      const et = d.readUInt16BE(0);
      return et === ETHERTYPE_IPV4 || et === ETHERTYPE_IPV6 ? d.subarray(20) : null;
    }
    case 12: // DLT_RAW on most platforms
    case 14:
    case 101:
    case 228:
    case 229:
      return d;
    default:
      return null;
  }
}

function ipv6Text(b: Buffer): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(i).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (parts[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return parts.join(':');
  return `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
}

/** Decodes one captured packet down to its TCP segment; null when it is not TCP (or is a fragment). */
export function decodeTcp(
  linktype: number,
  data: Buffer,
  t: number,
  warn: (w: string) => void,
): TcpSegment | null {
  const ip = ipPayload(linktype, data);
  if (ip === null || ip.length < 1) return null;
  const version = (ip[0] as number) >> 4;
  let src: string;
  let dst: string;
  let tcp: Buffer;
  if (version === 4) {
    if (ip.length < 20) return null;
    const ihl = ((ip[0] as number) & 0x0f) * 4;
    const total = ip.readUInt16BE(2);
    if (ip[9] !== 6) return null;
    const frag = ip.readUInt16BE(6);
    if ((frag & 0x1fff) !== 0 || (frag & 0x2000) !== 0) {
      warn('IPv4 fragments are not reassembled: fragment skipped');
      return null;
    }
    src = `${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}`;
    dst = `${ip[16]}.${ip[17]}.${ip[18]}.${ip[19]}`;
    // total length 0 happens with TSO on the capturing host: take what was captured.
    tcp = ip.subarray(ihl, total > 0 ? Math.min(total, ip.length) : ip.length);
  } else if (version === 6) {
    if (ip.length < 40) return null;
    const plen = ip.readUInt16BE(4);
    let next = ip[6] as number;
    src = ipv6Text(ip.subarray(8, 24));
    dst = ipv6Text(ip.subarray(24, 40));
    let o = 40;
    const end = plen > 0 ? Math.min(40 + plen, ip.length) : ip.length;
    // Hop-by-hop (0), routing (43), destination options (60): skip; fragments (44): not reassembled.
    while (next === 0 || next === 43 || next === 60 || next === 44) {
      if (next === 44) {
        warn('IPv6 fragments are not reassembled: fragment skipped');
        return null;
      }
      if (o + 2 > end) return null;
      next = ip[o] as number;
      o += ((ip[o + 1] as number) + 1) * 8;
    }
    if (next !== 6) return null;
    tcp = ip.subarray(o, end);
  } else {
    return null;
  }
  if (tcp.length < 20) return null;
  const dataOff = ((tcp[12] as number) >> 4) * 4;
  if (dataOff < 20 || dataOff > tcp.length) return null;
  return {
    t,
    src,
    dst,
    sport: tcp.readUInt16BE(0),
    dport: tcp.readUInt16BE(2),
    seq: tcp.readUInt32BE(4),
    flags: tcp[13] as number,
    payload: tcp.subarray(dataOff),
  };
}

// ---------------------------------------------------------------- TCP reassembly

/** One direction of a TCP connection: delivers bytes in sequence order exactly once. */
export class TcpDirection {
  /** Sequence number of relative offset 0 (the byte after the SYN); null until the SYN is seen. */
  private base: number | null = null;
  private next = 0;
  private readonly pending = new Map<number, Buffer>();
  private pendingBytes = 0;
  fin = false;

  constructor(private readonly deliver: (data: Buffer) => void) {}

  get started(): boolean {
    return this.base !== null;
  }

  get buffered(): number {
    return this.pendingBytes;
  }

  syn(seq: number): void {
    if (this.base === null) this.base = (seq + 1) >>> 0;
  }

  segment(seq: number, data: Buffer): void {
    if (this.base === null || data.length === 0) return;
    // Offsets relative to the ISN, in 32-bit modular arithmetic (a stream shorter than 2 GiB).
    let off = (seq - this.base) >>> 0;
    if (off >= 0x80000000) off -= 0x100000000; // before the start: a retransmitted SYN payload
    let d = data;
    if (off < this.next) {
      const skip = this.next - off;
      if (skip >= d.length) return; // a retransmission of delivered bytes
      d = d.subarray(skip);
      off = this.next;
    }
    if (off > this.next) {
      const have = this.pending.get(off);
      if (!have || have.length < d.length) {
        if (have) this.pendingBytes -= have.length;
        this.pending.set(off, Buffer.from(d));
        this.pendingBytes += d.length;
      }
      return;
    }
    this.push(d);
    this.drain();
  }

  private push(d: Buffer): void {
    this.next += d.length;
    this.deliver(d);
  }

  private drain(): void {
    for (;;) {
      let progressed = false;
      for (const [off, d] of this.pending) {
        if (off > this.next) continue;
        this.pending.delete(off);
        this.pendingBytes -= d.length;
        if (off + d.length > this.next) this.push(d.subarray(this.next - off));
        progressed = true;
      }
      if (!progressed) return;
    }
  }
}

// ---------------------------------------------------------------- PostgreSQL framing per connection

type ConnPhase = 'startup' | 'auth' | 'ready' | 'skipped' | 'closed';

class PgConnection {
  readonly client: TcpDirection;
  readonly server: TcpDirection;
  phase: ConnPhase = 'startup';
  private readonly framer = new FrontendFramer(1 << 30);
  private serverBuf: Buffer = Buffer.alloc(0);
  private status: 'I' | 'T' | 'E' = 'I';
  private protocolVersion = '3.0';
  private announced = false;
  /** An SSLRequest/GSSENCRequest awaits its one-byte answer from the server. */
  private answerPending = false;
  t = 0;

  constructor(
    readonly id: string,
    private readonly peer: { client_addr: string; client_port: number },
    private readonly out: CaptureRecord[],
    private readonly warn: (w: string) => void,
  ) {
    this.client = new TcpDirection((d) => this.fromClient(d));
    this.server = new TcpDirection((d) => this.fromServer(d));
  }

  skip(why: string): void {
    if (this.phase === 'skipped' || this.phase === 'closed') return;
    this.warn(`connection ${this.id} skipped: ${why}`);
    this.phase = 'skipped';
    this.serverBuf = Buffer.alloc(0);
  }

  close(outcome: string): void {
    if (this.phase === 'closed' || this.phase === 'skipped') {
      this.phase = 'closed';
      return;
    }
    if (this.announced) this.out.push({ t: this.t, conn: this.id, ev: 'close', outcome });
    this.phase = 'closed';
  }

  private fromClient(d: Buffer): void {
    if (this.phase === 'skipped' || this.phase === 'closed') return;
    this.framer.push(d);
    try {
      for (let f = this.framer.next(); f !== null; f = this.framer.next()) {
        if ((this.phase as ConnPhase) === 'skipped') return;
        if (f.type === 0) {
          const code = f.bytes.length >= 8 ? f.bytes.readInt32BE(4) : 0;
          if (code === StartupCode.SSLRequest || code === StartupCode.GSSENCRequest) {
            // The server answers one byte: 'N' (go on in plaintext) or 'S'/'G' (encryption).
            this.answerPending = true;
            this.fromServer(Buffer.alloc(0));
            continue;
          }
          if (code === StartupCode.CancelRequest) {
            this.phase = 'closed';
            return;
          }
          const rec = connectionFromStartup(this.t, this.id, f.bytes, this.peer);
          if (rec === null) return;
          this.protocolVersion = rec.protocol_version;
          this.out.push(rec);
          this.out.push({ t: this.t, conn: this.id, dir: 'F', frame: f.bytes.toString('base64') });
          this.announced = true;
          this.phase = 'auth';
          this.framer.setStartupPhase(false);
          continue;
        }
        // Authentication messages ('p') are never recorded; nothing else flows before AuthenticationOk.
        if (this.phase !== 'ready') continue;
        this.out.push({
          t: this.t,
          conn: this.id,
          dir: 'F',
          ts: this.status,
          frame: f.bytes.toString('base64'),
        });
      }
    } catch (err) {
      this.skip(`client stream cannot be framed (${(err as Error).message})`);
    }
  }

  private fromServer(d: Buffer): void {
    if (this.phase === 'skipped' || this.phase === 'closed') return;
    this.serverBuf = this.serverBuf.length === 0 ? d : Buffer.concat([this.serverBuf, d]);
    let buf = this.serverBuf;
    if (this.answerPending) {
      if (buf.length === 0) return;
      const answer = buf[0];
      buf = buf.subarray(1);
      this.answerPending = false;
      if (answer !== 0x4e /* N */) {
        this.skip('the connection upgrades to TLS (or GSS encryption)');
        return;
      }
    }
    while (buf.length >= 5) {
      const len = buf.readInt32BE(1);
      if (len < 4) {
        this.skip(`invalid backend message length ${len}`);
        return;
      }
      if (buf.length < len + 1) break;
      const msg = buf.subarray(0, len + 1);
      buf = buf.subarray(len + 1);
      this.onBackend(msg);
      if ((this.phase as ConnPhase) === 'skipped') return;
    }
    // Keep only the incomplete remainder (copied, so the reassembly buffers can be released).
    this.serverBuf = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
  }

  private onBackend(msg: Buffer): void {
    const type = msg[0];
    if (!this.announced) return;
    if (type === BackendType.NegotiateProtocolVersion && msg.length >= 9) {
      this.protocolVersion = `3.${msg.readInt32BE(5)}`;
    } else if (type === BackendType.ReadyForQuery) {
      if (this.phase === 'auth') {
        this.phase = 'ready';
        this.out.push({ t: this.t, conn: this.id, ev: 'auth', protocol_version: this.protocolVersion });
      }
      const z = readBackendMessage(msg);
      if (z.name === 'ReadyForQuery') this.status = z.status;
      this.out.push({ t: this.t, conn: this.id, dir: 'B', frame: msg.toString('base64') });
    } else if (type === BackendType.ErrorResponse) {
      this.out.push({ t: this.t, conn: this.id, dir: 'B', frame: msg.toString('base64') });
    } else if (type === BackendType.ParameterStatus) {
      // As the live capture: the lexical settings only, which replay reads SQL text under.
      const p = readBackendMessage(msg);
      if (p.name === 'ParameterStatus' && LEXICAL_SETTINGS.has(p.parameter))
        this.out.push({ t: this.t, conn: this.id, dir: 'B', frame: msg.toString('base64') });
    }
  }
}

/** Converts a pcap/pcapng file's PostgreSQL connections into capture records. */
export function importPcap(buf: Buffer, opts: PcapImportOptions = {}): PcapImport {
  const serverPort = opts.serverPort ?? 5432;
  const warnings = new Set<string>();
  const warn = (w: string): void => {
    if (warnings.size < 1000) warnings.add(w);
  };
  const records: CaptureRecord[] = [];
  const conns = new Map<string, PgConnection>();
  let seq = 0;
  let packets = 0;
  let truncatedPackets = 0;
  for (const p of readPackets(buf)) {
    packets++;
    if (p.truncated) truncatedPackets++;
    const s = decodeTcp(p.linktype, p.data, p.t, warn);
    if (s === null) continue;
    let fromClient: boolean;
    if (s.dport === serverPort) fromClient = true;
    else if (s.sport === serverPort) fromClient = false;
    else continue;
    const clientAddr = fromClient ? s.src : s.dst;
    const clientPort = fromClient ? s.sport : s.dport;
    const serverAddr = fromClient ? s.dst : s.src;
    const key = `${clientAddr}|${clientPort}|${serverAddr}`;
    let c = conns.get(key);
    if ((s.flags & SYN) !== 0 && fromClient && (s.flags & 0x10) === 0) {
      // A new SYN on a tuple seen before starts a new connection (port reuse).
      if (c && c.phase !== 'closed') c.close('reset');
      const addr = clientAddr.includes(':') ? `[${clientAddr}]` : clientAddr;
      c = new PgConnection(
        `pcap-${addr}:${clientPort}-${++seq}`,
        { client_addr: clientAddr, client_port: clientPort },
        records,
        warn,
      );
      conns.set(key, c);
    }
    if (!c) {
      c = new PgConnection(
        `pcap-${clientAddr}:${clientPort}-${++seq}`,
        { client_addr: clientAddr, client_port: clientPort },
        records,
        warn,
      );
      conns.set(key, c);
      c.skip('its start (SYN) is not in the capture');
      continue;
    }
    c.t = s.t;
    const dir = fromClient ? c.client : c.server;
    if ((s.flags & SYN) !== 0) dir.syn(s.seq);
    if (!dir.started) continue;
    // A SYN may carry data (TCP Fast Open): it starts at seq + 1.
    if (s.payload.length > 0) dir.segment((s.flags & SYN) !== 0 ? (s.seq + 1) >>> 0 : s.seq, s.payload);
    if ((s.flags & RST) !== 0) {
      c.close('reset');
    } else if ((s.flags & FIN) !== 0) {
      dir.fin = true;
      if (c.client.fin && c.server.fin) c.close(fromClient ? 'client_terminated' : 'server_closed');
    }
  }
  for (const c of conns.values()) {
    if (c.client.buffered > 0 || c.server.buffered > 0)
      warn(`connection ${c.id}: missing bytes in the capture (gap in the TCP stream)`);
    c.close('capture_end');
  }
  if (truncatedPackets > 0)
    warn(`${truncatedPackets} packets were cut by the snapshot length (capture with -s 0)`);
  return {
    header: makeHeader({ source: 'pcap', max_sql_bytes_in_input: opts.maxSqlBytesInInput ?? 64 * 1024 }),
    records,
    warnings: [...warnings],
    packets,
  };
}
