/**
 * Pure builders of the policy input document, version 1 (docs/policy-input.md), and the decoding
 * of Bind/FunctionCall parameters. What a statement name means (for a Bind or an `EXECUTE p`) is
 * the session's business: session/namespace.ts.
 */
import type { Classification, StatementInfo } from '../sql/types';
import type { BindParameter, ConnectionInfo, InputDocument, MessageInfo, PreparedRef } from './types';

export interface InputOptions {
  /**
   * SQL text longer than this (UTF-8 bytes) is cut in the input and marked `truncated`; the
   * classification, made on the whole text, stays complete.
   */
  maxSqlBytes: number;
  /** Bind/FunctionCall values longer than this are cut and the message marked `truncated`. Default 4096. */
  maxParamBytes?: number;
  /**
   * false: Bind parameters carry type and format only, `"value": null, "encoding": "omitted"` (no
   * input path of the bundle reaches a value: policy/input-project.ts readsBindValues), so they
   * are not decoded at all.
   */
  bindParameterValues?: boolean;
  /**
   * false: no input path of the bundle reaches a Query's SQL text (`message.sql`,
   * `message.truncated`, a statement's `sql`: input-project.ts readsQueryText), so two texts of
   * one shape make the same evaluated document (the judge then takes the decision again).
   * Absent: they may differ.
   */
  sqlTextRead?: boolean;
}

/** One parameter as it arrives in Bind or FunctionCall: its type (0 = unspecified), format code, bytes. */
export interface WireParameter {
  typeOid: number;
  format: 0 | 1;
  value: Buffer | null;
}

export interface ParseArgs {
  statementName: string;
  sql: string;
  paramTypes: readonly number[];
}

export interface BindArgs {
  portalName: string;
  /** The statement the Bind names, as pgward knows it; null when pgward does not know it. */
  statement: PreparedRef | null;
  params: WireParameter[];
}

export interface FunctionCallArgs {
  oid: number;
  /** FunctionCall carries no argument types: typeOid is 0 unless the caller knows better. */
  args: readonly (Omit<WireParameter, 'typeOid'> & { typeOid?: number })[];
}

export const DEFAULT_MAX_PARAM_BYTES = 4096;
export const UNKNOWN_STATEMENT_ERROR = 'statement unknown to pgward';

/** Cuts `text` to at most `maxBytes` UTF-8 bytes without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): { text: string; truncated: boolean } {
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text, 'utf8') <= maxBytes)
    return { text, truncated: false };
  return { text: cutUtf8(Buffer.from(text, 'utf8'), maxBytes).toString('utf8'), truncated: true };
}

/** The longest prefix of `bytes` of at most `maxBytes` that does not end inside a UTF-8 sequence. */
function cutUtf8(bytes: Buffer, maxBytes: number): Buffer {
  if (bytes.length <= maxBytes) return bytes;
  let end = maxBytes;
  // Step back over continuation bytes (10xxxxxx) to the lead byte of the cut character, and drop it.
  let back = 0;
  while (end > 0 && back < 4 && (bytes[end]! & 0xc0) === 0x80) {
    end -= 1;
    back += 1;
  }
  return bytes.subarray(0, end);
}

/** Statement texts cut to the same bound as the message text (the facts stay whole). */
function boundStatementTexts(statements: StatementInfo[], maxSqlBytes: number): StatementInfo[] {
  return statements.map((st) => {
    const c = truncateUtf8(st.sql, maxSqlBytes);
    return c.truncated ? { ...st, sql: c.text } : st;
  });
}

function boundedSql(sql: string, classification: Classification, maxSqlBytes: number) {
  const cut = truncateUtf8(sql, maxSqlBytes);
  if (cut.truncated) {
    // The classification was made on the whole text, so policies still judge every statement
    // completely; only the text placed in the input is cut (and marked).
    return {
      sql: cut.text,
      truncated: true,
      statements: boundStatementTexts(classification.statements, maxSqlBytes),
      parse_error: classification.parse_error,
    };
  }
  return {
    sql,
    truncated: false,
    statements: classification.statements,
    parse_error: classification.parse_error,
  };
}

