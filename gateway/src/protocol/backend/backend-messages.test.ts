/** Backend messages the session inspects or synthesizes, protocol 3.0 and 3.2. */
import { ErrorCodes } from '../../errors';
import { ProtocolError } from '../errors';
import { MessageWriter } from '../writer';
import {
  AuthCode,
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationMD5Password,
  encodeAuthenticationOk,
  encodeAuthenticationSASL,
  readAuthentication,
} from './authentication';
import { encodeBackendKeyData, readBackendKeyData } from './backend-key-data';
import { encodeCopyInResponse, readCopyResponse } from './copy-response';
import { encodeErrorResponse, encodeNoticeResponse, readErrorFields } from './error-response';
import { encodeNegotiateProtocolVersion, readNegotiateProtocolVersion } from './negotiate-protocol-version';
import { encodeParameterStatus, readParameterStatus } from './parameter-status';
import { encodeReadyForQuery, readReadyForQuery, readReadyForQueryAt } from './ready-for-query';
import { checkCommandCompleteAt, encodeCommandComplete, readCommandComplete } from './command-complete';

function malformedCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return (e as ProtocolError).code;
  }
  throw new Error('expected a ProtocolError');
}

/** The length word of a typed message must match its size. */
function expectWellFramed(msg: Buffer, type: string): void {
  expect(String.fromCharCode(msg[0] as number)).toBe(type);
  expect(msg.readInt32BE(1)).toBe(msg.length - 1);
}

describe('NegotiateProtocolVersion', () => {
  test('round trip with and without unsupported options', () => {
    for (const [minor, opts] of [
      [0, []],
      [2, ['_pq_.a']],
      [2, ['_pq_.test_protocol_negotiation', '_pq_.other']],
    ] as const) {
      const m = encodeNegotiateProtocolVersion(minor, opts);
      expectWellFramed(m, 'v');
      expect(readNegotiateProtocolVersion(m)).toEqual({
        name: 'NegotiateProtocolVersion',
        bytes: m,
        protocolVersion: 0x00030000 | minor,
        newestMinor: minor,
        unsupportedOptions: opts,
      });
    }
  });

  test('the bytes PostgreSQL 15 sends for a 3.0 StartupMessage with _pq_.abc (whole version, not the minor)', () => {
    // Captured from PostgreSQL 15: 'v', length 21, PG_PROTOCOL_LATEST = 0x00030000, 1 option.
    const wire = Buffer.from('760000001500030000000000015f70715f2e61626300', 'hex');
    expect(encodeNegotiateProtocolVersion(0, ['_pq_.abc']).equals(wire)).toBe(true);
    expect(readNegotiateProtocolVersion(wire)).toEqual({
      name: 'NegotiateProtocolVersion',
      bytes: wire,
      protocolVersion: 0x00030000,
      newestMinor: 0,
      unsupportedOptions: ['_pq_.abc'],
    });
  });

  test('a 3.2 server answering a 3.3 request', () => {
    const wire = Buffer.from('76000000 0c 00030002 00000000'.replace(/ /g, ''), 'hex');
    expect(readNegotiateProtocolVersion(wire).newestMinor).toBe(2);
  });

  test('a version outside 3.x, bad counts, missing or extra strings', () => {
    const m = (version: number, fn: (w: MessageWriter) => void): Buffer => {
      const w = new MessageWriter().int32(version);
      fn(w);
      return w.message('v');
    };
    const bad = [
      m(0, (w) => w.int32(0)), // a bare minor: libpq refuses it (pre-3.0)
      m(0x00020000, (w) => w.int32(0)),
      m(0x00040000, (w) => w.int32(0)),
      m(0x00030000, (w) => w.int32(-1)),
      m(0x00030000, (w) => w.int32(0x7fffffff)),
      m(0x00030000, (w) => w.int32(2).cstring('_pq_.a')),
      m(0x00030000, (w) => w.int32(0).cstring('x')),
      m(0x00030000, () => undefined),
    ];
    for (const b of bad)
      expect(malformedCode(() => readNegotiateProtocolVersion(b))).toBe(ErrorCodes.PROTOCOL_MALFORMED);
  });
});

