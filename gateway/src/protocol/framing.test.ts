/**
 * BackendScanner (pass-through, inspection, replacement under any split) and the framing threats:
 * bad lengths, oversize frames without allocation, unknown types, random bytes.
 */
import fc from 'fast-check';
import { ErrorCodes } from '../errors';
import {
  BackendScanner,
  BackendType,
  DEFAULT_MAX_MESSAGE_BYTES,
  FrontendFramer,
  FrontendType,
  MAX_INSPECTED_BACKEND_MESSAGE_BYTES,
  MAX_MESSAGE_BYTES_CEILING,
  MessageWriter,
  PROTOCOL_3_0,
  ProtocolError,
  encodeAuthenticationMD5Password,
  encodeAuthenticationOk,
  encodeAuthenticationSASL,
  encodeBackendKeyData,
  encodeCopyInResponse,
  encodeErrorResponse,
  encodeNegotiateProtocolVersion,
  encodeNoticeResponse,
  encodeParameterStatus,
  encodeQuery,
  encodeReadyForQuery,
  encodeStartupMessage,
  encodeSync,
  readBackendKeyData,
  readErrorFields,
  type BackendInspector,
  SESSION_INSPECTED_BACKEND_TYPES,
  typeTable,
} from './index';

// ---------------------------------------------------------------------------------------------
// Backend message builders (DataRow, RowDescription, CommandComplete are never synthesized by
// pgward, so the codec has no encoders for them).

function dataRow(columns: ReadonlyArray<Buffer | null>): Buffer {
  const w = new MessageWriter(64).int16(columns.length);
  for (const c of columns) {
    if (c === null) w.int32(-1);
    else w.int32(c.length).bytes(c);
  }
  return w.message('D');
}

function rowDescription(names: readonly string[]): Buffer {
  const w = new MessageWriter().int16(names.length);
  for (const n of names) w.cstring(n).uint32(16384).int16(1).uint32(25).int16(-1).int32(-1).int16(0);
  return w.message('T');
}

const commandComplete = (tag: string): Buffer => new MessageWriter().cstring(tag).message('C');
const parseComplete = (): Buffer => new MessageWriter(0).message('1');

/** The set the session inspects. */
const INSPECT = typeTable(SESSION_INSPECTED_BACKEND_TYPES);

const err = (code: string): Buffer =>
  encodeErrorResponse({ severity: 'ERROR', code, message: `boom ${code}`, detail: 'd', hint: 'h' });

const bytes = (min: number, max: number): fc.Arbitrary<Buffer> =>
  fc.integer({ min, max }).map((n) => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = (i * 131 + n) & 0xff;
    return b;
  });

const text = fc.string({ maxLength: 20 }).map((s) => s.replace(/\0/g, ''));

const backendMessage: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 6, arbitrary: fc.array(fc.option(bytes(0, 200), { nil: null }), { maxLength: 6 }).map(dataRow) },
  { weight: 1, arbitrary: bytes(64 * 1024, 150 * 1024).map((b) => dataRow([b, null])) },
  { weight: 1, arbitrary: fc.array(text, { maxLength: 5 }).map(rowDescription) },
  { weight: 2, arbitrary: text.map(commandComplete) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('I' as const, 'T' as const, 'E' as const).map(encodeReadyForQuery),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^[0-9A-Z]{5}$/).map(err) },
  {
    weight: 1,
    arbitrary: text.map((m) => encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: m })),
  },
  { weight: 1, arbitrary: fc.tuple(text, text).map(([k, v]) => encodeParameterStatus(k, v)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.integer({ min: 1, max: 0x7fffffff }), fc.constantFrom(4, 32, 256))
      .map(([pid, n]) => encodeBackendKeyData(pid, Buffer.alloc(n, pid & 0xff))),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      encodeAuthenticationOk(),
      encodeAuthenticationMD5Password(Buffer.from([1, 2, 3, 4])),
      encodeAuthenticationSASL(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS']),
    ),
  },
  { weight: 1, arbitrary: fc.array(text, { maxLength: 3 }).map((o) => encodeNegotiateProtocolVersion(0, o)) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 5 }).map((n) => encodeCopyInResponse(n)) },
  { weight: 1, arbitrary: fc.constant(parseComplete()) },
);

