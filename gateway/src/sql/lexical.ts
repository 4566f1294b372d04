/**
 * Lexical truth: the text PostgreSQL will parse from the bytes of a Query or Parse, under the
 * session's `client_encoding` and `standard_conforming_strings`, or a refusal when pgward cannot
 * reproduce the server's reading.
 *
 * PostgreSQL converts every message's text from the client encoding to the server encoding before
 * the lexer sees it (pq_getmsgstring → pg_client_to_server), and the lexer reads `'…'` with
 * backslash escapes when standard_conforming_strings is off (scan.l, `xq` vs `xe`). Both settings
 * are GUC_REPORT: the server reports them in ParameterStatus at startup and after each change.
 *
 * Facts this module relies on (checked against the server by lexical.test.ts and
 * tests/policy/lexical*.test.ts):
 * - Every client encoding PostgreSQL accepts is ASCII-compatible, and in every one of them a byte
 *   below 0x80 that does not follow a lead byte (≥ 0x80) is that ASCII character. So bytes with no
 *   byte ≥ 0x80 read the same in every client encoding.
 * - The two string syntaxes differ only in what a backslash inside `'…'` means. Bytes with no
 *   backslash (0x5C) tokenise identically under either.
 * Hence the fast path: no backslash and no byte ≥ 0x80 → the ASCII text, whatever the state.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import { TextDecoder } from 'node:util';
import { ErrorCodes } from '../errors';
import type { ErrorCode } from '../errors';
import { DECODER_MISMATCHES, SINGLE_BYTE_HIGH } from './encoding-tables';

export interface LexicalState {
  /** Canonical PostgreSQL encoding name as ParameterStatus reports it (`UTF8`, `SJIS`, …). */
  clientEncoding: string;
  standardConformingStrings: boolean;
  /** A change of either setting may be in flight: judged or sent, not yet confirmed by the server. */
  changing: boolean;
}

export type LexicalRefusal = {
  ok: false;
  code: ErrorCode;
  reason: string;
  /** SQLSTATE for the client: 22021 for bytes invalid in the encoding, 0A000 otherwise. */
  sqlstate: string;
};

export type SqlTextResult = { ok: true; sql: string } | LexicalRefusal;

/** The state of a session on a UTF8 server whose client said nothing else. */
export const DEFAULT_LEXICAL_STATE: Readonly<LexicalState> = Object.freeze({
  clientEncoding: 'UTF8',
  standardConformingStrings: true,
  changing: false,
});

/**
 * PostgreSQL's encoding names (src/common/encnames.c): a name is looked up lower-cased with every
 * non-alphanumeric character removed (`Shift-JIS`, `shift_jis` → `shiftjis`).
 */
const ENCODING_ALIASES: Readonly<Record<string, string>> = {
  abc: 'WIN1258',
  alt: 'WIN866',
  big5: 'BIG5',
  euccn: 'EUC_CN',
  eucjis2004: 'EUC_JIS_2004',
  eucjp: 'EUC_JP',
  euckr: 'EUC_KR',
  euctw: 'EUC_TW',
  gb18030: 'GB18030',
  gbk: 'GBK',
  iso88591: 'LATIN1',
  iso885910: 'LATIN6',
  iso885913: 'LATIN7',
  iso885914: 'LATIN8',
  iso885915: 'LATIN9',
  iso885916: 'LATIN10',
  iso88592: 'LATIN2',
  iso88593: 'LATIN3',
  iso88594: 'LATIN4',
  iso88595: 'ISO_8859_5',
  iso88596: 'ISO_8859_6',
  iso88597: 'ISO_8859_7',
  iso88598: 'ISO_8859_8',
  iso88599: 'LATIN5',
  johab: 'JOHAB',
  koi8: 'KOI8R',
  koi8r: 'KOI8R',
  koi8u: 'KOI8U',
  latin1: 'LATIN1',
  latin10: 'LATIN10',
  latin2: 'LATIN2',
  latin3: 'LATIN3',
  latin4: 'LATIN4',
  latin5: 'LATIN5',
  latin6: 'LATIN6',
  latin7: 'LATIN7',
  latin8: 'LATIN8',
  latin9: 'LATIN9',
  mskanji: 'SJIS',
  muleinternal: 'MULE_INTERNAL',
  shiftjis: 'SJIS',
  shiftjis2004: 'SHIFT_JIS_2004',
  sjis: 'SJIS',
  sqlascii: 'SQL_ASCII',
  tcvn: 'WIN1258',
  tcvn5712: 'WIN1258',
  uhc: 'UHC',
  unicode: 'UTF8',
  utf8: 'UTF8',
  vscii: 'WIN1258',
  win: 'WIN1251',
  win1250: 'WIN1250',
  win1251: 'WIN1251',
  win1252: 'WIN1252',
  win1253: 'WIN1253',
  win1254: 'WIN1254',
  win1255: 'WIN1255',
  win1256: 'WIN1256',
  win1257: 'WIN1257',
  win1258: 'WIN1258',
  win866: 'WIN866',
  win874: 'WIN874',
  win932: 'SJIS',
  win936: 'GBK',
  win949: 'UHC',
  win950: 'BIG5',
  windows1250: 'WIN1250',
  windows1251: 'WIN1251',
  windows1252: 'WIN1252',
  windows1253: 'WIN1253',
  windows1254: 'WIN1254',
  windows1255: 'WIN1255',
  windows1256: 'WIN1256',
  windows1257: 'WIN1257',
  windows1258: 'WIN1258',
  windows866: 'WIN866',
  windows874: 'WIN874',
  windows932: 'SJIS',
  windows936: 'GBK',
  windows949: 'UHC',
  windows950: 'BIG5',
};