describe('BackendKeyData', () => {
  test.each([4, 32, 256])('%i-byte key round trip', (n) => {
    const key = Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) & 0xff));
    const m = encodeBackendKeyData(12345, key);
    expectWellFramed(m, 'K');
    const d = readBackendKeyData(m);
    expect(d).toEqual({ name: 'BackendKeyData', bytes: m, processId: 12345, secretKey: key });
    m.fill(0, 9);
    expect(d.secretKey.equals(key)).toBe(true); // a copy, not a view
  });

  test.each([0, 3, 257, 1024])('%i-byte key is refused', (n) => {
    expect(malformedCode(() => readBackendKeyData(encodeBackendKeyData(1, Buffer.alloc(n))))).toBe(
      ErrorCodes.PROTOCOL_MALFORMED,
    );
  });

  test('no process id', () => {
    expect(malformedCode(() => readBackendKeyData(new MessageWriter().int16(1).message('K')))).toBe(
      ErrorCodes.PROTOCOL_MALFORMED,
    );
  });
});

describe('Authentication', () => {
  test('the variants pgward reads', () => {
    expect(readAuthentication(encodeAuthenticationOk())).toMatchObject({ name: 'AuthenticationOk' });
    expect(readAuthentication(encodeAuthenticationCleartextPassword())).toMatchObject({
      name: 'AuthenticationCleartextPassword',
    });
    expect(readAuthentication(encodeAuthenticationMD5Password(Buffer.from([9, 8, 7, 6])))).toMatchObject({
      name: 'AuthenticationMD5Password',
      salt: Buffer.from([9, 8, 7, 6]),
    });
    expect(
      readAuthentication(encodeAuthenticationSASL(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'])),
    ).toMatchObject({
      name: 'AuthenticationSASL',
      mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'],
    });
    const cont = new MessageWriter()
      .int32(AuthCode.SASLContinue)
      .bytes(Buffer.from('r=abc,s=xyz,i=4096'))
      .message('R');
    expect(readAuthentication(cont)).toMatchObject({
      name: 'AuthenticationSASLContinue',
      data: Buffer.from('r=abc,s=xyz,i=4096'),
    });
    const fin = new MessageWriter().int32(AuthCode.SASLFinal).bytes(Buffer.from('v=sig')).message('R');
    expect(readAuthentication(fin)).toMatchObject({
      name: 'AuthenticationSASLFinal',
      data: Buffer.from('v=sig'),
    });
    for (const code of [AuthCode.KerberosV5, AuthCode.GSS, AuthCode.SSPI, 99]) {
      expect(readAuthentication(new MessageWriter().int32(code).message('R'))).toEqual({
        name: 'AuthenticationOther',
        code,
      });
    }
  });

  test('malformed bodies', () => {
    const withTail = new MessageWriter().int32(AuthCode.Ok).int8(0).message('R');
    expect(malformedCode(() => readAuthentication(withTail))).toBe(ErrorCodes.PROTOCOL_MALFORMED);
    const shortSalt = new MessageWriter().int32(AuthCode.MD5Password).int16(1).message('R');
    expect(malformedCode(() => readAuthentication(shortSalt))).toBe(ErrorCodes.PROTOCOL_MALFORMED);
    const unterminatedList = new MessageWriter().int32(AuthCode.SASL).cstring('SCRAM-SHA-256').message('R');
    expect(malformedCode(() => readAuthentication(unterminatedList))).toBe(ErrorCodes.PROTOCOL_MALFORMED);
    expect(malformedCode(() => readAuthentication(new MessageWriter().int16(0).message('R')))).toBe(
      ErrorCodes.PROTOCOL_MALFORMED,
    );
  });
});

describe('ErrorResponse / NoticeResponse', () => {
  test('round trip; V defaults to S', () => {
    const f = {
      severity: 'FATAL',
      code: '08P01',
      message: 'invalid frontend message type 0',
      detail: 'd',
      hint: 'h',
    };
    const e = encodeErrorResponse(f);
    expectWellFramed(e, 'E');
    const d = readErrorFields(e);
    expect(d).toMatchObject({ ...f, severityNonLocalized: 'FATAL' });
    expect(d.raw).toEqual({ S: 'FATAL', V: 'FATAL', C: '08P01', M: f.message, D: 'd', H: 'h' });
    const n = encodeNoticeResponse({
      severity: 'AVISO',
      severityNonLocalized: 'NOTICE',
      code: '00000',
      message: 'm',
    });
    expectWellFramed(n, 'N');
    expect(readErrorFields(n)).toMatchObject({
      severity: 'AVISO',
      severityNonLocalized: 'NOTICE',
      code: '00000',
    });
  });

  test('fields PostgreSQL adds are kept in raw; unterminated lists are refused', () => {
    const w = new MessageWriter()
      .int8(0x53)
      .cstring('ERROR')
      .int8(0x43)
      .cstring('42P01')
      .int8(0x4d)
      .cstring('m');
    w.int8(0x50).cstring('15').int8(0x46).cstring('parse_relation.c');
    const full = Buffer.from(w.int8(0).message('E'));
    expect(readErrorFields(full).raw).toMatchObject({ P: '15', F: 'parse_relation.c' });
    const noEnd = new MessageWriter().int8(0x53).cstring('ERROR').message('E');
    expect(malformedCode(() => readErrorFields(noEnd))).toBe(ErrorCodes.PROTOCOL_MALFORMED);
  });
});

describe('ParameterStatus, ReadyForQuery, CopyInResponse', () => {
  test('ParameterStatus round trip', () => {
    const m = encodeParameterStatus('server_version', '15.6');
    expectWellFramed(m, 'S');
    expect(readParameterStatus(m)).toEqual({ name: 'server_version', value: '15.6' });
  });

  test('ReadyForQuery statuses', () => {
    for (const s of ['I', 'T', 'E'] as const) {
      const m = encodeReadyForQuery(s);
      expectWellFramed(m, 'Z');
      expect(readReadyForQuery(m)).toBe(s);
    }
    expect(malformedCode(() => readReadyForQuery(new MessageWriter().int8(0x58).message('Z')))).toBe(
      ErrorCodes.PROTOCOL_MALFORMED,
    );
    expect(malformedCode(() => readReadyForQuery(new MessageWriter().int8(0x49).int8(0).message('Z')))).toBe(
      ErrorCodes.PROTOCOL_MALFORMED,
    );
  });

  test('ReadyForQuery and CommandComplete read in place answer as the decoding readers do', () => {
    const outcome = (fn: () => unknown): string => {
      try {
        fn();
        return 'ok';
      } catch (e) {
        expect(e).toBeInstanceOf(ProtocolError);
        return (e as ProtocolError).message;
      }
    };
    // Zeros and a status byte around the message: a reader that looked past its bounds would see them.
    const pad = Buffer.from([0, 0x49, 0]);
    const at = (m: Buffer) => Buffer.concat([pad, m, pad]);
    const readies = [
      encodeReadyForQuery('I'),
      encodeReadyForQuery('T'),
      encodeReadyForQuery('E'),
      new MessageWriter().int8(0x58).message('Z'),
      new MessageWriter().int8(0x49).int8(0).message('Z'),
      new MessageWriter().message('Z'),
    ];
    for (const m of readies) {
      expect(outcome(() => readReadyForQueryAt(at(m), 3, 3 + m.length))).toBe(
        outcome(() => readReadyForQuery(m)),
      );
      if (outcome(() => readReadyForQuery(m)) === 'ok')
        expect(readReadyForQueryAt(at(m), 3, 3 + m.length)).toBe(readReadyForQuery(m));
    }
    const completes = [
      encodeCommandComplete('SELECT 1'),
      encodeCommandComplete(''),
      encodeCommandComplete('INSERT 0 3'),
      new MessageWriter().message('C'),
      new MessageWriter().bytes(Buffer.from('SELECT 1')).message('C'),
      new MessageWriter().cstring('SELECT 1').int8(0).message('C'),
      new MessageWriter().cstring('SELECT 1').int8(7).int8(0).message('C'),
      new MessageWriter().cstring('A').cstring('B').message('C'),
    ];
    for (const m of completes)
      expect(outcome(() => checkCommandCompleteAt(at(m), 3, 3 + m.length))).toBe(
        outcome(() => readCommandComplete(m)),
      );
  });

  test('CopyInResponse', () => {
    const m = encodeCopyInResponse(3, 1);
    expectWellFramed(m, 'G');
    expect(readCopyResponse(m)).toEqual({ overallFormat: 1, columnFormats: [1, 1, 1] });
    expect(readCopyResponse(encodeCopyInResponse(0))).toEqual({ overallFormat: 0, columnFormats: [] });
    expect(malformedCode(() => readCopyResponse(new MessageWriter().int8(2).int16(0).message('G')))).toBe(
      ErrorCodes.PROTOCOL_MALFORMED,
    );
    expect(
      malformedCode(() => readCopyResponse(new MessageWriter().int8(0).int16(2).int16(0).message('G'))),
    ).toBe(ErrorCodes.PROTOCOL_MALFORMED);
  });
});