export function buildStartupInput(conn: ConnectionInfo): InputDocument {
  return {
    version: 1,
    phase: 'startup',
    connection: conn,
    message: { type: 'StartupMessage' },
    statements: [],
    parse_error: null,
  };
}

export function buildQueryInput(
  conn: ConnectionInfo,
  sql: string,
  classification: Classification,
  opts: InputOptions,
): InputDocument {
  const b = boundedSql(sql, classification, opts.maxSqlBytes);
  return {
    version: 1,
    phase: 'message',
    connection: conn,
    message: { type: 'Query', sql: b.sql, truncated: b.truncated },
    statements: b.statements,
    parse_error: b.parse_error,
  };
}

export function buildParseInput(
  conn: ConnectionInfo,
  args: ParseArgs,
  classification: Classification,
  opts: InputOptions,
): InputDocument {
  const b = boundedSql(args.sql, classification, opts.maxSqlBytes);
  return {
    version: 1,
    phase: 'message',
    connection: conn,
    message: {
      type: 'Parse',
      sql: b.sql,
      truncated: b.truncated,
      statement_name: args.statementName,
      param_types: args.paramTypes,
    },
    statements: b.statements,
    parse_error: b.parse_error,
  };
}

/**
 * A Bind is judged by the statement it binds: top-level `statements`/`parse_error` are that
 * statement's. An unknown statement gets `parse_error` so that policies deny it (the server shares
 * one namespace between Parse and SQL PREPARE, so pgward may not know what the server would run).
 */
export function buildBindInput(conn: ConnectionInfo, args: BindArgs, opts: InputOptions): InputDocument {
  const maxParamBytes = opts.maxParamBytes ?? DEFAULT_MAX_PARAM_BYTES;
  let truncated = false;
  const withValues = opts.bindParameterValues !== false;
  const parameters = args.params.map((p): BindParameter => {
    if (!withValues) {
      const format = p.format === 1 ? 'binary' : 'text';
      return p.value === null
        ? { type_oid: p.typeOid, format, value: null, encoding: 'null' }
        : { type_oid: p.typeOid, format, value: null, encoding: 'omitted' };
    }
    if (p.value !== null && p.value.length > maxParamBytes) truncated = true;
    return decodeParameter(p.typeOid, p.format, p.value, maxParamBytes);
  });
  let statement: PreparedRef | null = null;
  let statements: StatementInfo[] = [];
  let parseError: string | null = UNKNOWN_STATEMENT_ERROR;
  if (args.statement !== null) {
    const s = args.statement;
    const cut = truncateUtf8(s.sql, opts.maxSqlBytes);
    if (cut.truncated) {
      truncated = true;
      statement = {
        name: s.name,
        sql: cut.text,
        statements: boundStatementTexts(s.statements, opts.maxSqlBytes),
        parse_error: s.parse_error,
      };
    } else {
      statement = s;
    }
    statements = statement.statements;
    parseError = statement.parse_error;
  }
  const message: MessageInfo = {
    type: 'Bind',
    portal_name: args.portalName,
    statement,
    parameters,
    truncated,
  };
  return { version: 1, phase: 'message', connection: conn, message, statements, parse_error: parseError };
}

export function buildFunctionCallInput(
  conn: ConnectionInfo,
  args: FunctionCallArgs,
  opts: Pick<InputOptions, 'maxParamBytes'> = {},
): InputDocument {
  const maxParamBytes = opts.maxParamBytes ?? DEFAULT_MAX_PARAM_BYTES;
  let truncated = false;
  const decoded = args.args.map((a) => {
    if (a.value !== null && a.value.length > maxParamBytes) truncated = true;
    return decodeParameter(a.typeOid ?? 0, a.format, a.value, maxParamBytes);
  });
  return {
    version: 1,
    phase: 'message',
    connection: conn,
    message: { type: 'FunctionCall', function_oid: args.oid, arguments: decoded, truncated },
    statements: [],
    parse_error: null,
  };
}

