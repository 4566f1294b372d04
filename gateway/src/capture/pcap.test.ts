import fc from 'fast-check';
import {
  encodeStartupMessage,
  encodeQuery,
  encodeParse,
  encodeSync,
  encodeReadyForQuery,
  encodeSSLRequest,
  PROTOCOL_3_0,
} from '../protocol';
import { encodeAuthenticationOk } from '../protocol/backend/authentication';
import { encodePasswordMessage } from '../protocol/frontend/simple-messages';
import { importPcap, TcpDirection } from './pcap';
import type { CaptureRecord, FrameRecord } from './format';

// ---------------------------------------------------------------- synthetic captures

interface Seg {
  fromClient: boolean;
  flags: number;
  seq: number;
  payload: Buffer;
}

function ipv4Tcp(s: Seg, clientPort: number, serverPort: number, v6: boolean): Buffer {
  const tcp = Buffer.alloc(20 + s.payload.length);
  tcp.writeUInt16BE(s.fromClient ? clientPort : serverPort, 0);
  tcp.writeUInt16BE(s.fromClient ? serverPort : clientPort, 2);
  tcp.writeUInt32BE(s.seq >>> 0, 4);
  tcp[12] = 5 << 4;
  tcp[13] = s.flags;
  s.payload.copy(tcp, 20);
  if (v6) {
    const ip = Buffer.alloc(40);
    ip[0] = 0x60;
    ip.writeUInt16BE(tcp.length, 4);
    ip[6] = 6;
    ip[23] = s.fromClient ? 1 : 2; // ::1 / ::2
    ip[39] = s.fromClient ? 2 : 1;
    return Buffer.concat([ip, tcp]);
  }
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + tcp.length, 2);
  ip[9] = 6;
  Buffer.from(s.fromClient ? [10, 0, 0, 1, 10, 0, 0, 2] : [10, 0, 0, 2, 10, 0, 0, 1]).copy(ip, 12);
  return Buffer.concat([ip, tcp]);
}

function linkFrame(ip: Buffer, linktype: number, v6: boolean): Buffer {
  const et = v6 ? 0x86dd : 0x0800;
  if (linktype === 1) {
    const eth = Buffer.alloc(14);
    eth.writeUInt16BE(et, 12);
    return Buffer.concat([eth, ip]);
  }
  if (linktype === 113) {
    const h = Buffer.alloc(16);
    h.writeUInt16BE(et, 14);
    return Buffer.concat([h, ip]);
  }
  if (linktype === 276) {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(et, 0);
    return Buffer.concat([h, ip]);
  }
  const h = Buffer.alloc(4);
  h.writeUInt32LE(v6 ? 10 : 2, 0); // DLT_NULL, little-endian host
  return Buffer.concat([h, ip]);
}

function pcapFile(frames: Buffer[], linktype: number): Buffer {
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(262144, 16);
  gh.writeUInt32LE(linktype, 20);
  const parts: Buffer[] = [gh];
  frames.forEach((f, i) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(1700000000, 0);
    h.writeUInt32LE(i, 4);
    h.writeUInt32LE(f.length, 8);
    h.writeUInt32LE(f.length, 12);
    parts.push(h, f);
  });
  return Buffer.concat(parts);
}

function pcapngFile(frames: Buffer[], linktype: number): Buffer {
  const block = (type: number, body: Buffer): Buffer => {
    const pad = (4 - (body.length % 4)) % 4;
    const len = 12 + body.length + pad;
    const b = Buffer.alloc(len);
    b.writeUInt32LE(type, 0);
    b.writeUInt32LE(len, 4);
    body.copy(b, 8);
    b.writeUInt32LE(len, len - 4);
    return b;
  };
  const shb = Buffer.alloc(16);
  shb.writeUInt32LE(0x1a2b3c4d, 0);
  shb.writeUInt16LE(1, 4);
  shb.writeBigInt64LE(-1n, 8);
  const idb = Buffer.alloc(8);
  idb.writeUInt16LE(linktype, 0);
  idb.writeUInt32LE(262144, 4);
  const parts = [block(0x0a0d0d0a, shb), block(1, idb)];
  frames.forEach((f, i) => {
    const h = Buffer.alloc(20);
    const ts = 1700000000000000n + BigInt(i);
    h.writeUInt32LE(0, 0);
    h.writeUInt32LE(Number(ts >> 32n), 4);
    h.writeUInt32LE(Number(ts & 0xffffffffn), 8);
    h.writeUInt32LE(f.length, 12);
    h.writeUInt32LE(f.length, 16);
    parts.push(block(6, Buffer.concat([h, f])));
  });
  return Buffer.concat(parts);
}

