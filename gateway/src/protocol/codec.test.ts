/**
 * Frontend codec round trips through FrontendFramer: every message type, split at every byte, one
 * byte per push, many messages per push, and random splits of random message sequences; then the
 * strictness of every decoder (trailing bytes, truncated bodies, random bytes).
 */
import fc from 'fast-check';
import { ErrorCodes } from '../errors';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  FrontendFramer,
  MessageWriter,
  PROTOCOL_3_0,
  PROTOCOL_3_2,
  ProtocolError,
  encodeBind,
  encodeCancelRequest,
  encodeClose,
  encodeCopyData,
  encodeCopyDone,
  encodeCopyFail,
  encodeDescribe,
  encodeExecute,
  encodeFlush,
  encodeFunctionCall,
  encodeGSSENCRequest,
  encodeParse,
  encodePasswordMessage,
  encodeQuery,
  encodeSASLInitialResponse,
  encodeSSLRequest,
  encodeStartupMessage,
  encodeSync,
  encodeTerminate,
  readAuthentication,
  readBackendKeyData,
  readBind,
  readClose,
  readCopyFail,
  readCopyResponse,
  readDescribe,
  readEmpty,
  readErrorFields,
  readExecute,
  readFunctionCall,
  readNegotiateProtocolVersion,
  readParameterStatus,
  readParse,
  readQuery,
  readReadyForQuery,
  readSASLInitialResponse,
  readStartupPacket,
  scramChannelBindingFlag,
  readFrontendMessage,
  type AuthenticationResponseName,
  type BindParam,
  type FrontendFrame,
} from './index';

/** One encoded client message, how to decode it, and what decoding must give. */
interface Sample {
  readonly label: string;
  readonly startup: boolean;
  readonly bytes: Buffer;
  readonly decode: (frame: Buffer) => unknown;
  readonly expected: unknown;
  /** The decoder reads the body to its end (rest()), so trailing bytes are payload, not an error. */
  readonly opaqueTail?: boolean;
  /** PostgreSQL does not check what follows the fields (no pq_getmsgend): trailing bytes are accepted. */
  readonly ignoresTrailing?: boolean;
}

/** The union reader on a whole frame, as the session calls it after FrontendFramer. */
const decodeAs =
  (startup: boolean, authentication?: AuthenticationResponseName) =>
  (b: Buffer): unknown =>
    readFrontendMessage(
      { type: startup ? 0 : (b[0] as number), bytes: b, bodyOffset: startup ? 4 : 5 },
      authentication ? { authentication } : undefined,
    );
const typed = decodeAs(false);

function startupMessage(version: number, params: Array<[string, string]>): Sample {
  return {
    label: `StartupMessage ${version >>> 16}.${version & 0xffff}`,
    startup: true,
    bytes: encodeStartupMessage(version, params),
    decode: decodeAs(true),
    expected: { name: 'StartupMessage', protocolVersion: version, parameters: new Map(params) },
  };
}

function cancelRequest(processId: number, key: Buffer): Sample {
  return {
    label: `CancelRequest ${key.length}-byte key`,
    startup: true,
    bytes: encodeCancelRequest(processId, key),
    decode: decodeAs(true),
    expected: { name: 'CancelRequest', processId, secretKey: key },
    opaqueTail: true,
  };
}

const query = (sql: string): Sample => ({
  label: 'Query',
  startup: false,
  bytes: encodeQuery(sql),
  decode: typed,
  expected: { name: 'Query', sqlBytes: Buffer.from(sql) },
});

const parse = (statement: string, sql: string, paramTypes: number[]): Sample => ({
  label: 'Parse',
  startup: false,
  bytes: encodeParse(statement, sql, paramTypes),
  decode: typed,
  expected: { name: 'Parse', statement, sqlBytes: Buffer.from(sql), paramTypes },
});

const bind = (portal: string, statement: string, params: BindParam[], resultFormats: number[]): Sample => ({
  label: 'Bind',
  startup: false,
  bytes: encodeBind(portal, statement, params, resultFormats),
  decode: typed,
  expected: { name: 'Bind', portal, statement, params, resultFormats },
});

