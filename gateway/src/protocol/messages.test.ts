/**
 * The closed unions (readFrontendMessage / readBackendMessage): round trips against pg-protocol's
 * serializer (frontend) and parser (backend), every split of the bytes, and the cases where
 * pgward's reading must be exactly PostgreSQL's (each of those failed on the signed-int16 codec).
 */
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser';
import type { BackendMessage as PgBackendMessage } from 'pg-protocol/dist/messages';
import { assertNever, ErrorCodes } from '../errors';
import {
  BackendScanner,
  DEFAULT_MAX_MESSAGE_BYTES,
  FrontendFramer,
  MessageWriter,
  ProtocolError,
  SESSION_INSPECTED_BACKEND_TYPES,
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationMD5Password,
  encodeAuthenticationOk,
  encodeAuthenticationSASL,
  encodeBackendKeyData,
  encodeBind,
  encodeBindComplete,
  encodeCloseComplete,
  encodeCommandComplete,
  encodeCopyBothResponse,
  encodeCopyInResponse,
  encodeCopyOutResponse,
  encodeDataRow,
  encodeEmptyQueryResponse,
  encodeErrorResponse,
  encodeFunctionCall,
  encodeFunctionCallResponse,
  encodeNegotiateProtocolVersion,
  encodeNoData,
  encodeNoticeResponse,
  encodeNotificationResponse,
  encodeParameterDescription,
  encodeParameterStatus,
  encodeParse,
  encodeParseComplete,
  encodePortalSuspended,
  encodeReadyForQuery,
  encodeRowDescription,
  parseCommandTag,
  readBackendMessage,
  readBind,
  readFrontendMessage,
  readParse,
  typeTable,
  type BackendMessage,
  type FieldDescription,
  type FrontendFrame,
  type FrontendMessage,
} from './index';

function frame(bytes: Buffer, startup = false): FrontendFrame {
  return { type: startup ? 0 : (bytes[0] as number), bytes, bodyOffset: startup ? 4 : 5 };
}