/** A conversation: each entry is bytes from one side, cut into segments of at most `mss` bytes. */
function conversation(turns: Array<[boolean, Buffer]>, mss: number, cisn = 1000, sisn = 0xfffffff0): Seg[] {
  const segs: Seg[] = [
    { fromClient: true, flags: 0x02, seq: cisn, payload: Buffer.alloc(0) },
    { fromClient: false, flags: 0x12, seq: sisn, payload: Buffer.alloc(0) },
  ];
  let cseq = cisn + 1;
  let sseq = sisn + 1;
  for (const [fromClient, bytes] of turns) {
    for (let o = 0; o < bytes.length; o += mss) {
      const payload = bytes.subarray(o, o + mss);
      segs.push({ fromClient, flags: 0x18, seq: fromClient ? cseq : sseq, payload });
      if (fromClient) cseq += payload.length;
      else sseq += payload.length;
    }
  }
  segs.push({ fromClient: true, flags: 0x11, seq: cseq, payload: Buffer.alloc(0) });
  segs.push({ fromClient: false, flags: 0x11, seq: sseq, payload: Buffer.alloc(0) });
  return segs;
}

const startup = encodeStartupMessage(PROTOCOL_3_0, [
  ['user', 'alice'],
  ['database', 'app'],
  ['application_name', 'psql'],
  ['options', '-c search_path=public'],
]);
const turns: Array<[boolean, Buffer]> = [
  [true, encodeSSLRequest()],
  [false, Buffer.from('N')],
  [true, startup],
  [false, Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3])], // AuthenticationCleartextPassword
  [true, encodePasswordMessage(Buffer.from('secret\0'))],
  [false, Buffer.concat([encodeAuthenticationOk(), encodeReadyForQuery('I')])],
  [true, encodeQuery('BEGIN')],
  [false, encodeReadyForQuery('T')],
  [true, Buffer.concat([encodeParse('', 'SELECT $1::int', []), encodeSync()])],
  [false, encodeReadyForQuery('T')],
  [true, encodeQuery('SELECT ' + 'x'.repeat(3000))],
  [false, encodeReadyForQuery('T')],
];

function frames(records: CaptureRecord[]): FrameRecord[] {
  return records.filter((r): r is FrameRecord => 'dir' in r);
}

function expectConversation(records: CaptureRecord[]): void {
  const conn = records.find((r) => 'ev' in r && r.ev === 'connection');
  expect(conn).toMatchObject({
    user: 'alice',
    database: 'app',
    application_name: 'psql',
    options: { search_path: 'public' },
    protocol_version: '3.0',
    tls: { enabled: false },
  });
  const fs = frames(records);
  const f = fs.filter((r) => r.dir === 'F');
  expect(f.map((r) => Buffer.from(r.frame, 'base64')[0])).toEqual([0, 0x51, 0x50, 0x53, 0x51]);
  expect(f.map((r) => r.ts)).toEqual([undefined, 'I', 'T', 'T', 'T']);
  // The password never appears.
  expect(JSON.stringify(records)).not.toContain(Buffer.from('secret').toString('base64').slice(0, 6));
  expect(records.some((r) => 'ev' in r && r.ev === 'auth')).toBe(true);
  expect(records[records.length - 1]).toMatchObject({ ev: 'close' });
}

function build(segs: Seg[], linktype: number, v6: boolean, ng = false): Buffer {
  const fr = segs.map((s) => linkFrame(ipv4Tcp(s, 40000, 5432, v6), linktype, v6));
  return ng ? pcapngFile(fr, linktype) : pcapFile(fr, linktype);
}

