import fc from 'fast-check';
import { ErrorCodes } from '../errors';
import { classify, initSqlParser } from './classify';
import {
  DEFAULT_LEXICAL_STATE,
  applyParameterStatus,
  canonicalEncoding,
  isExactEncoding,
  lexicalStartupCheck,
  readSqlText,
} from './lexical';
import type { LexicalState } from './lexical';

beforeAll(async () => {
  await initSqlParser();
});

const state = (over: Partial<LexicalState> = {}): LexicalState => ({ ...DEFAULT_LEXICAL_STATE, ...over });
const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('readSqlText fast path', () => {
  const states: LexicalState[] = [
    state(),
    state({ clientEncoding: 'SJIS' }),
    state({ clientEncoding: 'JOHAB' }),
    state({ standardConformingStrings: false }),
    state({ changing: true }),
    state({ clientEncoding: 'UHC', standardConformingStrings: false, changing: true }),
  ];
  it('reads ASCII text without a backslash the same way in every state', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.integer({ min: 1, max: 0x7f }).filter((b) => b !== 0x5c),
          { maxLength: 200 },
        ),
        (codes) => {
          const bytes = Buffer.from(codes);
          for (const s of states)
            expect(readSqlText(bytes, s)).toEqual({ ok: true, sql: bytes.toString('latin1') });
        },
      ),
    );
  });
});

describe('readSqlText with standard_conforming_strings', () => {
  it('accepts a backslash when on', () => {
    expect(readSqlText(ascii("SELECT E'\\'' AS a"), state())).toEqual({
      ok: true,
      sql: "SELECT E'\\'' AS a",
    });
  });
  it('refuses a backslash when off: the issue 10 smuggle', () => {
    const r = readSqlText(
      ascii("SELECT '\\' || ' ; DROP TABLE t; SELECT ' -- ' AS y"),
      state({ standardConformingStrings: false }),
    );
    expect(r).toMatchObject({ ok: false, code: ErrorCodes.SQL_LEXICAL_STRING_SYNTAX });
  });
  it('refuses a backslash or non-ASCII while a change is in flight', () => {
    expect(readSqlText(ascii("SELECT '\\'"), state({ changing: true }))).toMatchObject({
      ok: false,
      code: ErrorCodes.SQL_LEXICAL_CHANGING,
    });
    expect(readSqlText(Buffer.from("SELECT 'é'", 'utf8'), state({ changing: true }))).toMatchObject({
      ok: false,
      code: ErrorCodes.SQL_LEXICAL_CHANGING,
    });
  });
});