function splitAt(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

/** Cut points that favour the interesting places: inside headers, at message boundaries. */
function cutArbitrary(messages: readonly Buffer[]): fc.Arbitrary<number[]> {
  const starts: number[] = [];
  let at = 0;
  for (const m of messages) {
    starts.push(at);
    at += m.length;
  }
  const nearHeader = fc
    .tuple(fc.nat({ max: Math.max(0, starts.length - 1) }), fc.integer({ min: -1, max: 6 }))
    .map(([i, d]) => Math.max(0, (starts[i] ?? 0) + d));
  return fc.array(fc.oneof(fc.nat({ max: at }), nearHeader), { maxLength: 40 });
}

interface Run {
  out: Buffer;
  seen: Buffer[];
  counts: Float64Array;
}

function scan(
  chunks: readonly Buffer[],
  replace: (type: number, msg: Buffer, index: number) => Buffer | null,
): Run {
  const counts = new Float64Array(256);
  const scanner = new BackendScanner(INSPECT, counts);
  const seen: Buffer[] = [];
  const inspector: BackendInspector = (type, source, start, end) => {
    const msg = source.subarray(start, end);
    expect(msg[0]).toBe(type);
    expect(msg.readInt32BE(1) + 1).toBe(msg.length);
    seen.push(Buffer.from(msg));
    return replace(type, msg, seen.length - 1);
  };
  const outs: Buffer[] = [];
  for (const c of chunks) outs.push(...scanner.push(c, inspector));
  return { out: Buffer.concat(outs), seen, counts };
}

const inspected = (messages: readonly Buffer[]): Buffer[] =>
  messages.filter((m) => INSPECT[m[0] as number] === 1);

describe('BackendScanner', () => {
  test('random streams, random splits: output equals input, inspector sees every inspected message whole', () => {
    const stream = fc
      .array(backendMessage, { minLength: 1, maxLength: 30 })
      .chain((msgs) => fc.tuple(fc.constant(msgs), cutArbitrary(msgs)));
    fc.assert(
      fc.property(stream, ([messages, cuts]) => {
        const input = Buffer.concat(messages);
        const run = scan(splitAt(input, cuts), () => null);
        expect(run.out.equals(input)).toBe(true);
        const want = inspected(messages);
        expect(run.seen.length).toBe(want.length);
        run.seen.forEach((m, i) => expect(m.equals(want[i] as Buffer)).toBe(true));
        const counts = new Float64Array(256);
        for (const m of messages) counts[m[0] as number]!++;
        expect(run.counts).toEqual(counts);
      }),
      { numRuns: 150 },
    );
  });

  test('replacing BackendKeyData and ErrorResponse at random positions, across random splits', () => {
    const stream = fc
      .array(backendMessage, { minLength: 1, maxLength: 25 })
      .chain((msgs) =>
        fc.tuple(
          fc.constant(msgs),
          cutArbitrary(msgs),
          fc.array(fc.boolean(), { minLength: msgs.length, maxLength: msgs.length }),
          fc.oneof(bytes(0, 0), bytes(1, 300)),
        ),
      );
    fc.assert(
      fc.property(stream, ([messages, cuts, pick, replacement]) => {
        const input = Buffer.concat(messages);
        const targets = inspected(messages);
        const chosen = new Set<number>();
        targets.forEach((m, i) => {
          if ((m[0] === BackendType.BackendKeyData || m[0] === BackendType.ErrorResponse) && pick[i])
            chosen.add(i);
        });
        const run = scan(splitAt(input, cuts), (_t, _m, i) => (chosen.has(i) ? replacement : null));
        let k = -1;
        const expected = Buffer.concat(
          messages.map((m) => {
            if (INSPECT[m[0] as number] !== 1) return m;
            k++;
            return chosen.has(k) ? replacement : m;
          }),
        );
        expect(run.out.equals(expected)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  test('a replaced BackendKeyData split across 3+ chunks, the header split 1/4', () => {
    const key = encodeBackendKeyData(77, Buffer.alloc(32, 0xab));
    const row = dataRow([Buffer.from('x'), null]);
    const input = Buffer.concat([row, key, row]);
    const start = row.length;
    const chunks = [
      input.subarray(0, start + 1), // DataRow + 'K'
      input.subarray(start + 1, start + 5), // the 4 length bytes
      input.subarray(start + 5, start + 10),
      input.subarray(start + 10, start + 20),
      input.subarray(start + 20),
    ];
    const fake = encodeBackendKeyData(1, Buffer.alloc(32, 0x11));
    const run = scan(chunks, (t, msg) => {
      expect(readBackendKeyData(msg)).toEqual({
        name: 'BackendKeyData',
        bytes: msg,
        processId: 77,
        secretKey: Buffer.alloc(32, 0xab),
      });
      return t === BackendType.BackendKeyData ? fake : null;
    });
    expect(run.seen).toHaveLength(1);
    expect(run.out.equals(Buffer.concat([row, fake, row]))).toBe(true);
  });

  test('an ErrorResponse split one byte per chunk is inspected once, whole', () => {
    const e = err('42501');
    const run = scan(
      Array.from(e, (b) => Buffer.from([b])),
      () => null,
    );
    expect(run.seen).toHaveLength(1);
    expect(readErrorFields(run.seen[0] as Buffer).code).toBe('42501');
    expect(run.out.equals(e)).toBe(true);
  });

  test('a message with an empty body whose header ends a chunk is forwarded at once', () => {
    for (const split of [1, 2, 3, 4]) {
      const pc = parseComplete();
      const scanner = new BackendScanner(INSPECT);
      const first = scanner.push(pc.subarray(0, split), () => null);
      const second = scanner.push(pc.subarray(split), () => null);
      expect(Buffer.concat([...first, ...second]).equals(pc)).toBe(true);
    }
    // Same for an inspected message of length 4 (nothing follows it).
    const scanner = new BackendScanner(INSPECT);
    const z = Buffer.from([BackendType.NegotiateProtocolVersion, 0, 0, 0, 4]);
    let seen = 0;
    scanner.push(z.subarray(0, 2), () => null);
    const out = scanner.push(z.subarray(2), () => {
      seen++;
      return null;
    });
    expect(seen).toBe(1);
    expect(Buffer.concat(out).equals(z)).toBe(true);
  });

  test('an empty replacement drops the message; uninspected messages are never shown', () => {
    const rfq = encodeReadyForQuery('I');
    const input = Buffer.concat([commandComplete('SELECT 1'), err('XX000'), rfq]);
    const run = scan([input], (t) => (t === BackendType.ErrorResponse ? Buffer.alloc(0) : null));
    expect(run.seen.map((m) => m[0])).toEqual([BackendType.ErrorResponse, BackendType.ReadyForQuery]);
    expect(run.out.equals(Buffer.concat([commandComplete('SELECT 1'), rfq]))).toBe(true);
  });

  test('uninspected data passes as views of the input chunk (no copy)', () => {
    const rows = Buffer.concat([dataRow([Buffer.alloc(1000, 1)]), dataRow([Buffer.alloc(70_000, 2)])]);
    const scanner = new BackendScanner(INSPECT);
    const out = scanner.push(rows, () => null);
    expect(out).toHaveLength(1);
    expect((out[0] as Buffer).buffer).toBe(rows.buffer);
    // A chunk forwarded whole is the chunk itself, inspected messages kept in place included.
    expect(out[0]).toBe(rows);
    const answer = Buffer.concat([Buffer.from([0x31, 0, 0, 0, 4]), rows]);
    expect(new BackendScanner(INSPECT).push(answer, () => null)[0]).toBe(answer);
  });

  test('a huge uninspected message streams through without being held', () => {
    // A 512 MiB DataRow header, then 1 MiB of its body: forwarded as it arrives.
    const header = Buffer.from([BackendType.DataRow, 0, 0, 0, 0]);
    header.writeInt32BE(512 * 1024 * 1024, 1);
    const scanner = new BackendScanner(INSPECT);
    const before = process.memoryUsage().arrayBuffers;
    const chunk = Buffer.alloc(64 * 1024, 7);
    let forwarded = scanner.push(header, () => null).reduce((n, b) => n + b.length, 0);
    for (let i = 0; i < 16; i++)
      forwarded += scanner.push(chunk, () => null).reduce((n, b) => n + b.length, 0);
    expect(forwarded).toBe(5 + 16 * chunk.length);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * 1024 * 1024);
  });

  test.each([
    ['length 3', 3],
    ['length 0', 0],
    ['length -1 (>= 2^31)', -1],
    ['length -2^31', -0x80000000],
  ])('rejects a backend %s, also when the header is split', (_l, len) => {
    for (const type of [BackendType.DataRow, BackendType.ErrorResponse]) {
      const h = Buffer.from([type, 0, 0, 0, 0]);
      h.writeInt32BE(len, 1);
      expect(() => new BackendScanner(INSPECT).push(h, () => null)).toThrow(ProtocolError);
      const s = new BackendScanner(INSPECT);
      s.push(h.subarray(0, 2), () => null);
      try {
        s.push(h.subarray(2), () => null);
        throw new Error('no error');
      } catch (e) {
        expect(e).toBeInstanceOf(ProtocolError);
        expect((e as ProtocolError).code).toBe(ErrorCodes.UPSTREAM_PROTOCOL);
      }
    }
  });

  test('rejects an inspected message above the inspection cap as soon as its header is complete', () => {
    const h = Buffer.from([BackendType.ErrorResponse, 0, 0, 0, 0]);
    h.writeInt32BE(MAX_INSPECTED_BACKEND_MESSAGE_BYTES, 1);
    expect(() => new BackendScanner(INSPECT).push(h, () => null)).toThrow(ProtocolError);
    const s = new BackendScanner(INSPECT);
    s.push(h.subarray(0, 3), () => null);
    expect(() => s.push(h.subarray(3), () => null)).toThrow(ProtocolError);
  });

  test('random bytes: only ProtocolError, output is a prefix-preserving pass-through', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat(), { maxLength: 10 }), (raw, cuts) => {
        const input = Buffer.from(raw);
        const outs: Buffer[] = [];
        const scanner = new BackendScanner(INSPECT);
        try {
          for (const c of splitAt(input, cuts)) outs.push(...scanner.push(c, () => null));
        } catch (e) {
          if (!(e instanceof ProtocolError)) throw e;
        }
        const out = Buffer.concat(outs);
        expect(out.equals(input.subarray(0, out.length))).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// FrontendFramer threats.

function typedHeader(type: number, len: number): Buffer {
  const h = Buffer.from([type, 0, 0, 0, 0]);
  h.writeInt32BE(len | 0, 1);
  return h;
}

function expectCode(fn: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(ProtocolError);
  expect((thrown as ProtocolError).code).toBe(code);
}

function typedFramer(max = DEFAULT_MAX_MESSAGE_BYTES): FrontendFramer {
  const f = new FrontendFramer(max);
  f.setStartupPhase(false);
  return f;
}

describe('FrontendFramer threats', () => {
  test.each([
    ['0', 0, ErrorCodes.PROTOCOL_BAD_LENGTH],
    ['3', 3, ErrorCodes.PROTOCOL_BAD_LENGTH],
    ['2^31 (negative int32)', 0x80000000, ErrorCodes.PROTOCOL_BAD_LENGTH],
    ['2^32 - 1', 0xffffffff, ErrorCodes.PROTOCOL_BAD_LENGTH],
    ['max + 1', DEFAULT_MAX_MESSAGE_BYTES + 1, ErrorCodes.PROTOCOL_FRAME_TOO_LARGE],
    ['1 GiB', MAX_MESSAGE_BYTES_CEILING, ErrorCodes.PROTOCOL_FRAME_TOO_LARGE],
  ])('typed length %s is rejected as soon as the header is complete', (_l, len, code) => {
    const h = typedHeader(FrontendType.Query, len);
    // The whole header in one push, and byte by byte: nothing before the 5th byte, the error at it.
    expectCode(() => {
      const f = typedFramer();
      f.push(h);
      f.next();
    }, code);
    const f = typedFramer();
    for (let i = 0; i < 4; i++) {
      f.push(h.subarray(i, i + 1));
      expect(f.next()).toBeNull();
    }
    f.push(h.subarray(4));
    expectCode(() => f.next(), code);
  });

  test('the maximum length itself is accepted', () => {
    const f = typedFramer(64);
    const q = encodeQuery('x'.repeat(64 - 5));
    expect(q.readInt32BE(1)).toBe(64);
    f.push(q);
    expect(f.next()?.bytes.equals(q)).toBe(true);
    const g = typedFramer(63);
    g.push(q);
    expectCode(() => g.next(), ErrorCodes.PROTOCOL_FRAME_TOO_LARGE);
  });

  test('the limit can be lowered and raised again (before and after authentication)', () => {
    const q = encodeQuery('x'.repeat(64 - 5));
    const f = typedFramer(1024);
    f.setMaxMessageBytes(63);
    f.push(q);
    expectCode(() => f.next(), ErrorCodes.PROTOCOL_FRAME_TOO_LARGE);
    const g = typedFramer(1024);
    g.setMaxMessageBytes(63);
    g.setMaxMessageBytes(1024);
    g.push(q);
    expect(g.next()?.bytes.equals(q)).toBe(true);
  });

  test('a header claiming 1 GiB then 10 bytes allocates nothing big', () => {
    const before = process.memoryUsage().arrayBuffers;
    // Allowed size (limit at the ceiling): waits for the body without allocating it.
    const f = typedFramer(MAX_MESSAGE_BYTES_CEILING);
    f.push(typedHeader(FrontendType.Query, MAX_MESSAGE_BYTES_CEILING - 1));
    expect(f.next()).toBeNull();
    f.push(Buffer.alloc(10, 0x41));
    expect(f.next()).toBeNull();
    expect(f.buffered).toBe(15);
    // Default limit: refused at the header.
    const g = typedFramer();
    g.push(typedHeader(FrontendType.Query, MAX_MESSAGE_BYTES_CEILING));
    expectCode(() => g.next(), ErrorCodes.PROTOCOL_FRAME_TOO_LARGE);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(4 * 1024 * 1024);
  });

  test('unknown frontend type bytes are rejected at the first byte', () => {
    const known = new Set<number>(Object.values(FrontendType));
    for (let t = 0; t < 256; t++) {
      const f = typedFramer();
      f.push(Buffer.from([t]));
      if (known.has(t)) expect(f.next()).toBeNull();
      else expectCode(() => f.next(), ErrorCodes.PROTOCOL_UNKNOWN_MESSAGE);
    }
    // Backend-only types from a client ('T' RowDescription, 'Z' ReadyForQuery, 'v').
    for (const t of [0x54, 0x5a, 0x76, 0x4b]) {
      const f = typedFramer();
      f.push(Buffer.concat([typedHeader(t, 4)]));
      expectCode(() => f.next(), ErrorCodes.PROTOCOL_UNKNOWN_MESSAGE);
    }
  });

  test.each([
    ['0', 0],
    ['4', 4],
    ['7', 7],
    ['10,005 (a body of 10,001)', 10_005],
    ['2^31', 0x80000000],
    ['1 GiB', 1 << 30],
    // A Terminate sent before the startup packet: 'X' 00 00 00 04 reads as length 0x58000000.
    ['of a Terminate', 0x58000000],
  ])(
    'startup packet length %s is rejected as soon as the length is complete, to close silently',
    (_l, len) => {
      const h = Buffer.alloc(4);
      h.writeUInt32BE(len >>> 0, 0);
      const f = new FrontendFramer(DEFAULT_MAX_MESSAGE_BYTES);
      f.push(h.subarray(0, 3));
      expect(f.next()).toBeNull();
      f.push(h.subarray(3));
      let thrown: unknown;
      try {
        f.next();
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(ProtocolError);
      expect((thrown as ProtocolError).code).toBe(ErrorCodes.PROTOCOL_STARTUP_LENGTH);
      expect((thrown as ProtocolError).closeSilently).toBe(true);
    },
  );

  test('startup packets of 8, 10,000 and 10,004 bytes are framed (PostgreSQL caps the body after the length word)', () => {
    for (const len of [8, 10_000, 10_004]) {
      const p = Buffer.alloc(len);
      p.writeInt32BE(len, 0);
      p.writeInt32BE(PROTOCOL_3_0, 4);
      const f = new FrontendFramer(DEFAULT_MAX_MESSAGE_BYTES);
      f.push(p);
      expect(f.next()?.bytes.length).toBe(len);
    }
  });

  test('a large message pushed one byte at a time is framed in linear time', () => {
    const q = encodeQuery('y'.repeat(200_000));
    const f = typedFramer();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < q.length; i++) f.push(q.subarray(i, i + 1));
    const frame = f.next();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    expect(frame?.bytes.equals(q)).toBe(true);
    expect(ms).toBeLessThan(2000);
  });

  test('random bytes into FrontendFramer (startup and typed phases): only ProtocolError, always ends', () => {
    // Half of the inputs start with a plausible startup packet so the typed phase is reached.
    const plausible = fc
      .tuple(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 8 }))
      .map(([tail, cuts]) => ({
        input: Buffer.concat([
          encodeStartupMessage(PROTOCOL_3_0, [['user', 'u']]),
          encodeSync(),
          Buffer.from(tail),
        ]),
        cuts,
      }));
    const random = fc
      .tuple(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 8 }))
      .map(([raw, cuts]) => ({ input: Buffer.from(raw), cuts }));
    fc.assert(
      fc.property(fc.oneof(plausible, random), fc.boolean(), ({ input, cuts }, startup) => {
        const f = new FrontendFramer(1024);
        f.setStartupPhase(startup);
        let framed = 0;
        let calls = 0;
        try {
          for (const c of splitAt(input, cuts)) {
            f.push(c);
            for (let fr = f.next(); fr !== null; fr = f.next()) {
              framed += fr.bytes.length;
              f.setStartupPhase(false);
              calls++;
              expect(calls).toBeLessThanOrEqual(input.length);
            }
          }
          expect(framed + f.buffered).toBe(input.length);
        } catch (e) {
          if (!(e instanceof ProtocolError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });
});
