/**
 * Redaction of SQL literals and bound parameter values before anything is written to an audit or
 * decision log. SQL is normalized with libpg-query's `normalizeSync` (the real PostgreSQL parser)
 * when its wasm module is loaded, and then passed through a lexer that replaces any literal the
 * parser-based normalizer leaves behind (it keeps e.g. COPY file names and the body of PREPARE).
 * Text the parser rejects goes through the lexer alone. The lexer assumes
 * standard_conforming_strings = on (the default since PostgreSQL 9.1).
 * https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 */
import * as pgQuery from 'libpg-query';
import type { BindParameter, InputDocument, MessageInfo, PreparedRef } from '../policy/types';
import type { StatementInfo } from '../sql/types';

export const REDACTED = '[REDACTED]';

export interface RedactOptions {
  parameters: boolean;
  literals: boolean;
}

let parserLoading: Promise<void> | null = null;

/**
 * Loads libpg-query's wasm module (shared with the SQL classifier, which may have loaded it
 * already); until it is loaded, normalization uses the lexer only.
 */
export function loadSqlNormalizer(): Promise<void> {
  parserLoading ??= pgQuery.loadModule();
  return parserLoading;
}

const isIdentStart = (c: number): boolean =>
  (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c >= 0x80;
const isIdentChar = (c: number): boolean => isIdentStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x24;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** Index just past the quoted string starting at `i` (the opening quote); -1 when unterminated. */
function endOfQuoted(sql: string, i: number, quote: string, backslashEscapes: boolean): number {
  let j = i + 1;
  while (j < sql.length) {
    const ch = sql[j];
    if (backslashEscapes && ch === '\\') {
      j += 2;
      continue;
    }
    if (ch === quote) {
      if (sql[j + 1] === quote) {
        j += 2;
        continue;
      }
      return j + 1;
    }
    j++;
  }
  return -1;
}

/**
 * Replaces string, bit-string, dollar-quoted and numeric literals with `$n`, numbering after the
 * highest `$n` already present. Comments and quoted identifiers are kept. An unterminated literal
 * (the rest of the text) becomes its opening delimiter alone (`'`, `E'`, `$$`): its content goes,
 * and the text stays as unparseable as it was, so replay of a redacted capture meets the same
 * parse error the live gateway judged. So do an unterminated quoted identifier (`"`) and block
 * comment (`/*`): what follows them may be anything.
 */
export function replaceLiterals(sql: string): string {
  let next = highestPlaceholder(sql);
  const placeholder = (): string => `$${++next}`;
  let out = '';
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    const ch = sql[i] as string;
    // -- line comment
    if (ch === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? n : end;
      out += sql.slice(i, stop);
      i = stop;
      continue;
    }
    // /* block comment */ (nests in PostgreSQL)
    if (ch === '/' && sql[i + 1] === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (sql[j] === '/' && sql[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (sql[j] === '*' && sql[j + 1] === '/') {
          depth--;
          j += 2;
        } else j++;
      }
      if (depth > 0) return `${out}/*`;
      out += sql.slice(i, j);
      i = j;
      continue;
    }
    if (ch === '"') {
      const end = endOfQuoted(sql, i, '"', false);
      if (end === -1) return `${out}"`;
      out += sql.slice(i, end);
      i = end;
      continue;
    }
    if (ch === "'") {
      i = endOfQuoted(sql, i, "'", false);
      if (i === -1) return out + "'";
      out += placeholder();
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentChar(sql.charCodeAt(j))) j++;
      const word = sql.slice(i, j);
      const upper = word.toUpperCase();
      // E'..', B'..', X'..', N'..' literals; U&'..' Unicode strings; U&".." identifiers.
      if (sql[j] === "'" && (upper === 'E' || upper === 'B' || upper === 'X' || upper === 'N')) {
        i = endOfQuoted(sql, j, "'", upper === 'E');
        if (i === -1) return `${out}${word}'`;
        out += placeholder();
        continue;
      }
      if (upper === 'U' && sql[j] === '&' && sql[j + 1] === "'") {
        i = endOfQuoted(sql, j + 1, "'", false);
        if (i === -1) return `${out}${word}&'`;
        out += placeholder();
        continue;
      }
      out += word;
      i = j;
      continue;
    }
    if (ch === '$') {
      // $n parameter
      if (isDigit(sql.charCodeAt(i + 1))) {
        let j = i + 1;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
        out += sql.slice(i, j);
        i = j;
        continue;
      }
      // $tag$ ... $tag$ (tag empty or an identifier without '$')
      let j = i + 1;
      if (j < n && isIdentStart(sql.charCodeAt(j))) {
        while (j < n && isIdentChar(sql.charCodeAt(j)) && sql[j] !== '$') j++;
      }
      if (sql[j] === '$') {
        const tag = sql.slice(i, j + 1);
        const close = sql.indexOf(tag, j + 1);
        if (close === -1) return `${out}$$`;
        i = close + tag.length;
        out += placeholder();
        continue;
      }
      out += ch;
      i++;
      continue;
    }
    if (isDigit(c) || (ch === '.' && isDigit(sql.charCodeAt(i + 1)))) {
      let j = i;
      if (ch === '0' && /[xXoObB]/.test(sql[i + 1] ?? '')) {
        j += 2;
        while (j < n && /[0-9a-fA-F_]/.test(sql[j] as string)) j++;
      } else {
        while (j < n && /[0-9_]/.test(sql[j] as string)) j++;
        if (sql[j] === '.' && sql[j + 1] !== '.') {
          j++;
          while (j < n && /[0-9_]/.test(sql[j] as string)) j++;
        }
        if (/[eE]/.test(sql[j] ?? '') && /[0-9+-]/.test(sql[j + 1] ?? '')) {
          j += 2;
          while (j < n && isDigit(sql.charCodeAt(j))) j++;
        }
      }
      out += placeholder();
      i = j;
      continue;
    }
    out += ch;
    i++;
  }
  return out;
}