describe('readSqlText with client encodings', () => {
  it('UTF8: decodes, refuses invalid bytes with 22021', () => {
    expect(readSqlText(Buffer.from("SELECT 'żółw'", 'utf8'), state())).toEqual({
      ok: true,
      sql: "SELECT 'żółw'",
    });
    expect(readSqlText(hex('53454c45435420ff'), state())).toMatchObject({
      ok: false,
      code: ErrorCodes.SQL_LEXICAL_ENCODING,
      sqlstate: '22021',
    });
  });

  it('SJIS: 0x95 0x5C is one character (表), so the quote after it closes the string', () => {
    // SELECT E'<95 5C>' ; DROP TABLE t; --' read as UTF-8 hides nothing; read as SJIS the DROP is real.
    const bytes = Buffer.concat([ascii("SELECT E'"), hex('955c'), ascii("'; DROP TABLE t; --'")]);
    const r = readSqlText(bytes, state({ clientEncoding: 'SJIS' }));
    expect(r).toEqual({ ok: true, sql: "SELECT E'表'; DROP TABLE t; --'" });
    if (!r.ok) return;
    expect(classify(r.sql).statements.map((s) => s.command)).toEqual(['SELECT', 'DROP TABLE']);
  });

  it.each([
    ['BIG5', 'a45c', '么'],
    ['GBK', '815c', '乗'],
    ['GB18030', '815c', '乗'],
    ['GB18030', '8130 8130', '\u0080'],
    ['SJIS', 'b1', '\uff71'],
  ])('%s %s → %s', (encoding, bytes, expected) => {
    expect(
      readSqlText(
        Buffer.concat([ascii("SELECT '"), hex(bytes), ascii("'")]),
        state({ clientEncoding: encoding }),
      ),
    ).toEqual({
      ok: true,
      sql: `SELECT '${expected}'`,
    });
  });

  it('refuses a sequence the decoder reads differently from the server (BIG5 0xA145)', () => {
    expect(
      readSqlText(
        Buffer.concat([ascii("SELECT '"), hex('a145'), ascii("'")]),
        state({ clientEncoding: 'BIG5' }),
      ),
    ).toMatchObject({
      ok: false,
      code: ErrorCodes.SQL_LEXICAL_ENCODING,
    });
  });

  it('refuses a truncated or invalid multibyte character', () => {
    expect(readSqlText(hex('53454c45435420 95'), state({ clientEncoding: 'SJIS' }))).toMatchObject({
      ok: false,
    });
    expect(readSqlText(hex('53454c45435420 8130 81'), state({ clientEncoding: 'GB18030' }))).toMatchObject({
      ok: false,
    });
  });

  it('single-byte encodings use the server-generated table', () => {
    expect(readSqlText(hex('53454c4543542027e927'), state({ clientEncoding: 'LATIN1' }))).toEqual({
      ok: true,
      sql: "SELECT 'é'",
    });
    // ISO-8859-9 (LATIN5) 0x80 is the C1 control U+0080 on the server, not windows-1254's euro sign.
    expect(readSqlText(hex('53454c454354202780 27'), state({ clientEncoding: 'LATIN5' }))).toEqual({
      ok: true,
      sql: "SELECT '\u0080'",
    });
  });

  it.each(['UHC', 'JOHAB', 'EUC_JP', 'MULE_INTERNAL', 'SHIFT_JIS_2004'])(
    'refuses non-ASCII in %s',
    (encoding) => {
      expect(
        readSqlText(
          Buffer.concat([ascii("SELECT '"), hex('8141'), ascii("'")]),
          state({ clientEncoding: encoding }),
        ),
      ).toMatchObject({
        ok: false,
        code: ErrorCodes.SQL_LEXICAL_ENCODING,
      });
    },
  );

  it('never turns a trail byte into ASCII syntax', () => {
    // Any byte string: whatever comes out has as many quotes and backslashes as the bytes outside
    // multibyte characters, never more.
    fc.assert(
      fc.property(
        fc.constantFrom('SJIS', 'BIG5', 'GBK', 'GB18030', 'LATIN1', 'WIN1251', 'UTF8'),
        fc.uint8Array({ maxLength: 64 }),
        (encoding, raw) => {
          const bytes = Buffer.from(raw.map((b) => (b === 0 ? 0x27 : b)));
          const r = readSqlText(bytes, state({ clientEncoding: encoding }));
          if (!r.ok) return;
          let asciiOut = 0;
          for (const ch of r.sql) if (ch.codePointAt(0)! < 0x80) asciiOut++;
          let asciiIn = 0;
          for (const b of bytes) if (b < 0x80) asciiIn++;
          expect(asciiOut).toBeLessThanOrEqual(asciiIn);
        },
      ),
    );
  });
});

describe('canonicalEncoding', () => {
  it.each([
    ['Shift_JIS', 'SJIS'],
    ['mskanji', 'SJIS'],
    ['WIN932', 'SJIS'],
    ['utf-8', 'UTF8'],
    ['UNICODE', 'UTF8'],
    ['iso-8859-1', 'LATIN1'],
    ['windows-949', 'UHC'],
    ['cp949', null],
    ['', null],
  ])('%s → %s', (name, expected) => {
    expect(canonicalEncoding(name)).toBe(expected);
  });
  it('knows which encodings it reads exactly', () => {
    expect(['UTF8', 'SQL_ASCII', 'LATIN1', 'SJIS', 'BIG5', 'GBK', 'GB18030'].every(isExactEncoding)).toBe(
      true,
    );
    expect(['UHC', 'JOHAB', 'EUC_JP', 'MULE_INTERNAL'].some(isExactEncoding)).toBe(false);
  });
});