/** A Bind written by hand with an explicit list of parameter format codes (0, 1 or N of them). */
function bindWithFormats(
  formats: number[],
  values: Array<Buffer | null>,
  expectedFormats: Array<0 | 1>,
): Sample {
  const w = new MessageWriter().cstring('portal').cstring('stmt').int16(formats.length);
  for (const f of formats) w.int16(f);
  w.int16(values.length);
  for (const v of values) {
    if (v === null) w.int32(-1);
    else w.int32(v.length).bytes(v);
  }
  w.int16(1).int16(1);
  const params = values.map((value, i) => ({ format: expectedFormats[i], value }));
  return {
    label: `Bind with ${formats.length} format codes`,
    startup: false,
    bytes: w.message('B'),
    decode: typed,
    expected: { name: 'Bind', portal: 'portal', statement: 'stmt', params, resultFormats: [1] },
  };
}

const execute = (portal: string, maxRows: number): Sample => ({
  label: 'Execute',
  startup: false,
  bytes: encodeExecute(portal, maxRows),
  decode: typed,
  expected: { name: 'Execute', portal, maxRows },
});

const describe_ = (target: 'S' | 'P', objectName: string): Sample => ({
  label: `Describe ${target}`,
  startup: false,
  bytes: encodeDescribe(target, objectName),
  decode: typed,
  expected: { name: 'Describe', target, objectName },
});

const close = (target: 'S' | 'P', objectName: string): Sample => ({
  label: `Close ${target}`,
  startup: false,
  bytes: encodeClose(target, objectName),
  decode: typed,
  expected: { name: 'Close', target, objectName },
});

const empty = (label: string, encode: () => Buffer): Sample => ({
  label,
  startup: false,
  bytes: encode(),
  decode: typed,
  expected: { name: label },
  ignoresTrailing: label === 'Terminate' || label === 'CopyDone',
});

const copyData = (data: Buffer): Sample => ({
  label: 'CopyData',
  startup: false,
  bytes: encodeCopyData(data),
  decode: typed,
  expected: { name: 'CopyData', data },
  opaqueTail: true,
});

const copyFail = (message: string): Sample => ({
  label: 'CopyFail',
  startup: false,
  bytes: encodeCopyFail(message),
  decode: typed,
  expected: { name: 'CopyFail', message },
  ignoresTrailing: true,
});

const functionCall = (oid: number, args: BindParam[], resultFormat: 0 | 1): Sample => ({
  label: 'FunctionCall',
  startup: false,
  bytes: encodeFunctionCall(oid, args, resultFormat),
  decode: typed,
  expected: { name: 'FunctionCall', oid, args, resultFormat },
});

const passwordMessage = (password: string): Sample => {
  const b = Buffer.from(`${password}\0`, 'utf8');
  return {
    label: 'PasswordMessage',
    startup: false,
    bytes: encodePasswordMessage(b),
    decode: typed,
    expected: { name: 'PasswordMessage', data: b },
  };
};

const saslInitialResponse = (mechanism: string, data: Buffer | null): Sample => ({
  label: `SASLInitialResponse${data === null ? ' (no data)' : ''}`,
  startup: false,
  bytes: encodeSASLInitialResponse(mechanism, data),
  decode: decodeAs(false, 'SASLInitialResponse'),
  expected: { name: 'SASLInitialResponse', mechanism, data },
});

const key32 = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff));