/** The highest `$n` in the text (0: none). */
function highestPlaceholder(sql: string): number {
  let max = 0;
  for (const m of sql.matchAll(/\$(\d+)/g)) max = Math.max(max, Number(m[1]));
  return max;
}

/**
 * Whether `out` has the shape of a normalization of `sql`: the text with spans of it replaced by
 * `$n` and nothing else, so every piece of `out` between its `$n` appears in `sql` in order, the
 * first at its start and the last at its end.
 */
function isNormalizationOf(out: string, sql: string): boolean {
  if (out === sql) return true;
  const pieces = out.split(/\$\d+/);
  if (pieces.length < 2) return false;
  const first = pieces[0] as string;
  if (!sql.startsWith(first)) return false;
  let at = first.length;
  for (let i = 1; i < pieces.length - 1; i++) {
    const piece = pieces[i] as string;
    const k = sql.indexOf(piece, at);
    if (k === -1) return false;
    at = k + piece.length;
  }
  const last = pieces[pieces.length - 1] as string;
  return sql.length - last.length >= at && sql.endsWith(last);
}

/**
 * SQL with every literal replaced by `$n`. Never throws.
 *
 * libpg-query's `normalizeSync` (18.1) throws only on parser messages that start with "syntax
 * error" or "ERROR", and returns any other one as if it were the normalized text: a scanner error
 * quotes the offending token (`SELECT 'hunter2` came back as `unterminated quoted string at or
 * near "'hunter2"`), and some grammar errors quote a decoded identifier. Its result is taken only
 * when it has the shape of a normalization of the text (isNormalizationOf); otherwise the text
 * did not parse, and the lexer alone redacts it, kept unparseable (see stillRejected).
 */
export function normalizeSql(sql: string): string {
  try {
    const out = pgQuery.normalizeSync(sql);
    if (isNormalizationOf(out, sql)) return replaceLiterals(out);
  } catch {
    // not parseable, or the wasm module is not loaded yet: the lexer alone
  }
  return stillRejected(replaceLiterals(sql), sql);
}

/**
 * The lexer's redaction of text the parser rejects, made to fail parsing too: replay of a
 * redacted capture must meet a parse error where the live gateway did. An unterminated literal
 * already leaves its opening delimiter; an error the lexer does not see (an invalid escape in
 * `E'…'` or `U&'…'`, `0x`, `1_`) would leave valid SQL, which gets a lone `'` at its end. Costs two
 * parses, on this path only.
 */