describe('lexicalStartupCheck', () => {
  it('a plain startup: UTF8, standard strings, unconfirmed until ParameterStatus', () => {
    expect(lexicalStartupCheck({ user: 'a', database: 'b' }, {})).toEqual({
      ok: true,
      state: { clientEncoding: 'UTF8', standardConformingStrings: true, changing: true },
    });
  });
  it('accepts an encoding pgward reads exactly', () => {
    expect(lexicalStartupCheck({ client_encoding: 'Shift_JIS' }, {})).toMatchObject({
      ok: true,
      state: { clientEncoding: 'SJIS' },
    });
  });
  it.each([
    [{}, { standard_conforming_strings: 'off' }, false],
    [{ standard_conforming_strings: 'of' }, {}, false],
    [{ STANDARD_CONFORMING_STRINGS: 'false' }, {}, false],
    // options first, then the parameters (process_startup_options): the parameter wins
    [{ standard_conforming_strings: 'on' }, { standard_conforming_strings: 'off' }, true],
    [{ standard_conforming_strings: 'off' }, { standard_conforming_strings: 'on' }, false],
  ])(
    'accepts %j options %j: standard strings %s (backslash text is refused by readSqlText)',
    (parameters, options, on) => {
      expect(lexicalStartupCheck(parameters, options)).toEqual({
        ok: true,
        state: { clientEncoding: 'UTF8', standardConformingStrings: on, changing: true },
      });
    },
  );
  it.each([
    [{ client_encoding: 'JOHAB' }, {}],
    [{ client_encoding: 'UHC' }, {}],
    [{ client_encoding: 'nonsense' }, {}],
    [{}, { client_encoding: 'euc_jp' }],
    [{}, { standard_conforming_strings: 'maybe' }],
    [{ standard_conforming_strings: 'o' }, {}],
    // the parameter wins on the server, but the refused option is still refused
    [{ client_encoding: 'UTF8' }, { client_encoding: 'JOHAB' }],
  ])('refuses %j options %j', (parameters, options) => {
    expect(lexicalStartupCheck(parameters, options)).toMatchObject({
      ok: false,
      code: ErrorCodes.SQL_LEXICAL_STARTUP,
    });
  });
});

describe('applyParameterStatus', () => {
  it('tracks a reported encoding by its canonical name', () => {
    expect(applyParameterStatus(state(), 'client_encoding', 'SJIS')).toEqual({
      ok: true,
      state: state({ clientEncoding: 'SJIS' }),
    });
  });
  it('ignores other parameters', () => {
    expect(applyParameterStatus(state(), 'TimeZone', 'UTC')).toEqual({ ok: true, state: state() });
  });
  it('tracks standard_conforming_strings both ways (whether a change was expected is the session’s question)', () => {
    expect(applyParameterStatus(state(), 'standard_conforming_strings', 'off')).toEqual({
      ok: true,
      state: state({ standardConformingStrings: false }),
    });
    expect(
      applyParameterStatus(state({ standardConformingStrings: false }), 'standard_conforming_strings', 'on'),
    ).toEqual({ ok: true, state: state() });
  });
  it.each([
    ['client_encoding', 'JOHAB'],
    ['client_encoding', 'UHC'],
    ['standard_conforming_strings', 'maybe'],
  ])('%s=%s is a lexical divergence', (name, value) => {
    expect(applyParameterStatus(state(), name, value)).toMatchObject({
      ok: false,
      code: ErrorCodes.SERVER_STATE_LEXICAL,
    });
  });
});
