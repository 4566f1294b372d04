/** Startup-phase packets (protocol 3.0 and 3.2) and the `options` parameter. */
import { ErrorCodes } from '../../errors';
import { ProtocolError } from '../errors';
import { MessageWriter } from '../writer';
import { PROTOCOL_3_0, PROTOCOL_3_2, StartupCode } from '../message-types';
import {
  encodeCancelRequest,
  encodeStartupMessage,
  parseStartupOptions,
  readStartupPacket,
  startupIdentity,
  truncateStartupName,
} from './startup';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return (e as ProtocolError).code;
  }
  throw new Error('expected a ProtocolError');
}

/** A startup packet with an arbitrary body after the version word. */
function packet(version: number, body: Buffer): Buffer {
  return new MessageWriter().int32(version).bytes(body).packet();
}

describe('StartupMessage', () => {
  test('protocol 3.2 with _pq_ options', () => {
    const packet = encodeStartupMessage(PROTOCOL_3_2, [
      ['user', 'alice'],
      ['_pq_.test_protocol_negotiation', 'x'],
    ]);
    const m = readStartupPacket(packet);
    expect(m).toEqual({
      name: 'StartupMessage',
      bytes: packet,
      protocolVersion: 0x00030002,
      parameters: new Map([
        ['user', 'alice'],
        ['_pq_.test_protocol_negotiation', 'x'],
      ]),
    });
  });

  test.each([
    ['2.0', 0x00020000],
    ['4.0', 0x00040000],
    ['1234.0 (not a request code)', 1234 << 16],
    ['negative', -1],
  ])('unknown protocol major %s is unsupported', (_l, version) => {
    expect(codeOf(() => readStartupPacket(encodeStartupMessage(version, [['user', 'u']])))).toBe(
      ErrorCodes.PROTOCOL_UNSUPPORTED_VERSION,
    );
  });

  test('a newer 3.x minor is accepted (the server negotiates it down)', () => {
    const m = readStartupPacket(encodeStartupMessage(0x00030063, [['user', 'u']]));
    expect(m.name === 'StartupMessage' && m.protocolVersion).toBe(0x00030063);
  });

  test('missing terminator', () => {
    const body = Buffer.from('user\0alice\0');
    expect(codeOf(() => readStartupPacket(packet(PROTOCOL_3_0, body)))).toBe(ErrorCodes.PROTOCOL_MALFORMED);
    const unterminatedValue = Buffer.from('user\0alice');
    expect(codeOf(() => readStartupPacket(packet(PROTOCOL_3_0, unterminatedValue)))).toBe(
      ErrorCodes.PROTOCOL_MALFORMED,
    );
    const keyWithoutValue = Buffer.from('user\0alice\0database\0');
    expect(codeOf(() => readStartupPacket(packet(PROTOCOL_3_0, keyWithoutValue)))).toBe(
      ErrorCodes.PROTOCOL_MALFORMED,
    );
  });

  test('bytes after the terminator', () => {
    const body = Buffer.from('user\0alice\0\0x');
    expect(codeOf(() => readStartupPacket(packet(PROTOCOL_3_0, body)))).toBe(ErrorCodes.PROTOCOL_MALFORMED);
  });

  test('no user, or an empty user', () => {
    expect(codeOf(() => readStartupPacket(encodeStartupMessage(PROTOCOL_3_0, [['database', 'd']])))).toBe(
      ErrorCodes.PROTOCOL_STARTUP_INVALID,
    );
    expect(codeOf(() => readStartupPacket(encodeStartupMessage(PROTOCOL_3_0, [['user', '']])))).toBe(
      ErrorCodes.PROTOCOL_STARTUP_INVALID,
    );
    expect(codeOf(() => readStartupPacket(encodeStartupMessage(PROTOCOL_3_0, [])))).toBe(
      ErrorCodes.PROTOCOL_STARTUP_INVALID,
    );
  });

  test('duplicate keys are refused (no "last one wins" ambiguity)', () => {
    const dup = encodeStartupMessage(PROTOCOL_3_0, [
      ['user', 'alice'],
      ['user', 'postgres'],
    ]);
    expect(codeOf(() => readStartupPacket(dup))).toBe(ErrorCodes.PROTOCOL_STARTUP_INVALID);
    const dupOptions = encodeStartupMessage(PROTOCOL_3_0, [
      ['user', 'alice'],
      ['options', '-c role=a'],
      ['options', '-c role=b'],
    ]);
    expect(codeOf(() => readStartupPacket(dupOptions))).toBe(ErrorCodes.PROTOCOL_STARTUP_INVALID);
  });
});