function thrownBy(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return e as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

const text = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('frontend: what node-postgres (pg-protocol serialize) writes decodes to what it meant', () => {
  // Each row names the message, its bytes, what it decodes to, and whether it is a startup packet
  // (always four values: jest reads a test function with more parameters than values as async).
  const rows: Array<[string, Buffer, Partial<FrontendMessage> & Record<string, unknown>, boolean?]> = [
    [
      'StartupMessage',
      serialize.startup({ user: 'alice', database: 'app', application_name: 'x' }),
      {
        name: 'StartupMessage',
        protocolVersion: 0x00030000,
        parameters: new Map([
          ['user', 'alice'],
          ['database', 'app'],
          ['application_name', 'x'],
          ['client_encoding', 'UTF8'],
        ]),
      },
      true,
    ],
    ['SSLRequest', serialize.requestSsl(), { name: 'SSLRequest' }, true],
    [
      'CancelRequest',
      serialize.cancel(4242, 0x01020304),
      { name: 'CancelRequest', processId: 4242, secretKey: Buffer.from([1, 2, 3, 4]) },
      true,
    ],
    ['Query', serialize.query('SELECT 1'), { name: 'Query', sqlBytes: Buffer.from('SELECT 1') }],
    [
      'Parse',
      serialize.parse({ name: 's1', text: 'SELECT $1::int', types: [23] }),
      { name: 'Parse', statement: 's1', sqlBytes: Buffer.from('SELECT $1::int'), paramTypes: [23] },
    ],
    [
      'Bind',
      serialize.bind({ portal: 'p', statement: 's1', values: ['42', null, Buffer.from([7])], binary: true }),
      {
        name: 'Bind',
        portal: 'p',
        statement: 's1',
        params: [
          { format: 0, value: text('42') },
          { format: 0, value: null },
          { format: 1, value: Buffer.from([7]) },
        ],
        resultFormats: [1],
      },
    ],
    ['Execute', serialize.execute({ portal: 'p', rows: 10 }), { name: 'Execute', portal: 'p', maxRows: 10 }],
    ['Execute (unnamed)', serialize.execute(), { name: 'Execute', portal: '', maxRows: 0 }],
    [
      'Describe',
      serialize.describe({ type: 'S', name: 's1' }),
      { name: 'Describe', target: 'S', objectName: 's1' },
    ],
    ['Close', serialize.close({ type: 'P', name: 'p' }), { name: 'Close', target: 'P', objectName: 'p' }],
    ['Sync', serialize.sync(), { name: 'Sync' }],
    ['Flush', serialize.flush(), { name: 'Flush' }],
    ['Terminate', serialize.end(), { name: 'Terminate' }],
    ['CopyData', serialize.copyData(text('1\tx\n')), { name: 'CopyData', data: text('1\tx\n') }],
    ['CopyDone', serialize.copyDone(), { name: 'CopyDone' }],
    ['CopyFail', serialize.copyFail('boom'), { name: 'CopyFail', message: 'boom' }],
    ['PasswordMessage', serialize.password('secret'), { name: 'PasswordMessage', data: text('secret\0') }],
  ];
  const cases = rows.map(([l, bytes, expected, startup]) => [l, bytes, expected, startup === true] as const);
  test.each(cases)('%s', (_l, bytes, expected, startup) => {
    const m = readFrontendMessage(frame(bytes, startup));
    expect(m).toEqual({ ...expected, bytes });
    expect(m.bytes).toBe(bytes);
  });

  test('SASLInitialResponse and SASLResponse, read as the authentication exchange says', () => {
    const first = serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=*,r=abc');
    expect(readFrontendMessage(frame(first), { authentication: 'SASLInitialResponse' })).toEqual({
      name: 'SASLInitialResponse',
      bytes: first,
      mechanism: 'SCRAM-SHA-256',
      data: text('n,,n=*,r=abc'),
    });
    const final = serialize.sendSCRAMClientFinalMessage('c=biws,r=abc,p=xyz');
    expect(readFrontendMessage(frame(final), { authentication: 'SASLResponse' })).toEqual({
      name: 'SASLResponse',
      bytes: final,
      data: text('c=biws,r=abc,p=xyz'),
    });
    expect(readFrontendMessage(frame(final), { authentication: 'GSSResponse' }).name).toBe('GSSResponse');
  });

  test('a type byte that is not a frontend message', () => {
    expect(thrownBy(() => readFrontendMessage(frame(Buffer.from([0x54, 0, 0, 0, 4])))).code).toBe(
      ErrorCodes.PROTOCOL_UNKNOWN_MESSAGE,
    );
  });
});

describe('frontend exactness: counts are unsigned Int16, as pq_getmsgint(msg, 2) returns them', () => {
  const values = (n: number): string[] => Array.from({ length: n }, (_, i) => String(i));

  test('a Bind of 40,000 parameters from node-postgres decodes (was "negative parameter count")', () => {
    const b = serialize.bind({ statement: 's', values: values(40_000) });
    const m = readBind(b);
    expect(m.params).toHaveLength(40_000);
    expect(m.params[39_999]).toEqual({ format: 0, value: text('39999') });
    expect(m.resultFormats).toEqual([0]);
  });

  test('65,535 parameters, the most PostgreSQL allows, with one shared binary format', () => {
    const w = new MessageWriter().cstring('').cstring('s').int16(1).int16(1).int16(65_535);
    for (let i = 0; i < 65_535; i++) w.int32(1).int8(i & 0xff);
    const m = readFrontendMessage(frame(w.int16(0).message('B')));
    expect(m.name === 'Bind' && m.params.length).toBe(65_535);
    expect(m.name === 'Bind' && m.params[65_534]).toEqual({ format: 1, value: Buffer.from([0xfe]) });
  });

  test('40,000 format codes for 40,000 parameters (one each)', () => {
    const params = Array.from({ length: 40_000 }, (_, i) => ({
      format: (i % 2) as 0 | 1,
      value: i % 3 === 0 ? null : Buffer.from([i & 0xff]),
    }));
    expect(readBind(encodeBind('', 's', params)).params).toEqual(params);
  });

  test('a Parse of 40,000 parameter types, a FunctionCall of 32,768 arguments', () => {
    const types = Array.from({ length: 40_000 }, (_, i) => i + 1);
    expect(readParse(encodeParse('s', 'SELECT 1', types)).paramTypes).toEqual(types);
    const args = Array.from({ length: 32_768 }, () => ({ format: 0 as const, value: null }));
    const f = readFrontendMessage(frame(encodeFunctionCall(1598, args)));
    expect(f.name === 'FunctionCall' && f.args.length).toBe(32_768);
  });

  test('a count larger than the body is refused before anything of its size is allocated', () => {
    const w = new MessageWriter().cstring('').cstring('').int16(0).int16(65_535).int32(-1);
    expect(thrownBy(() => readBind(w.int16(0).message('B'))).message).toMatch(/exceeds the message/);
    const p = new MessageWriter().cstring('').cstring('x').int16(65_535).uint32(23).message('P');
    expect(thrownBy(() => readParse(p)).message).toMatch(/exceeds the message/);
  });
});

describe('frontend exactness: format codes, trailing bytes and terminators as postgres.c reads them', () => {
  const bindWith = (fn: (w: MessageWriter) => void): FrontendFrame => {
    const w = new MessageWriter().cstring('').cstring('s');
    fn(w);
    return frame(w.message('B'));
  };

  test('a lone format code no parameter uses is not checked; result formats are the server’s to check', () => {
    const m = readFrontendMessage(bindWith((w) => w.int16(1).int16(2).int16(0).int16(1).int16(7)));
    expect(m).toMatchObject({ name: 'Bind', params: [], resultFormats: [7] });
    // A used format code other than 0 or 1: "unsupported format code".
    const used = bindWith((w) => w.int16(1).int16(2).int16(1).int32(-1).int16(0));
    expect(thrownBy(() => readFrontendMessage(used)).message).toMatch(/unsupported format code 2/);
    const perParam = bindWith((w) => w.int16(2).int16(0).int16(-1).int16(2).int32(-1).int32(-1).int16(0));
    expect(thrownBy(() => readFrontendMessage(perParam)).message).toMatch(/unsupported format code -1/);
  });

  test('format counts other than 0, 1 or one per parameter', () => {
    const two = bindWith((w) => w.int16(2).int16(0).int16(0).int16(3).int32(-1).int32(-1).int32(-1).int16(0));
    expect(thrownBy(() => readFrontendMessage(two)).message).toMatch(/2 parameter formats for 3 parameters/);
    const fc2 = new MessageWriter().uint32(1).int16(2).int16(0).int16(0).int16(1).int32(-1).int16(0);
    expect(thrownBy(() => readFrontendMessage(frame(fc2.message('F')))).message).toMatch(/2 formats for 1/);
  });

  test('Terminate and CopyDone bodies are never read; bytes after CopyFail’s string are ignored', () => {
    const t = new MessageWriter().int32(7).message('X');
    expect(readFrontendMessage(frame(t))).toEqual({ name: 'Terminate', bytes: t });
    const d = new MessageWriter().cstring('x').message('c');
    expect(readFrontendMessage(frame(d))).toEqual({ name: 'CopyDone', bytes: d });
    const f = new MessageWriter().cstring('why').int8(0x41).message('f');
    expect(readFrontendMessage(frame(f))).toEqual({ name: 'CopyFail', bytes: f, message: 'why' });
  });

  test('Sync, Flush, Query, Parse, Bind, Execute, Describe, Close end exactly (pq_getmsgend)', () => {
    const withTail = (b: Buffer): FrontendFrame => {
      const out = Buffer.concat([b, Buffer.from([0])]);
      out.writeInt32BE(out.length - 1, 1);
      return frame(out);
    };
    for (const b of [
      serialize.sync(),
      serialize.flush(),
      serialize.query('x'),
      serialize.parse({ text: 'x' }),
      serialize.bind({}),
      serialize.execute({ portal: 'p', rows: 1 }),
      serialize.describe({ type: 'P' }),
      serialize.close({ type: 'S', name: 's' }),
    ]) {
      expect(thrownBy(() => readFrontendMessage(withTail(b))).message).toMatch(/trailing bytes/);
    }
  });

  test('missing String terminators', () => {
    const noNul = (type: string, body: Buffer): FrontendFrame =>
      frame(new MessageWriter().bytes(body).message(type));
    for (const f of [
      noNul('Q', text('SELECT 1')),
      noNul('P', text('s\0SELECT 1')),
      noNul('B', text('portal')),
      noNul('E', text('p')),
      noNul('D', text('Sname')),
      noNul('C', text('Pname')),
      noNul('f', text('why')),
    ]) {
      expect(thrownBy(() => readFrontendMessage(f)).code).toBe(ErrorCodes.PROTOCOL_MALFORMED);
    }
  });

  test('a PasswordMessage is exactly one String (recv_password_packet)', () => {
    for (const body of ['secret', 'sec\0ret\0', '']) {
      const p = new MessageWriter().bytes(text(body)).message('p');
      expect(thrownBy(() => readFrontendMessage(frame(p))).message).toMatch(/invalid password packet size/);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Backend

const FIELD: FieldDescription = {
  name: 'id',
  tableOid: 16_384,
  columnAttributeNumber: 1,
  typeOid: 23,
  typeSize: 4,
  typeModifier: -1,
  format: 0,
};

interface BackendSample {
  readonly label: string;
  readonly bytes: Buffer;
  /** readBackendMessage's result, without `bytes`. */
  readonly expected: Record<string, unknown>;
  /** pg-protocol's reading of the same bytes (a subset), or undefined where it has no parser. */
  readonly pg?: Record<string, unknown>;
}

const errorFields = { severity: 'ERROR', code: '42P01', message: 'relation "t" does not exist', hint: 'h' };

const BACKEND_SAMPLES: BackendSample[] = [
  {
    label: 'AuthenticationOk',
    bytes: encodeAuthenticationOk(),
    expected: { name: 'AuthenticationOk' },
    pg: { name: 'authenticationOk' },
  },
  {
    label: 'AuthenticationCleartextPassword',
    bytes: encodeAuthenticationCleartextPassword(),
    expected: { name: 'AuthenticationCleartextPassword' },
    pg: { name: 'authenticationCleartextPassword' },
  },
  {
    label: 'AuthenticationMD5Password',
    bytes: encodeAuthenticationMD5Password(Buffer.from([1, 2, 3, 4])),
    expected: { name: 'AuthenticationMD5Password', salt: Buffer.from([1, 2, 3, 4]) },
    pg: { name: 'authenticationMD5Password', salt: Buffer.from([1, 2, 3, 4]) },
  },
  {
    label: 'AuthenticationSASL',
    bytes: encodeAuthenticationSASL(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']),
    expected: { name: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] },
    pg: { name: 'authenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] },
  },
  {
    label: 'AuthenticationSASLContinue',
    bytes: new MessageWriter().int32(11).bytes(text('r=a,s=b,i=4096')).message('R'),
    expected: { name: 'AuthenticationSASLContinue', data: text('r=a,s=b,i=4096') },
    pg: { name: 'authenticationSASLContinue', data: 'r=a,s=b,i=4096' },
  },
  {
    label: 'AuthenticationSASLFinal',
    bytes: new MessageWriter().int32(12).bytes(text('v=sig')).message('R'),
    expected: { name: 'AuthenticationSASLFinal', data: text('v=sig') },
    pg: { name: 'authenticationSASLFinal', data: 'v=sig' },
  },
  {
    label: 'AuthenticationKerberosV5',
    bytes: new MessageWriter().int32(2).message('R'),
    expected: { name: 'AuthenticationKerberosV5' },
  },
  {
    label: 'AuthenticationGSS',
    bytes: new MessageWriter().int32(7).message('R'),
    expected: { name: 'AuthenticationGSS' },
  },
  {
    label: 'AuthenticationGSSContinue',
    bytes: new MessageWriter()
      .int32(8)
      .bytes(Buffer.from([9, 9]))
      .message('R'),
    expected: { name: 'AuthenticationGSSContinue', data: Buffer.from([9, 9]) },
  },
  {
    label: 'AuthenticationSSPI',
    bytes: new MessageWriter().int32(9).message('R'),
    expected: { name: 'AuthenticationSSPI' },
  },
  {
    label: 'BackendKeyData (3.0)',
    bytes: encodeBackendKeyData(1234, Buffer.from([0, 0, 0, 42])),
    expected: { name: 'BackendKeyData', processId: 1234, secretKey: Buffer.from([0, 0, 0, 42]) },
    pg: { name: 'backendKeyData', processID: 1234, secretKey: 42 },
  },
  {
    label: 'BackendKeyData (3.2, 32-byte key)',
    bytes: encodeBackendKeyData(1234, Buffer.alloc(32, 0xab)),
    expected: { name: 'BackendKeyData', processId: 1234, secretKey: Buffer.alloc(32, 0xab) },
  },
  {
    label: 'ParameterStatus',
    bytes: encodeParameterStatus('client_encoding', 'UTF8'),
    expected: { name: 'ParameterStatus', parameter: 'client_encoding', value: 'UTF8' },
    pg: { name: 'parameterStatus', parameterName: 'client_encoding', parameterValue: 'UTF8' },
  },
  {
    label: 'ReadyForQuery',
    bytes: encodeReadyForQuery('T'),
    expected: { name: 'ReadyForQuery', status: 'T' },
    pg: { name: 'readyForQuery', status: 'T' },
  },
  {
    label: 'ErrorResponse',
    bytes: encodeErrorResponse(errorFields),
    expected: { name: 'ErrorResponse', fields: expect.objectContaining(errorFields) },
    pg: { name: 'error', severity: 'ERROR', code: '42P01', message: errorFields.message, hint: 'h' },
  },
  {
    label: 'NoticeResponse',
    bytes: encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: 'n' }),
    expected: {
      name: 'NoticeResponse',
      fields: expect.objectContaining({ severity: 'NOTICE', message: 'n' }),
    },
    pg: { name: 'notice', severity: 'NOTICE', code: '00000', message: 'n' },
  },
  {
    label: 'ParseComplete',
    bytes: encodeParseComplete(),
    expected: { name: 'ParseComplete' },
    pg: { name: 'parseComplete' },
  },
  {
    label: 'BindComplete',
    bytes: encodeBindComplete(),
    expected: { name: 'BindComplete' },
    pg: { name: 'bindComplete' },
  },
  {
    label: 'CloseComplete',
    bytes: encodeCloseComplete(),
    expected: { name: 'CloseComplete' },
    pg: { name: 'closeComplete' },
  },
  { label: 'NoData', bytes: encodeNoData(), expected: { name: 'NoData' }, pg: { name: 'noData' } },
  {
    label: 'PortalSuspended',
    bytes: encodePortalSuspended(),
    expected: { name: 'PortalSuspended' },
    pg: { name: 'portalSuspended' },
  },
  {
    label: 'EmptyQueryResponse',
    bytes: encodeEmptyQueryResponse(),
    expected: { name: 'EmptyQueryResponse' },
    pg: { name: 'emptyQuery' },
  },
  {
    label: 'CopyDone',
    bytes: new MessageWriter(0).message('c'),
    expected: { name: 'CopyDone' },
    pg: { name: 'copyDone' },
  },
  {
    label: 'CopyData',
    bytes: new MessageWriter().bytes(text('1\tx\n')).message('d'),
    expected: { name: 'CopyData', data: text('1\tx\n') },
    pg: { name: 'copyData', chunk: text('1\tx\n') },
  },
  ...[
    'INSERT 0 3',
    'UPDATE 2',
    'DELETE 0',
    'SELECT 7',
    'MERGE 1',
    'COPY 10',
    'FETCH 5',
    'MOVE 4',
    'PREPARE',
    'DEALLOCATE ALL',
  ].map((tag): BackendSample => ({
    label: `CommandComplete ${tag}`,
    bytes: encodeCommandComplete(tag),
    expected: { name: 'CommandComplete', tag },
    pg: { name: 'commandComplete', text: tag },
  })),
  {
    label: 'RowDescription',
    bytes: encodeRowDescription([FIELD, { ...FIELD, name: 'b', typeOid: 17, format: 1 }]),
    expected: { name: 'RowDescription', fields: [FIELD, { ...FIELD, name: 'b', typeOid: 17, format: 1 }] },
    pg: {
      name: 'rowDescription',
      fieldCount: 2,
      fields: [
        expect.objectContaining({ name: 'id', tableID: 16_384, columnID: 1, dataTypeID: 23, format: 'text' }),
        expect.objectContaining({ name: 'b', dataTypeID: 17, dataTypeModifier: -1, format: 'binary' }),
      ],
    },
  },
  {
    label: 'ParameterDescription',
    bytes: encodeParameterDescription([23, 25, 0xfffffffe]),
    expected: { name: 'ParameterDescription', typeOids: [23, 25, 0xfffffffe] },
    pg: { name: 'parameterDescription', dataTypeIDs: [23, 25, 0xfffffffe] },
  },
  {
    label: 'CopyInResponse',
    bytes: encodeCopyInResponse(2, 1),
    expected: { name: 'CopyInResponse', overallFormat: 1, columnFormats: [1, 1] },
    pg: { name: 'copyInResponse', binary: true, columnTypes: [1, 1] },
  },
  {
    label: 'CopyOutResponse',
    bytes: encodeCopyOutResponse(1),
    expected: { name: 'CopyOutResponse', overallFormat: 0, columnFormats: [0] },
    pg: { name: 'copyOutResponse', binary: false, columnTypes: [0] },
  },
  {
    label: 'CopyBothResponse',
    bytes: encodeCopyBothResponse(0),
    expected: { name: 'CopyBothResponse', overallFormat: 0, columnFormats: [] },
  },
  {
    label: 'NotificationResponse',
    bytes: encodeNotificationResponse(77, 'chan', 'payload'),
    expected: { name: 'NotificationResponse', processId: 77, channel: 'chan', payload: 'payload' },
    pg: { name: 'notification', processId: 77, channel: 'chan', payload: 'payload' },
  },
  {
    label: 'FunctionCallResponse',
    bytes: encodeFunctionCallResponse(Buffer.from([0, 0, 0, 1])),
    expected: { name: 'FunctionCallResponse', value: Buffer.from([0, 0, 0, 1]) },
  },
  {
    label: 'FunctionCallResponse NULL',
    bytes: encodeFunctionCallResponse(null),
    expected: { name: 'FunctionCallResponse', value: null },
  },
  {
    label: 'NegotiateProtocolVersion',
    bytes: encodeNegotiateProtocolVersion(0, ['_pq_.x']),
    expected: {
      name: 'NegotiateProtocolVersion',
      protocolVersion: 0x00030000,
      newestMinor: 0,
      unsupportedOptions: ['_pq_.x'],
    },
  },
  {
    label: 'DataRow (never decoded)',
    bytes: encodeDataRow([text('1'), null]),
    expected: { name: 'DataRow' },
    pg: { name: 'dataRow', fields: ['1', null] },
  },
];

function pgParse(bytes: Buffer): PgBackendMessage[] {
  const out: PgBackendMessage[] = [];
  new Parser().parse(bytes, (m) => out.push(m));
  return out;
}

describe('backend: every message of the union against pg-protocol’s parser', () => {
  test.each(BACKEND_SAMPLES.map((s) => [s.label, s] as const))('%s', (_l, s) => {
    const m = readBackendMessage(s.bytes);
    expect(m).toEqual({ ...s.expected, bytes: s.bytes });
    expect(m.bytes).toBe(s.bytes);
    if (s.pg) expect(pgParse(s.bytes)).toEqual([expect.objectContaining(s.pg)]);
  });

  test('every name of the union is covered by a sample', () => {
    const names = new Set(BACKEND_SAMPLES.map((s) => readBackendMessage(s.bytes).name));
    const all: Record<BackendMessage['name'], true> = {
      AuthenticationOk: true,
      AuthenticationKerberosV5: true,
      AuthenticationCleartextPassword: true,
      AuthenticationMD5Password: true,
      AuthenticationGSS: true,
      AuthenticationGSSContinue: true,
      AuthenticationSSPI: true,
      AuthenticationSASL: true,
      AuthenticationSASLContinue: true,
      AuthenticationSASLFinal: true,
      BackendKeyData: true,
      BindComplete: true,
      CloseComplete: true,
      CommandComplete: true,
      CopyData: true,
      CopyDone: true,
      CopyInResponse: true,
      CopyOutResponse: true,
      CopyBothResponse: true,
      DataRow: true,
      EmptyQueryResponse: true,
      ErrorResponse: true,
      FunctionCallResponse: true,
      NegotiateProtocolVersion: true,
      NoData: true,
      NoticeResponse: true,
      NotificationResponse: true,
      ParameterDescription: true,
      ParameterStatus: true,
      ParseComplete: true,
      PortalSuspended: true,
      ReadyForQuery: true,
      RowDescription: true,
    };
    expect([...names].sort()).toEqual(Object.keys(all).sort());
  });
});

describe('backend: through BackendScanner, however the bytes are split', () => {
  /** Everything but DataRow is inspected, as a session inspecting the whole union would. */
  const INSPECT_ALL = typeTable(
    BACKEND_SAMPLES.map((s) => s.bytes[0] as number).filter((t) => t !== 0x44 /* DataRow */),
  );

  function scanAll(chunks: readonly Buffer[]): { out: Buffer; decoded: BackendMessage[] } {
    const scanner = new BackendScanner(INSPECT_ALL);
    const decoded: BackendMessage[] = [];
    const out: Buffer[] = [];
    for (const c of chunks) {
      for (const b of scanner.push(c, (_t, source, start, end) => {
        decoded.push(readBackendMessage(source.subarray(start, end)));
        return null;
      }))
        out.push(b);
    }
    return { out: Buffer.concat(out), decoded };
  }

  const stream = Buffer.concat(BACKEND_SAMPLES.map((s) => s.bytes));
  const inspected = BACKEND_SAMPLES.filter((s) => s.bytes[0] !== 0x44);
  const expectAll = (r: { out: Buffer; decoded: BackendMessage[] }): void => {
    expect(r.out.equals(stream)).toBe(true);
    expect(r.decoded.map((m) => m.name)).toEqual(inspected.map((s) => s.expected.name));
    r.decoded.forEach((m, i) =>
      expect(m).toEqual({
        ...(inspected[i] as BackendSample).expected,
        bytes: (inspected[i] as BackendSample).bytes,
      }),
    );
  };

  test('whole, split at every byte, one byte per push', () => {
    expectAll(scanAll([stream]));
    for (let p = 1; p < stream.length; p++) expectAll(scanAll([stream.subarray(0, p), stream.subarray(p)]));
    expectAll(scanAll(Array.from(stream, (b) => Buffer.from([b]))));
  });

  test('random splits (fast-check) give identical results', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: stream.length }), { maxLength: 40 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const p of points) {
          chunks.push(stream.subarray(prev, p));
          prev = p;
        }
        chunks.push(stream.subarray(prev));
        expectAll(scanAll(chunks));
      }),
      { numRuns: 300 },
    );
  });

  test('the session’s inspected types all decode through the union', () => {
    const session = typeTable(SESSION_INSPECTED_BACKEND_TYPES);
    for (const s of BACKEND_SAMPLES.filter((x) => session[x.bytes[0] as number]))
      expect(readBackendMessage(s.bytes).name).toBe(s.expected.name);
  });
});