// ---------------------------------------------------------------------------------------------
// Parameter decoding. Type OIDs from src/include/catalog/pg_type.dat; binary formats are the
// types' send/recv functions (https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-FORMAT-CODES).

export const TypeOids = {
  BOOL: 16,
  BYTEA: 17,
  NAME: 19,
  INT8: 20,
  INT2: 21,
  INT4: 23,
  TEXT: 25,
  OID: 26,
  JSON: 114,
  FLOAT4: 700,
  FLOAT8: 701,
  BPCHAR: 1042,
  VARCHAR: 1043,
  NUMERIC: 1700,
  UUID: 2950,
  JSONB: 3802,
} as const;

const TEXT_LIKE = new Set<number>([
  TypeOids.TEXT,
  TypeOids.VARCHAR,
  TypeOids.BPCHAR,
  TypeOids.NAME,
  TypeOids.JSON,
]);
const INT_RANGE: Record<number, [number, number]> = {
  [TypeOids.INT2]: [-32768, 32767],
  [TypeOids.INT4]: [-2147483648, 2147483647],
  [TypeOids.OID]: [0, 4294967295],
};
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** PostgreSQL's isspace() set: the only whitespace its numeric and boolean input functions skip. */
const PG_INT = /^[ \t\n\r\v\f]*([+-]?[0-9]+)[ \t\n\r\v\f]*$/;
const PG_FLOAT = /^[ \t\n\r\v\f]*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[ \t\n\r\v\f]*$/;

function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

function typed(typeOid: number, format: 0 | 1, value: string | number | boolean): BindParameter {
  return { type_oid: typeOid, format: format === 0 ? 'text' : 'binary', value, encoding: 'decoded' };
}

function raw(typeOid: number, format: 0 | 1, bytes: Uint8Array): BindParameter {
  return {
    type_oid: typeOid,
    format: format === 0 ? 'text' : 'binary',
    value: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
    encoding: 'base64',
  };
}

/** boolin's parse_bool_with_len (src/backend/utils/adt/bool.c), after trimming isspace(). */
export function parsePgBool(text: string): boolean | null {
  const v = text.replace(/^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g, '').toLowerCase();
  const len = v.length;
  if (len === 0) return null;
  const prefixOf = (word: string, minLen: number) =>
    len >= minLen && len <= word.length && word.startsWith(v);
  switch (v[0]) {
    case 't':
      return prefixOf('true', 1) ? true : null;
    case 'f':
      return prefixOf('false', 1) ? false : null;
    case 'y':
      return prefixOf('yes', 1) ? true : null;
    case 'n':
      return prefixOf('no', 1) ? false : null;
    case 'o':
      if (prefixOf('on', 2)) return true;
      return prefixOf('off', 2) ? false : null;
    case '1':
      return len === 1 ? true : null;
    case '0':
      return len === 1 ? false : null;
    default:
      return null;
  }
}

function nonFinite(n: number): string | number {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  return n;
}

function decodeText(typeOid: number, text: string): string | number | boolean {
  switch (typeOid) {
    case TypeOids.BOOL: {
      const b = parsePgBool(text);
      return b ?? text;
    }
    case TypeOids.INT2:
    case TypeOids.INT4:
    case TypeOids.OID:
    case TypeOids.INT8: {
      const m = PG_INT.exec(text);
      if (m === null) return text;
      const big = BigInt(m[1]!);
      const range = INT_RANGE[typeOid];
      if (range !== undefined && (big < BigInt(range[0]) || big > BigInt(range[1]))) return text;
      if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER))
        return big.toString();
      return Number(big);
    }
    case TypeOids.FLOAT4:
    case TypeOids.FLOAT8: {
      const m = PG_FLOAT.exec(text);
      if (m === null) return text;
      const n = Number(m[1]);
      return Number.isFinite(n) ? n : text;
    }
    default:
      return text;
  }
}