describe('CancelRequest', () => {
  test('4-byte key (3.0), 32-byte and 256-byte keys (3.2)', () => {
    for (const n of [4, 32, 256]) {
      const key = Buffer.alloc(n, n & 0xff);
      const packet = encodeCancelRequest(99, key);
      expect(readStartupPacket(packet)).toEqual({
        name: 'CancelRequest',
        bytes: packet,
        processId: 99,
        secretKey: key,
      });
    }
  });

  test('wrong lengths: "invalid length of startup packet", closed without a reply (COMMERROR)', () => {
    const short = new MessageWriter().int32(StartupCode.CancelRequest).int16(1).packet(); // no process id
    const packets = [0, 3, 257, 1000].map((n) => encodeCancelRequest(99, Buffer.alloc(n)));
    for (const p of [...packets, short]) {
      let thrown: unknown;
      try {
        readStartupPacket(p);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(ProtocolError);
      expect((thrown as ProtocolError).code).toBe(ErrorCodes.PROTOCOL_STARTUP_LENGTH);
      expect((thrown as ProtocolError).closeSilently).toBe(true);
    }
  });

  test('the key is a copy, not a view of the packet', () => {
    const p = encodeCancelRequest(1, Buffer.from([1, 2, 3, 4]));
    const m = readStartupPacket(p);
    p.fill(0);
    expect(m.name === 'CancelRequest' && [...m.secretKey]).toEqual([1, 2, 3, 4]);
  });
});

describe('parseStartupOptions', () => {
  const parse = (s: string): Record<string, string> => ({ ...parseStartupOptions(s) });

  test('-c name=value, repeated', () => {
    expect(parse('-c a=b -c c=d')).toEqual({ a: 'b', c: 'd' });
    expect(parse('-c search_path=app,public -c statement_timeout=5s')).toEqual({
      search_path: 'app,public',
      statement_timeout: '5s',
    });
  });

  test('--name=value, dashes in names become underscores, names are lower-cased', () => {
    expect(parse('--a=b')).toEqual({ a: 'b' });
    expect(parse('--statement-timeout=0 -c Search_Path=x')).toEqual({
      statement_timeout: '0',
      search_path: 'x',
    });
  });

  test('-cname=value (argument in the same word)', () => {
    expect(parse('-ca=b')).toEqual({ a: 'b' });
    expect(parse('-crole=admin')).toEqual({ role: 'admin' });
  });

  test('backslash-escaped spaces and backslashes', () => {
    expect(parse('-c application_name=my\\ app')).toEqual({ application_name: 'my app' });
    expect(parse('-c a=x\\\\y')).toEqual({ a: 'x\\y' });
    // One word "-c a=b": the argument of -c is " a=b", a name PostgreSQL would refuse.
    expect(parse('-c\\ a=b')).toEqual({ ' a': 'b' });
  });

  test('all isspace characters separate words; a trailing backslash is dropped (pg_split_opts)', () => {
    expect(parse('-c\ta=1\n-c\vb=2\f-c\rc=3')).toEqual({ a: '1', b: '2', c: '3' });
    expect(parse('-c a=b\\')).toEqual({ a: 'b' });
  });

  test('the last setting of a name wins, as in PostgreSQL', () => {
    expect(parse('-c role=a -c role=b')).toEqual({ role: 'b' });
  });

  test('switches combined getopt-style cannot hide a setting', () => {
    // getopt reads "-Ec role=admin" as -E, then -c with the next word as its argument.
    expect(parse('-Ec role=admin')).toEqual({ '-E': '', role: 'admin' });
    expect(parse('-eEcsearch_path=evil')).toEqual({ '-e': '', '-E': '', search_path: 'evil' });
    expect(parse('-sc role=x')).toEqual({ '-s': '', role: 'x' });
  });

  test('other switches keep their argument, so the words after them stay aligned', () => {
    expect(parse('-d 5 -c a=b')).toEqual({ '-d': '5', a: 'b' });
    expect(parse('-d5 -c a=b')).toEqual({ '-d': '5', a: 'b' });
    expect(parse('-B 100 -F')).toEqual({ '-B': '100', '-F': '' });
    // -d takes the next word even when it looks like a switch (getopt does the same).
    expect(parse('-d -c a=b')).toEqual({ '-d': '-c', 'arg:a=b': '' });
  });

  test('-c or --name without a value, and a missing argument', () => {
    expect(parse('-c a')).toEqual({ a: '' });
    expect(parse('-c')).toEqual({ '': '' });
  });

  test('non-switch words and words after -- are arguments (PostgreSQL refuses those)', () => {
    expect(parse('foo -c a=b')).toEqual({ 'arg:foo': '', a: 'b' });
    expect(parse('-- -c a=b')).toEqual({ 'arg:-c': '', 'arg:a=b': '' });
    expect(parse('-')).toEqual({ 'arg:-': '' });
  });

  test('a name like __proto__ is an ordinary key', () => {
    const o = parseStartupOptions('-c __proto__=x -c constructor=y');
    expect(Object.keys(o)).toEqual(['__proto__', 'constructor']);
    expect(o['__proto__']).toBe('x');
  });

  test('empty and blank options', () => {
    expect(parse('')).toEqual({});
    expect(parse('   ')).toEqual({});
  });
});

describe('truncateStartupName and startupIdentity (what ProcessStartupPacket does)', () => {
  const a = (n: number): string => 'a'.repeat(n);
  test('names of up to 63 bytes are unchanged', () => {
    for (const n of ['', 'alice', a(63), `${a(61)}é`, '🐘'.repeat(15) + 'abc'])
      expect(truncateStartupName(n)).toBe(n);
  });
  test('longer names keep their first 63 bytes, even inside a character', () => {
    expect(truncateStartupName(a(64))).toBe(a(63));
    expect(truncateStartupName(`${a(61)}éxyz`)).toBe(`${a(61)}é`);
    expect(truncateStartupName(`${a(62)}é`)).toBe(`${a(62)}\ufffd`);
    // 21 'ü' (42 bytes) + 22 ASCII = 64 bytes: the fast path must not skip it.
    expect(Buffer.byteLength(truncateStartupName(`${'ü'.repeat(21)}${a(22)}`))).toBe(63);
    // A 4-byte character cut after 1, 2 or 3 of its bytes.
    for (const k of [1, 2, 3]) {
      const cut = truncateStartupName(`${a(63 - k)}🐘`);
      expect(cut.startsWith(a(63 - k))).toBe(true);
      expect(cut.endsWith('\ufffd')).toBe(true);
    }
  });
  test('the database defaults to the user before both are cut', () => {
    expect(startupIdentity(new Map([['user', a(70)]]))).toEqual({ user: a(63), database: a(63) });
    expect(
      startupIdentity(
        new Map([
          ['user', 'u'],
          ['database', ''],
        ]),
      ),
    ).toEqual({ user: 'u', database: 'u' });
    expect(
      startupIdentity(
        new Map([
          ['user', 'u'],
          ['database', `${a(63)}x`],
        ]),
      ),
    ).toEqual({
      user: 'u',
      database: a(63),
    });
  });
});