describe('backend exactness', () => {
  test('counts are unsigned Int16: 40,000 parameter types, 32,768 columns, 40,000 COPY columns', () => {
    const oids = Array.from({ length: 40_000 }, (_, i) => i);
    expect(readBackendMessage(encodeParameterDescription(oids))).toMatchObject({ typeOids: oids });
    const fields = Array.from({ length: 32_768 }, (_, i) => ({ ...FIELD, name: `c${i}` }));
    const rd = readBackendMessage(encodeRowDescription(fields));
    expect(rd.name === 'RowDescription' && rd.fields.length).toBe(32_768);
    const copy = readBackendMessage(encodeCopyInResponse(40_000));
    expect(copy.name === 'CopyInResponse' && copy.columnFormats.length).toBe(40_000);
  });

  test('every fixed-layout message refuses a trailing byte', () => {
    const opaque = new Set([
      'AuthenticationSASLContinue',
      'AuthenticationSASLFinal',
      'AuthenticationGSSContinue',
      'CopyData',
      'DataRow',
      'BackendKeyData (3.2, 32-byte key)',
    ]);
    for (const s of BACKEND_SAMPLES.filter(
      (x) => !opaque.has(x.label) && !opaque.has(x.expected.name as string),
    )) {
      const b = Buffer.concat([s.bytes, Buffer.from([0])]);
      b.writeInt32BE(b.length - 1, 1);
      if (s.expected.name === 'BackendKeyData') continue; // 5 key bytes: a valid 3.2 key length
      expect(thrownBy(() => readBackendMessage(b)).code).toBe(ErrorCodes.PROTOCOL_MALFORMED);
    }
  });

  test('an unknown type byte, a length word that disagrees with the bytes, an unknown authentication code', () => {
    expect(thrownBy(() => readBackendMessage(Buffer.from([0x78, 0, 0, 0, 4]))).code).toBe(
      ErrorCodes.UPSTREAM_PROTOCOL,
    );
    expect(thrownBy(() => readBackendMessage(Buffer.from([0x31, 0, 0, 0, 5]))).code).toBe(
      ErrorCodes.UPSTREAM_PROTOCOL,
    );
    expect(thrownBy(() => readBackendMessage(new MessageWriter().int32(99).message('R'))).code).toBe(
      ErrorCodes.PROTOCOL_MALFORMED,
    );
  });

  test('BackendKeyData: a 4-byte key in protocol 3.0, 4 to 256 bytes from 3.2', () => {
    const k32 = encodeBackendKeyData(7, Buffer.alloc(32, 1));
    expect(thrownBy(() => readBackendMessage(k32, { protocolMinor: 0 })).code).toBe(
      ErrorCodes.PROTOCOL_MALFORMED,
    );
    expect(readBackendMessage(k32, { protocolMinor: 2 })).toMatchObject({
      processId: 7,
      secretKey: Buffer.alloc(32, 1),
    });
    const k4 = encodeBackendKeyData(7, Buffer.from([1, 2, 3, 4]));
    expect(readBackendMessage(k4, { protocolMinor: 0 })).toMatchObject({
      secretKey: Buffer.from([1, 2, 3, 4]),
    });
    for (const n of [3, 257]) {
      const bad = encodeBackendKeyData(7, Buffer.alloc(n));
      expect(thrownBy(() => readBackendMessage(bad, { protocolMinor: 2 })).code).toBe(
        ErrorCodes.PROTOCOL_MALFORMED,
      );
    }
  });

  test('CommandComplete row counts', () => {
    expect(parseCommandTag('INSERT 0 3')).toEqual({ command: 'INSERT', rows: 3 });
    expect(parseCommandTag('SELECT 0')).toEqual({ command: 'SELECT', rows: 0 });
    expect(parseCommandTag('CREATE TABLE')).toEqual({ command: 'CREATE TABLE', rows: null });
    expect(parseCommandTag('DISCARD ALL')).toEqual({ command: 'DISCARD ALL', rows: null });
    expect(parseCommandTag('INSERT 3')).toEqual({ command: 'INSERT 3', rows: null });
    expect(parseCommandTag('LISTEN 5')).toEqual({ command: 'LISTEN 5', rows: null });
    expect(parseCommandTag('SELECT 9007199254740993').rows).toBeGreaterThan(2 ** 53 - 1);
  });
});