/** `\x` hex output of byteaout, as bytes; null for the escape format or anything malformed. */
function parseByteaHex(text: string): Buffer | null {
  if (!text.startsWith('\\x')) return null;
  const hex = text.slice(2);
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return null;
  return Buffer.from(hex, 'hex');
}

function decodeBinary(typeOid: number, b: Buffer): BindParameter {
  const len = b.length;
  switch (typeOid) {
    case TypeOids.BOOL:
      return len === 1 && (b[0] === 0 || b[0] === 1) ? typed(typeOid, 1, b[0] === 1) : raw(typeOid, 1, b);
    case TypeOids.INT2:
      return len === 2 ? typed(typeOid, 1, b.readInt16BE(0)) : raw(typeOid, 1, b);
    case TypeOids.INT4:
      return len === 4 ? typed(typeOid, 1, b.readInt32BE(0)) : raw(typeOid, 1, b);
    case TypeOids.OID:
      return len === 4 ? typed(typeOid, 1, b.readUInt32BE(0)) : raw(typeOid, 1, b);
    case TypeOids.INT8: {
      if (len !== 8) return raw(typeOid, 1, b);
      const v = b.readBigInt64BE(0);
      const safe = v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER);
      return typed(typeOid, 1, safe ? Number(v) : v.toString());
    }
    case TypeOids.FLOAT4:
      return len === 4 ? typed(typeOid, 1, nonFinite(b.readFloatBE(0))) : raw(typeOid, 1, b);
    case TypeOids.FLOAT8:
      return len === 8 ? typed(typeOid, 1, nonFinite(b.readDoubleBE(0))) : raw(typeOid, 1, b);
    case TypeOids.UUID:
      if (len !== 16) return raw(typeOid, 1, b);
      {
        const h = b.toString('hex');
        return typed(
          typeOid,
          1,
          `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`,
        );
      }
    case TypeOids.JSONB: {
      // jsonb_send: a version byte (1) followed by the text.
      if (len < 1 || b[0] !== 1) return raw(typeOid, 1, b);
      const text = decodeUtf8(b.subarray(1));
      return text === null ? raw(typeOid, 1, b) : typed(typeOid, 1, text);
    }
    default: {
      if (!TEXT_LIKE.has(typeOid)) return raw(typeOid, 1, b);
      const text = decodeUtf8(b);
      return text === null ? raw(typeOid, 1, b) : typed(typeOid, 1, text);
    }
  }
}

/**
 * Decodes one Bind/FunctionCall parameter. Text format: the text, typed for bool/integers/floats
 * when PostgreSQL's input function would read it unambiguously (otherwise the text as sent);
 * bytea in `\x` hex as base64 bytes. Binary format: the common fixed-size types, text-like types,
 * jsonb and uuid. Anything else, or bytes that are not valid UTF-8, is base64. Values longer than
 * `maxBytes` are cut (the caller marks the message truncated).
 */
export function decodeParameter(
  typeOid: number,
  format: 0 | 1,
  bytes: Buffer | null,
  maxBytes: number = DEFAULT_MAX_PARAM_BYTES,
): BindParameter {
  if (bytes === null) {
    return { type_oid: typeOid, format: format === 0 ? 'text' : 'binary', value: null, encoding: 'null' };
  }
  const cut = bytes.length > maxBytes;
  if (format === 1) return cut ? raw(typeOid, 1, bytes.subarray(0, maxBytes)) : decodeBinary(typeOid, bytes);
  const body = cut ? cutUtf8(bytes, maxBytes) : bytes;
  const text = decodeUtf8(body);
  if (text === null || text.includes('\0')) return raw(typeOid, 0, body);
  if (typeOid === TypeOids.BYTEA && !cut) {
    const hex = parseByteaHex(text);
    return hex === null ? typed(typeOid, 0, text) : raw(typeOid, 0, hex);
  }
  return typed(typeOid, 0, cut ? text : decodeText(typeOid, text));
}

// ---------------------------------------------------------------------------------------------