const STARTUP_SAMPLES: Sample[] = [
  startupMessage(PROTOCOL_3_0, [
    ['user', 'alice'],
    ['database', 'app'],
    ['application_name', 'psql'],
    ['options', '-c search_path=app -c statement_timeout=5s'],
  ]),
  startupMessage(PROTOCOL_3_2, [
    ['user', 'bob'],
    ['_pq_.test_protocol_negotiation', 'on'],
    ['client_encoding', 'UTF8'],
  ]),
  {
    label: 'SSLRequest',
    startup: true,
    bytes: encodeSSLRequest(),
    decode: decodeAs(true),
    expected: { name: 'SSLRequest' },
  },
  {
    label: 'GSSENCRequest',
    startup: true,
    bytes: encodeGSSENCRequest(),
    decode: decodeAs(true),
    expected: { name: 'GSSENCRequest' },
  },
  cancelRequest(4242, Buffer.from([1, 2, 3, 4])),
  cancelRequest(-7, key32),
];

const TYPED_SAMPLES: Sample[] = [
  query('SELECT 1'),
  query("SELECT 'héllo wörld ✓ 🐘'"),
  query(''),
  parse('s1', 'SELECT $1::int + $2', [23, 0xffffffff]),
  parse('', 'BEGIN', []),
  bind(
    '',
    's1',
    [
      { format: 0, value: Buffer.from('42') },
      { format: 1, value: Buffer.from([0, 0, 0, 7]) },
      { format: 0, value: null },
      { format: 1, value: Buffer.alloc(0) },
    ],
    [0, 1],
  ),
  bind('p', '', [], []),
  bindWithFormats([], [Buffer.from('a'), null], [0, 0]),
  bindWithFormats([1], [Buffer.from([1]), Buffer.from([2]), null], [1, 1, 1]),
  bindWithFormats([1, 0, 1], [Buffer.from([9]), Buffer.from('x'), null], [1, 0, 1]),
  execute('', 0),
  execute('portal_1', 100),
  describe_('S', 's1'),
  describe_('P', ''),
  close('S', 's1'),
  close('P', 'portal_1'),
  empty('Sync', encodeSync),
  empty('Flush', encodeFlush),
  empty('Terminate', encodeTerminate),
  copyData(Buffer.from('1\tone\n2\ttwo\n')),
  copyData(Buffer.alloc(0)),
  empty('CopyDone', encodeCopyDone),
  copyFail('client aborted'),
  functionCall(
    1598,
    [
      { format: 1, value: Buffer.from([0, 0, 0, 1]) },
      { format: 0, value: null },
    ],
    1,
  ),
  functionCall(0xfffffffe, [], 0),
  passwordMessage('md5a3556571e93b0d20722ba62be61e8c2d'),
  saslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=rOprNGfwEbeRWgbNEkqO')),
  saslInitialResponse('SCRAM-SHA-256-PLUS', null),
];

const ALL_SAMPLES = [...STARTUP_SAMPLES, ...TYPED_SAMPLES];

/** Feeds chunks into a framer; after `startupCount` frames it leaves the startup phase. */
function frameChunks(chunks: readonly Buffer[], startupCount: number): FrontendFrame[] {
  const framer = new FrontendFramer(DEFAULT_MAX_MESSAGE_BYTES);
  framer.setStartupPhase(startupCount > 0);
  const frames: FrontendFrame[] = [];
  for (const c of chunks) {
    framer.push(c);
    for (let f = framer.next(); f !== null; f = framer.next()) {
      frames.push(f);
      if (frames.length === startupCount) framer.setStartupPhase(false);
    }
  }
  expect(framer.buffered).toBe(0);
  return frames;
}

function expectFrames(frames: readonly FrontendFrame[], samples: readonly Sample[]): void {
  expect(frames.length).toBe(samples.length);
  frames.forEach((frame, i) => {
    const s = samples[i] as Sample;
    expect(frame.bytes.equals(s.bytes)).toBe(true);
    expect(frame.type).toBe(s.startup ? 0 : s.bytes[0]);
    expect(frame.bodyOffset).toBe(s.startup ? 4 : 5);
    const m = s.decode(frame.bytes) as { bytes: Buffer };
    // The message keeps the frame itself: a view, not a copy.
    expect(m.bytes).toBe(frame.bytes);
    expect(m).toEqual({ ...(s.expected as object), bytes: s.bytes });
  });
}

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