test('DEFAULT_MAX_MESSAGE_BYTES frames a 65,535-parameter Bind whole', () => {
  const w = new MessageWriter().cstring('').cstring('').int16(0).int16(65_535);
  for (let i = 0; i < 65_535; i++) w.int32(-1);
  const b = w.int16(0).message('B');
  const f = new FrontendFramer(DEFAULT_MAX_MESSAGE_BYTES);
  f.setStartupPhase(false);
  f.push(b);
  const fr = f.next() as FrontendFrame;
  expect(readFrontendMessage(fr)).toMatchObject({ name: 'Bind', params: expect.any(Array) });
});

/** Exhaustive switches over both unions: adding a message without handling it fails to compile. */
function frontendDirection(
  m: FrontendMessage,
): 'startup' | 'simple' | 'extended' | 'copy' | 'auth' | 'other' {
  switch (m.name) {
    case 'StartupMessage':
    case 'SSLRequest':
    case 'GSSENCRequest':
    case 'CancelRequest':
      return 'startup';
    case 'Query':
      return 'simple';
    case 'Parse':
    case 'Bind':
    case 'Execute':
    case 'Describe':
    case 'Close':
    case 'Sync':
    case 'Flush':
      return 'extended';
    case 'CopyData':
    case 'CopyDone':
    case 'CopyFail':
      return 'copy';
    case 'PasswordMessage':
    case 'SASLInitialResponse':
    case 'SASLResponse':
    case 'GSSResponse':
      return 'auth';
    case 'Terminate':
    case 'FunctionCall':
      return 'other';
    default:
      return assertNever(m, 'frontend message');
  }
}