/** The canonical name of an encoding as PostgreSQL resolves it (pg_char_to_encoding), or null. */
export function canonicalEncoding(name: string): string | null {
  // NAMEDATALEN: longer names are never in the table.
  if (name.length === 0 || name.length >= 64) return null;
  const key = name.toLowerCase().replace(/[^a-z0-9]/g, '');
  return Object.prototype.hasOwnProperty.call(ENCODING_ALIASES, key) ? (ENCODING_ALIASES[key] ?? null) : null;
}

/**
 * Multibyte client-only encodings decoded with Node's ICU TextDecoder, one character at a time
 * (split as PostgreSQL's pg_*_mblen splits them), refusing the sequences listed in
 * DECODER_MISMATCHES. UHC is absent: Node's `euc-kr` decoder reads UHC's extended range
 * (lead 0x81–0xC6, e.g. 0x81 0x41) as two characters where PostgreSQL reads one.
 */
const ICU_DECODERS: Readonly<Record<string, string>> = {
  SJIS: 'shift_jis',
  BIG5: 'big5',
  GBK: 'gbk',
  GB18030: 'gb18030',
};

const decoders = new Map<string, TextDecoder>();
const mismatchSets = new Map<string, ReadonlySet<string>>();

function decoderFor(encoding: string): TextDecoder | null {
  const label = ICU_DECODERS[encoding];
  if (label === undefined) return null;
  let d = decoders.get(encoding);
  if (d === undefined) {
    d = new TextDecoder(label, { fatal: true });
    decoders.set(encoding, d);
  }
  return d;
}

function mismatchesFor(encoding: string): ReadonlySet<string> {
  let s = mismatchSets.get(encoding);
  if (s === undefined) {
    s = new Set(DECODER_MISMATCHES[encoding] ?? []);
    mismatchSets.set(encoding, s);
  }
  return s;
}

/** Whether pgward reproduces the server's reading of every byte sequence in this client encoding. */
export function isExactEncoding(encoding: string): boolean {
  return (
    encoding === 'UTF8' ||
    encoding === 'SQL_ASCII' ||
    SINGLE_BYTE_HIGH[encoding] !== undefined ||
    ICU_DECODERS[encoding] !== undefined
  );
}

const BACKSLASH = 0x5c;

function refusal(code: ErrorCode, reason: string, sqlstate = '0A000'): LexicalRefusal {
  return { ok: false, code, reason, sqlstate };
}

const invalidBytes = (encoding: string): LexicalRefusal =>
  refusal(
    ErrorCodes.SQL_LEXICAL_ENCODING,
    `SQL text is not valid ${encoding}, or pgward cannot read it exactly as the server does`,
    '22021',
  );

/** Length of the character starting with lead byte `b` at `i` (PostgreSQL's pg_*_mblen). */
function charLength(encoding: string, bytes: Buffer, i: number, b: number): number {
  if (encoding === 'SJIS' && b >= 0xa1 && b <= 0xdf) return 1; // JIS X 0201 half-width kana
  if (encoding === 'GB18030') {
    const next = bytes[i + 1];
    return next !== undefined && next >= 0x30 && next <= 0x39 ? 4 : 2;
  }
  return 2;
}