describe('frontend messages through FrontendFramer', () => {
  test.each(ALL_SAMPLES.map((s) => [s.label, s] as const))('%s: decodes to the encoded values', (_l, s) => {
    expectFrames(frameChunks([s.bytes], s.startup ? 1 : 0), [s]);
  });

  test.each(ALL_SAMPLES.map((s) => [s.label, s] as const))('%s: split at every byte position', (_l, s) => {
    for (let p = 1; p < s.bytes.length; p++) {
      const frames = frameChunks([s.bytes.subarray(0, p), s.bytes.subarray(p)], s.startup ? 1 : 0);
      expectFrames(frames, [s]);
    }
  });

  test.each(ALL_SAMPLES.map((s) => [s.label, s] as const))('%s: one byte per push', (_l, s) => {
    const chunks = Array.from(s.bytes, (b) => Buffer.from([b]));
    expectFrames(frameChunks(chunks, s.startup ? 1 : 0), [s]);
  });

  test('a frame is not returned before its last byte arrives', () => {
    for (const s of ALL_SAMPLES) {
      const framer = new FrontendFramer(DEFAULT_MAX_MESSAGE_BYTES);
      framer.setStartupPhase(s.startup);
      framer.push(s.bytes.subarray(0, s.bytes.length - 1));
      expect(framer.next()).toBeNull();
      framer.push(s.bytes.subarray(s.bytes.length - 1));
      expect(framer.next()?.bytes.equals(s.bytes)).toBe(true);
      expect(framer.next()).toBeNull();
    }
  });

  test('many messages in one large push, and every one of them split at every byte', () => {
    // A startup packet first, then every typed message three times over.
    const startup = STARTUP_SAMPLES[0] as Sample;
    const seq = [startup, ...TYPED_SAMPLES, ...TYPED_SAMPLES, ...TYPED_SAMPLES];
    const all = Buffer.concat(seq.map((s) => s.bytes));
    expectFrames(frameChunks([all], 1), seq);
    for (let p = 1; p < all.length; p += 7) {
      expectFrames(frameChunks([all.subarray(0, p), all.subarray(p)], 1), seq);
    }
    expectFrames(
      frameChunks(
        Array.from(all, (b) => Buffer.from([b])),
        1,
      ),
      seq,
    );
  });

  test('several startup packets in one push (SSLRequest then StartupMessage)', () => {
    const seq = [STARTUP_SAMPLES[2] as Sample, STARTUP_SAMPLES[1] as Sample];
    expectFrames(frameChunks([Buffer.concat(seq.map((s) => s.bytes))], 2), seq);
  });
});

// Arbitraries for random message sequences.
const text = fc.string({ unit: 'grapheme', maxLength: 24 }).map((s) => s.replace(/\0/g, ''));
const nonEmptyText = text.filter((s) => s.length > 0);
const bytes = (maxLength = 48): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ maxLength }).map((u) => Buffer.from(u));
const param: fc.Arbitrary<BindParam> = fc.record({
  format: fc.constantFrom(0 as const, 1 as const),
  value: fc.option(bytes(), { nil: null }),
});
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const int32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const target = fc.constantFrom('S' as const, 'P' as const);

const typedSample: fc.Arbitrary<Sample> = fc.oneof(
  text.map(query),
  fc.tuple(text, text, fc.array(uint32, { maxLength: 6 })).map(([s, q, t]) => parse(s, q, t)),
  fc
    .tuple(text, text, fc.array(param, { maxLength: 6 }), fc.array(fc.constantFrom(0, 1), { maxLength: 4 }))
    .map(([p, s, ps, rf]) => bind(p, s, ps, rf)),
  fc.tuple(text, fc.integer({ min: 0, max: 0x7fffffff })).map(([p, n]) => execute(p, n)),
  fc.tuple(target, text).map(([t, n]) => describe_(t, n)),
  fc.tuple(target, text).map(([t, n]) => close(t, n)),
  fc.constantFrom(
    empty('Sync', encodeSync),
    empty('Flush', encodeFlush),
    empty('Terminate', encodeTerminate),
    empty('CopyDone', encodeCopyDone),
  ),
  bytes(300).map(copyData),
  text.map(copyFail),
  fc
    .tuple(uint32, fc.array(param, { maxLength: 4 }), fc.constantFrom(0 as const, 1 as const))
    .map(([o, a, r]) => functionCall(o, a, r)),
  text.map(passwordMessage),
  fc.tuple(nonEmptyText, fc.option(bytes(), { nil: null })).map(([m, d]) => saslInitialResponse(m, d)),
);