function stillRejected(redacted: string, sql: string): string {
  try {
    pgQuery.parseSync(sql);
    return redacted; // it parses (normalizeSync failed otherwise), or the parser is not loaded
  } catch {
    // rejected: so must the redaction be
  }
  try {
    pgQuery.parseSync(redacted);
  } catch {
    return redacted;
  }
  return `${redacted} '`;
}

/**
 * Parser messages quote the offending token (`syntax error at or near "'secret'"`), or the bytes
 * an escape made in a literal (`invalid byte sequence for encoding "UTF8": 0xf0 0x68 0x75 0x6e`,
 * from `E'\\xf0hun…'`).
 */
export function redactParseError(message: string | null): string | null {
  if (message === null) return null;
  return message
    .replace(/ at or near ".*$/s, ` at or near ${REDACTED}`)
    .replace(/(invalid byte sequence for encoding "[^"]*"): .*$/s, `$1: ${REDACTED}`);
}

/**
 * The messages of a decision as written with literals redacted: a policy message that quotes a
 * parser error (the shipped `parse_error` denial: "SQL could not be parsed: unterminated quoted
 * string at or near \"'hunter2\"") quotes the client's text, so the quoted token goes as in
 * redactParseError. Other text a site rule copies from the input into a message is the rule's to
 * keep out (docs/audit.md).
 */
export function redactVerdicts<D extends { message: string }, A extends { message: string }>(v: {
  denials: readonly D[];
  reasons: readonly string[];
  alerts: readonly A[];
}): { denials: D[]; reasons: string[]; alerts: A[] } {
  const r = (m: string): string => redactParseError(m) as string;
  return {
    denials: v.denials.map((d) => ({ ...d, message: r(d.message) })),
    reasons: v.reasons.map(r),
    alerts: v.alerts.map((a) => ({ ...a, message: r(a.message) })),
  };
}

export function redactStatement(s: StatementInfo): StatementInfo {
  const out: StatementInfo = {
    ...s,
    sql: normalizeSql(s.sql),
    settings: s.settings.map((x) => ({ ...x, value: x.value === null ? null : REDACTED })),
    copy: s.copy === null ? null : { ...s.copy, filename: s.copy.filename === null ? null : REDACTED },
  };
  if (s.prepared !== null) {
    const { inner, ...rest } = s.prepared;
    out.prepared = inner === undefined ? rest : { ...rest, inner: redactStatement(inner) };
  }
  return out;
}

export function redactParameters(ps: readonly BindParameter[]): BindParameter[] {
  return ps.map((p) => ({ type_oid: p.type_oid, format: p.format, value: REDACTED, encoding: 'decoded' }));
}

function redactPrepared(p: PreparedRef, opts: RedactOptions): PreparedRef {
  if (!opts.literals) return p;
  return {
    ...p,
    sql: normalizeSql(p.sql),
    statements: p.statements.map(redactStatement),
    parse_error: redactParseError(p.parse_error),
  };
}

/**
 * A copy of the policy input with literals and/or parameter values redacted, and the JSON Pointers
 * (relative to the input) that were changed.
 */
export function redactInput(
  input: InputDocument,
  opts: RedactOptions,
): { input: InputDocument; masked: string[] } {
  if (!opts.literals && !opts.parameters) return { input, masked: [] };
  const masked: string[] = [];
  const m: MessageInfo = { ...input.message };
  if (opts.literals) {
    if (m.sql !== undefined) {
      m.sql = normalizeSql(m.sql);
      masked.push('/message/sql');
    }
    if (m.statement) {
      m.statement = redactPrepared(m.statement, opts);
      masked.push('/message/statement');
    }
  }
  if (opts.parameters) {
    if (m.parameters !== undefined) {
      m.parameters = redactParameters(m.parameters);
      masked.push('/message/parameters');
    }
    if (m.arguments !== undefined) {
      m.arguments = redactParameters(m.arguments);
      masked.push('/message/arguments');
    }
  }
  let parseError = input.parse_error;
  if (opts.literals && parseError !== null) {
    parseError = redactParseError(parseError);
    masked.push('/parse_error');
  }
  let statements = input.statements;
  if (opts.literals && statements.length > 0) {
    statements = statements.map(redactStatement);
    masked.push('/statements');
  }
  return { input: { ...input, message: m, statements, parse_error: parseError }, masked };
}