function decodeMultibyte(bytes: Buffer, encoding: string, decoder: TextDecoder): SqlTextResult {
  const mismatches = mismatchesFor(encoding);
  let out = '';
  let runStart = 0;
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    if (runStart < i) out += bytes.toString('latin1', runStart, i);
    const len = charLength(encoding, bytes, i, b);
    if (i + len > bytes.length) return invalidBytes(encoding);
    const ch = bytes.subarray(i, i + len);
    if (mismatches.has(ch.toString('hex'))) return invalidBytes(encoding);
    let decoded: string;
    try {
      decoded = decoder.decode(ch);
    } catch {
      return invalidBytes(encoding);
    }
    // One server character must stay one character with no ASCII in it (a trail byte that is
    // ASCII must never come back out as syntax).
    const cp = decoded.codePointAt(0);
    if (cp === undefined || cp < 0x80) return invalidBytes(encoding);
    out += decoded;
    i += len;
    runStart = i;
  }
  if (runStart < bytes.length) out += bytes.toString('latin1', runStart);
  return { ok: true, sql: out };
}

function decodeSingleByte(bytes: Buffer, encoding: string, high: string): SqlTextResult {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      out += String.fromCharCode(b);
      continue;
    }
    const ch = high[b - 0x80];
    if (ch === undefined || ch === '\uffff') return invalidBytes(encoding);
    out += ch;
  }
  return { ok: true, sql: out };
}

/**
 * The text PostgreSQL will parse from these bytes (a Query's string or a Parse's query, without
 * the terminating NUL), or a refusal. Assumes server_encoding UTF8 (see lexicalStartupCheck).
 */
export function readSqlText(bytes: Buffer, state: LexicalState): SqlTextResult {
  const high = !isAscii(bytes);
  const backslash = bytes.includes(BACKSLASH);
  if (!high && !backslash) return { ok: true, sql: bytes.toString('latin1') };
  if (state.changing) {
    return refusal(
      ErrorCodes.SQL_LEXICAL_CHANGING,
      'SQL text with a backslash or non-ASCII bytes while a change of client_encoding or standard_conforming_strings is not yet confirmed by the server',
    );
  }
  if (backslash && !state.standardConformingStrings) {
    // libpg-query 18.1.5's wasm binding exposes no parser options (no standard_conforming_strings):
    // the escape-string reading of '…' cannot be reproduced.
    return refusal(
      ErrorCodes.SQL_LEXICAL_STRING_SYNTAX,
      'SQL text with a backslash while standard_conforming_strings is off',
    );
  }
  if (!high) return { ok: true, sql: bytes.toString('latin1') };
  const encoding = state.clientEncoding;
  if (encoding === 'UTF8' || encoding === 'SQL_ASCII') {
    // With a UTF8 server, SQL_ASCII client text is not converted but verified as UTF-8.
    return isUtf8(bytes) ? { ok: true, sql: bytes.toString('utf8') } : invalidBytes('UTF8');
  }
  const table = SINGLE_BYTE_HIGH[encoding];
  if (table !== undefined) return decodeSingleByte(bytes, encoding, table);
  const decoder = decoderFor(encoding);
  if (decoder !== null) return decodeMultibyte(bytes, encoding, decoder);
  return refusal(
    ErrorCodes.SQL_LEXICAL_ENCODING,
    `SQL text with non-ASCII bytes in client_encoding ${encoding}, which pgward cannot decode exactly as the server does`,
  );
}

/** Settings that change how the server reads SQL text (GUC names, lower-case). */
export const LEXICAL_SETTINGS: ReadonlySet<string> = new Set([
  'client_encoding',
  'standard_conforming_strings',
]);

/** PostgreSQL's parse_bool for the values a boolean setting accepts; null when not a boolean. */
function settingBool(value: string): boolean | null {
  const v = value.trim().toLowerCase();
  if (v === '') return null;
  if ('true'.startsWith(v) || 'yes'.startsWith(v) || v === '1') return true;
  if ('false'.startsWith(v) || 'no'.startsWith(v) || v === '0') return false;
  if (v.length >= 2 && 'on'.startsWith(v)) return true;
  if (v.length >= 2 && 'off'.startsWith(v)) return false;
  return null;
}