const startupSample: fc.Arbitrary<Sample> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(PROTOCOL_3_0, PROTOCOL_3_2),
      nonEmptyText,
      fc.uniqueArray(
        fc.tuple(
          nonEmptyText.filter((k) => k !== 'user'),
          text,
        ),
        {
          maxLength: 5,
          selector: ([k]) => k,
        },
      ),
    )
    .map(([v, user, rest]) => startupMessage(v, [['user', user], ...rest])),
  fc.constant(STARTUP_SAMPLES[2] as Sample),
  fc.constant(STARTUP_SAMPLES[3] as Sample),
  fc
    .tuple(
      int32,
      fc.integer({ min: 4, max: 256 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
    )
    .map(([pid, k]) => cancelRequest(pid, Buffer.from(k))),
);

describe('random message sequences, random splits (fast-check)', () => {
  test('frames and decoded values are independent of how the bytes are split', () => {
    fc.assert(
      fc.property(
        fc.option(startupSample, { nil: undefined }),
        fc.array(typedSample, { maxLength: 25 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (first, typed, cuts) => {
          const seq = first ? [first, ...typed] : typed;
          const all = Buffer.concat(seq.map((s) => s.bytes));
          expectFrames(frameChunks(splitAt(all, cuts), first ? 1 : 0), seq);
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** Rewrites a frame's length word after its body changed. */
function withBody(s: Sample, newBody: Buffer): Buffer {
  const off = s.startup ? 4 : 5;
  const out = Buffer.concat([s.bytes.subarray(0, off), newBody]);
  out.writeInt32BE(out.length - (s.startup ? 0 : 1), s.startup ? 0 : 1);
  return out;
}

function expectProtocolError(fn: () => unknown, codes?: readonly string[]): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(ProtocolError);
  if (codes) expect(codes).toContain((thrown as ProtocolError).code);
}

describe('decoders are strict about the body length', () => {
  const structured = ALL_SAMPLES.filter(
    (s) => !s.opaqueTail && s.label !== 'SSLRequest' && s.label !== 'GSSENCRequest',
  );
  const checked = structured.filter((s) => !s.ignoresTrailing);

  test.each(checked.map((s) => [s.label, s] as const))('%s rejects a trailing byte', (_l, s) => {
    const off = s.startup ? 4 : 5;
    for (const extra of [0x00, 0x41]) {
      const frame = withBody(s, Buffer.concat([s.bytes.subarray(off), Buffer.from([extra])]));
      expectProtocolError(
        () => s.decode(frame),
        [ErrorCodes.PROTOCOL_MALFORMED, ErrorCodes.PROTOCOL_STARTUP_INVALID],
      );
    }
  });

  test.each(structured.filter((s) => s.ignoresTrailing).map((s) => [s.label, s] as const))(
    '%s accepts trailing bytes, as PostgreSQL does',
    (_l, s) => {
      const frame = withBody(s, Buffer.concat([s.bytes.subarray(5), Buffer.from([0x41, 0])]));
      expect(s.decode(frame)).toMatchObject(s.expected as object);
    },
  );

  test.each(structured.map((s) => [s.label, s] as const))(
    '%s rejects every truncation of its body',
    (_l, s) => {
      const off = s.startup ? 4 : 5;
      for (let n = 0; n < s.bytes.length - off; n++) {
        const frame = withBody(s, s.bytes.subarray(off, off + n));
        expectProtocolError(
          () => s.decode(frame),
          [
            ErrorCodes.PROTOCOL_MALFORMED,
            ErrorCodes.PROTOCOL_STARTUP_INVALID,
            ErrorCodes.PROTOCOL_STARTUP_LENGTH,
          ],
        );
      }
    },
  );

  test('SSLRequest and GSSENCRequest: bytes after the code are ignored, as PostgreSQL ignores them', () => {
    for (const s of [STARTUP_SAMPLES[2] as Sample, STARTUP_SAMPLES[3] as Sample]) {
      const frame = withBody(s, Buffer.concat([s.bytes.subarray(4), Buffer.from([0, 0, 0, 1])]));
      expect(readStartupPacket(frame)).toEqual({ ...(s.expected as object), bytes: frame });
    }
  });

  test('Sync and Flush reject a body (pq_getmsgend)', () => {
    for (const s of TYPED_SAMPLES.filter((x) => ['Sync', 'Flush'].includes(x.label))) {
      expectProtocolError(() => s.decode(withBody(s, Buffer.from([0]))), [ErrorCodes.PROTOCOL_MALFORMED]);
    }
  });

  test('Bind: format counts, format codes, parameter lengths', () => {
    const b = (fn: (w: MessageWriter) => void): Buffer => {
      const w = new MessageWriter().cstring('').cstring('');
      fn(w);
      return w.message('B');
    };
    // 2 format codes for 3 parameters
    const mismatch = b((w) => w.int16(2).int16(0).int16(0).int16(3).int32(-1).int32(-1).int32(-1).int16(0));
    expectProtocolError(() => readBind(mismatch), [ErrorCodes.PROTOCOL_MALFORMED]);
    // A format code used by a parameter must be 0 or 1 ("unsupported format code").
    expectProtocolError(
      () => readBind(b((w) => w.int16(1).int16(2).int16(1).int32(-1).int16(0))),
      [ErrorCodes.PROTOCOL_MALFORMED],
    );
    expectProtocolError(() => readBind(b((w) => w.int16(-1))), [ErrorCodes.PROTOCOL_MALFORMED]);
    expectProtocolError(() => readBind(b((w) => w.int16(0).int16(-3))), [ErrorCodes.PROTOCOL_MALFORMED]);
    expectProtocolError(
      () => readBind(b((w) => w.int16(0).int16(1).int32(-2).int16(0))),
      [ErrorCodes.PROTOCOL_MALFORMED],
    );
    expectProtocolError(
      () => readBind(b((w) => w.int16(0).int16(1).int32(0x7fffffff).int16(0))),
      [ErrorCodes.PROTOCOL_MALFORMED],
    );
    expectProtocolError(
      () => readBind(b((w) => w.int16(0).int16(0).int16(-1))),
      [ErrorCodes.PROTOCOL_MALFORMED],
    );
  });

  test('Describe/Close targets, FunctionCall formats, SASLInitialResponse length', () => {
    expectProtocolError(() => readDescribe(new MessageWriter().int8(0x58).cstring('x').message('D')));
    expectProtocolError(() => readClose(new MessageWriter().int8(0x73).cstring('x').message('C')));
    expectProtocolError(() =>
      readFunctionCall(new MessageWriter().uint32(1).int16(0).int16(0).int16(2).message('F')),
    );
    expectProtocolError(() =>
      readFunctionCall(
        new MessageWriter().uint32(1).int16(2).int16(0).int16(0).int16(1).int32(-1).int16(0).message('F'),
      ),
    );
    expectProtocolError(() =>
      readSASLInitialResponse(new MessageWriter().cstring('SCRAM-SHA-256').int32(-2).message('p')),
    );
    expectProtocolError(() =>
      readSASLInitialResponse(new MessageWriter().cstring('SCRAM-SHA-256').int32(10).message('p')),
    );
  });

  test('scramChannelBindingFlag', () => {
    expect(scramChannelBindingFlag(Buffer.from('n,,n=,r=x'))).toBe('n');
    expect(scramChannelBindingFlag(Buffer.from('y,,n=,r=x'))).toBe('y');
    expect(scramChannelBindingFlag(Buffer.from('p=tls-server-end-point,,n=,r=x'))).toBe('p');
    expect(scramChannelBindingFlag(Buffer.from('x'))).toBeNull();
    expect(scramChannelBindingFlag(Buffer.alloc(0))).toBeNull();
    expect(scramChannelBindingFlag(null)).toBeNull();
  });
});

/** Every decoder, on a frame with a correct header and any body; and on any bytes at all. */
const DECODERS: Array<[string, number, (frame: Buffer) => unknown]> = [
  ['Query', 0x51, (f) => readQuery(f)],
  ['Parse', 0x50, (f) => readParse(f)],
  ['Bind', 0x42, (f) => readBind(f)],
  ['Execute', 0x45, (f) => readExecute(f)],
  ['Describe', 0x44, (f) => readDescribe(f)],
  ['Close', 0x43, (f) => readClose(f)],
  ['CopyFail', 0x66, (f) => readCopyFail(f)],
  ['Sync', 0x53, (f) => readEmpty(f, 'Sync')],
  ['FunctionCall', 0x46, (f) => readFunctionCall(f)],
  ['SASLInitialResponse', 0x70, (f) => readSASLInitialResponse(f)],
  ['Authentication', 0x52, readAuthentication],
  ['BackendKeyData', 0x4b, readBackendKeyData],
  ['ReadyForQuery', 0x5a, readReadyForQuery],
  ['ErrorResponse', 0x45, readErrorFields],
  ['ParameterStatus', 0x53, readParameterStatus],
  ['NegotiateProtocolVersion', 0x76, readNegotiateProtocolVersion],
  ['CopyInResponse', 0x47, readCopyResponse],
];

function onlyProtocolErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
  }
}

/** Random bodies biased towards small counts and lengths, so decoders get past their first field. */
const fuzzBody = fc.oneof(
  bytes(64),
  fc
    .array(
      fc.oneof(
        fc.constantFrom(
          Buffer.from([0]),
          Buffer.from([0, 0]),
          Buffer.from([0, 1]),
          Buffer.from([0xff, 0xff]),
        ),
        fc.constantFrom(
          Buffer.from([0, 0, 0, 0]),
          Buffer.from([0, 0, 0, 4]),
          Buffer.from([0, 3, 0, 2]),
          Buffer.from([0xff, 0xff, 0xff, 0xff]),
        ),
        fc.constantFrom(Buffer.from('S'), Buffer.from('P'), Buffer.from('x\0')),
        bytes(6),
      ),
      { maxLength: 16 },
    )
    .map((parts) => Buffer.concat(parts)),
);

describe('random bytes into every decoder (fast-check)', () => {
  test.each(DECODERS)('%s throws only ProtocolError', (_name, type, decode) => {
    fc.assert(
      fc.property(fuzzBody, (b) => {
        const frame = Buffer.concat([Buffer.from([type, 0, 0, 0, 0]), b]);
        frame.writeInt32BE(4 + b.length, 1);
        onlyProtocolErrors(() => decode(frame));
        onlyProtocolErrors(() => decode(b));
      }),
      { numRuns: 600 },
    );
  });

  test('readStartupPacket throws only ProtocolError', () => {
    const codes = fc.constantFrom(
      PROTOCOL_3_0,
      PROTOCOL_3_2,
      80877102,
      80877103,
      80877104,
      0x00020000,
      0x00040000,
    );
    fc.assert(
      fc.property(codes, fuzzBody, bytes(16), (code, b, raw) => {
        const p = Buffer.concat([Buffer.alloc(8), b]);
        p.writeInt32BE(p.length, 0);
        p.writeInt32BE(code, 4);
        onlyProtocolErrors(() => readStartupPacket(p));
        onlyProtocolErrors(() => readStartupPacket(raw));
      }),
      { numRuns: 2000 },
    );
  });
});