function changesSessionState(m: BackendMessage): boolean {
  switch (m.name) {
    case 'ParseComplete':
    case 'CloseComplete':
    case 'CommandComplete':
    case 'ErrorResponse':
    case 'ReadyForQuery':
    case 'ParameterStatus':
    case 'BackendKeyData':
    case 'CopyInResponse':
    case 'CopyOutResponse':
    case 'CopyBothResponse':
      return true;
    case 'AuthenticationOk':
    case 'AuthenticationKerberosV5':
    case 'AuthenticationCleartextPassword':
    case 'AuthenticationMD5Password':
    case 'AuthenticationGSS':
    case 'AuthenticationGSSContinue':
    case 'AuthenticationSSPI':
    case 'AuthenticationSASL':
    case 'AuthenticationSASLContinue':
    case 'AuthenticationSASLFinal':
    case 'BindComplete':
    case 'CopyData':
    case 'CopyDone':
    case 'DataRow':
    case 'EmptyQueryResponse':
    case 'FunctionCallResponse':
    case 'NegotiateProtocolVersion':
    case 'NoData':
    case 'NoticeResponse':
    case 'NotificationResponse':
    case 'ParameterDescription':
    case 'PortalSuspended':
    case 'RowDescription':
      return false;
    default:
      return assertNever(m, 'backend message');
  }
}

test('the unions are closed: exhaustive switches compile and cover every decoded message', () => {
  expect(frontendDirection(readFrontendMessage(frame(serialize.sync())))).toBe('extended');
  expect(frontendDirection(readFrontendMessage(frame(serialize.requestSsl(), true)))).toBe('startup');
  expect(
    BACKEND_SAMPLES.filter((s) => changesSessionState(readBackendMessage(s.bytes))).length,
  ).toBeGreaterThan(10);
  expect(() => assertNever({ name: 'Nope' } as never, 'frontend message')).toThrow(
    /unexpected frontend message/,
  );
});