export type LexicalStartupResult = { ok: true; state: LexicalState } | LexicalRefusal;

/**
 * The lexical state a startup packet asks for, or a refusal (FATAL before the upstream is
 * contacted) when pgward could not read that session's SQL exactly.
 *
 * Sources, as PostgreSQL applies them (process_startup_options, postinit.c): the `options`
 * switches (`-c name=value`, `--name=value`; already parsed, see parseStartupOptions) and then
 * the startup parameters themselves (libpq sends PGCLIENTENCODING / `client_encoding=` as the
 * `client_encoding` parameter). Every source is checked, not only the one that wins.
 *
 * The returned state is a claim: `changing` is true until the server's ParameterStatus for
 * client_encoding and standard_conforming_strings (sent before the first ReadyForQuery, and
 * reflecting role and database defaults too) confirms it through applyParameterStatus.
 */
export function lexicalStartupCheck(
  parameters: Readonly<Record<string, string>>,
  options: Readonly<Record<string, string>>,
): LexicalStartupResult {
  let encoding = 'UTF8';
  let scc = true;
  const sources: Array<[string, Readonly<Record<string, string>>]> = [
    ['options', options],
    ['startup parameter', parameters],
  ];
  for (const [where, settings] of sources) {
    for (const rawName of Object.keys(settings)) {
      const name = rawName.toLowerCase();
      const value = settings[rawName] ?? '';
      if (name === 'client_encoding') {
        const canonical = canonicalEncoding(value);
        // An unknown name makes the server refuse the connection; pgward refuses it first.
        if (canonical === null) {
          return refusal(
            ErrorCodes.SQL_LEXICAL_STARTUP,
            `client_encoding "${value}" (${where}) is not an encoding pgward knows`,
            '22023',
          );
        }
        if (!isExactEncoding(canonical)) {
          return refusal(
            ErrorCodes.SQL_LEXICAL_STARTUP,
            `client_encoding ${canonical} (${where}) is not supported through pgward: it cannot read SQL in that encoding exactly as the server does`,
          );
        }
        encoding = canonical;
      } else if (name === 'standard_conforming_strings') {
        // off is accepted: SQL text without a backslash reads the same under both, and
        // readSqlText refuses text with one while the setting is off.
        const on = settingBool(value);
        if (on === null) {
          return refusal(
            ErrorCodes.SQL_LEXICAL_STARTUP,
            `standard_conforming_strings=${value} (${where}) is not a boolean`,
            '22023',
          );
        }
        scc = on;
      }
    }
  }
  return { ok: true, state: { clientEncoding: encoding, standardConformingStrings: scc, changing: true } };
}

export type ParameterStatusResult = { ok: true; state: LexicalState } | LexicalRefusal;

/**
 * A ParameterStatus from the server: the new confirmed lexical state, or a refusal (the session
 * must end) when the server now reads SQL in a way pgward cannot reproduce. Parameters that are
 * not lexical leave the state as it is. `changing` is left alone: it ends at the ReadyForQuery
 * that closes the cycle in which the change was sent (the server reports changed GUC_REPORT
 * settings just before that ReadyForQuery).
 */
export function applyParameterStatus(
  state: LexicalState,
  name: string,
  value: string,
): ParameterStatusResult {
  if (name === 'client_encoding') {
    const canonical = canonicalEncoding(value);
    if (canonical === null || !isExactEncoding(canonical)) {
      return refusal(
        ErrorCodes.SERVER_STATE_LEXICAL,
        `the server reports client_encoding ${value}, which pgward cannot read exactly`,
      );
    }
    return { ok: true, state: { ...state, clientEncoding: canonical } };
  }
  if (name === 'standard_conforming_strings') {
    // Both values are states pgward reproduces (off: every text without a backslash, the rest is
    // refused by readSqlText). Whether the change was expected is the session's question
    // (RequestPhase.onParameterStatus): one no judged statement made still ends the session.
    const on = settingBool(value);
    if (on === null) {
      return refusal(
        ErrorCodes.SERVER_STATE_LEXICAL,
        `the server reports standard_conforming_strings ${value}, which pgward cannot parse`,
      );
    }
    return { ok: true, state: { ...state, standardConformingStrings: on } };
  }
  return { ok: true, state };
}