describe('importPcap', () => {
  test.each([
    ['Ethernet IPv4', 1, false, false],
    ['SLL IPv4', 113, false, false],
    ['SLL2 IPv6', 276, true, false],
    ['loopback IPv6 pcapng', 0, true, true],
    ['Ethernet IPv4 pcapng', 1, false, true],
  ] as const)('%s', (_name, linktype, v6, ng) => {
    const imp = importPcap(build(conversation(turns, 536), linktype, v6, ng));
    expect(imp.warnings).toEqual([]);
    expectConversation(imp.records);
  });

  test('out-of-order, duplicated and overlapping segments give the same records (sequence wrap included)', () => {
    const reference = importPcap(build(conversation(turns, 100), 1, false)).records;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 0, max: 2 ** 31 }), (mss, seed) => {
        const segs = conversation(turns, mss, seed, 0xffffff00 + (seed % 200));
        // Shuffle data segments within each side's run, duplicate some, add overlapping copies.
        let rnd = seed || 1;
        const next = (): number => (rnd = (rnd * 1103515245 + 12345) & 0x7fffffff);
        const out: Seg[] = segs.slice(0, 2);
        let i = 2;
        while (i < segs.length - 2) {
          let j = i;
          while (j < segs.length - 2 && segs[j]!.fromClient === segs[i]!.fromClient) j++;
          const run = segs.slice(i, j);
          for (let k = run.length - 1; k > 0; k--) {
            const r = next() % (k + 1);
            [run[k], run[r]] = [run[r]!, run[k]!];
          }
          for (const s of run) {
            out.push(s);
            if (next() % 4 === 0) out.push(s); // retransmission
            if (s.payload.length > 2 && next() % 5 === 0) {
              out.push({ ...s, seq: s.seq + 1, payload: s.payload.subarray(1, s.payload.length - 1) }); // overlap
            }
          }
          i = j;
        }
        out.push(...segs.slice(-2));
        const got = importPcap(build(out, 1, false)).records;
        const strip = (rs: CaptureRecord[]): unknown[] => rs.map((r) => ({ ...r, t: 0, conn: '' }));
        expect(strip(got)).toEqual(strip(reference));
      }),
      { numRuns: 60 },
    );
  });

  test('a connection that upgrades to TLS is skipped with a warning', () => {
    const tlsTurns: Array<[boolean, Buffer]> = [
      [true, encodeSSLRequest()],
      [false, Buffer.from('S')],
      [true, Buffer.from([0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5])],
    ];
    const imp = importPcap(build(conversation(tlsTurns, 536), 1, false));
    expect(imp.records).toEqual([]);
    expect(imp.warnings.join()).toMatch(/TLS/);
  });

  test('a connection whose SYN is missing is skipped; other ports are ignored', () => {
    const segs = conversation(turns, 536).slice(2);
    const imp = importPcap(build(segs, 1, false));
    expect(imp.records).toEqual([]);
    expect(imp.warnings.join()).toMatch(/SYN/);
    const other = importPcap(build(conversation(turns, 536), 1, false), { serverPort: 6543 });
    expect(other.records).toEqual([]);
  });

  test('rejects files that are not captures', () => {
    expect(() => importPcap(Buffer.from('hello world, not a pcap file'))).toThrow(/not a pcap/);
  });
});

describe('TcpDirection', () => {
  test('delivers each byte once, in order', () => {
    const got: Buffer[] = [];
    const d = new TcpDirection((b) => got.push(Buffer.from(b)));
    d.syn(0xfffffffe);
    d.segment(4, Buffer.from('fgh')); // offset 5, after the wrap
    d.segment(0xffffffff, Buffer.from('abc'));
    d.segment(0, Buffer.from('bcdef')); // overlaps both
    d.segment(0xffffffff, Buffer.from('abc')); // retransmission
    expect(Buffer.concat(got).toString()).toBe('abcdefgh');
    expect(d.buffered).toBe(0);
  });
});
