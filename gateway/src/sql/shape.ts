/**
 * Literal-insensitive keys for SQL text: the same text with the digits of numeric constants
 * turned to `0` and the contents of plain string constants turned to spaces. The key has the
 * same length and the same token structure as the text, so two texts with one key parse to trees
 * that differ only in constant values (and statement offsets are the same in both).
 *
 * The tokenizer is deliberately narrow: anything it is not certain about (non-ASCII text,
 * backslashes, dollar quoting, `U&` escapes, unterminated quotes or comments) gives `null`, and
 * the caller classifies the text itself.
 * https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 */

const isIdentStart = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95; // A-Z a-z _
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isIdentPart = (c: number): boolean => isIdentStart(c) || isDigit(c) || c === 36; // $

/** Runs of '0' and of spaces, cut to a constant's length (longer ones are repeated). */
const ZEROS = '0'.repeat(64);
const SPACES = ' '.repeat(64);
const run = (of: string, n: number): string => (n <= 64 ? of.slice(0, n) : of[0]!.repeat(n));

/** Whether the text holds a non-ASCII character or a backslash anywhere. */
function unsure(sql: string): boolean {
  for (let i = 0; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c > 0x7f || c === 92 /* \\ */) return true;
  }
  return false;
}

/**
 * One pass over the text (after a check for what it is not sure about), the key assembled from
 * the text's own slices and runs of '0' and spaces: no closure, no regular expression (this runs
 * for every simple Query whose exact text is not cached).
 */
export function shapeKey(sql: string): string | null {
  if (unsure(sql)) return null;
  const n = sql.length;
  let key = '';
  let i = 0;
  let copied = 0; // sql[copied, i) is still to be copied as is
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isIdentStart(c)) {
      // Identifier or keyword, including digits inside it (t1 stays t1). `U&'…'`/`U&"…"` are out.
      const start = i;
      while (i < n && isIdentPart(sql.charCodeAt(i))) i++;
      if (sql.charCodeAt(i) === 38 /* & */ && i - start === 1 && (c === 85 || c === 117)) return null;
      // B'…', X'…' (bit strings) and E'…' keep their contents: a key that differs is merely a miss.
      if (sql.charCodeAt(i) === 39 /* ' */ && i - start === 1) {
        const end = endOfString(sql, i);
        if (end < 0) return null;
        i = end;
      }
      continue;
    }
    if (c === 36 /* $ */) {
      // $n parameters stay; anything else ($tag$ quoting) is out.
      if (!isDigit(sql.charCodeAt(i + 1))) return null;
      i++;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      continue;
    }
    if (isDigit(c)) {
      const start = i;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      key += sql.slice(copied, start) + run(ZEROS, i - start);
      copied = i;
      continue;
    }
    if (c === 39 /* ' */) {
      const end = endOfString(sql, i);
      if (end < 0) return null;
      key += sql.slice(copied, i + 1) + run(SPACES, end - i - 2);
      copied = end - 1;
      i = end;
      continue;
    }
    if (c === 34 /* " */) {
      const end = sql.indexOf('"', i + 1);
      if (end < 0) return null;
      i = end + 1; // "" inside an identifier is two adjacent quoted parts: same result
      continue;
    }
    if (c === 45 /* - */ && sql.charCodeAt(i + 1) === 45) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    if (c === 47 /* / */ && sql.charCodeAt(i + 1) === 42 /* * */) {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql.charCodeAt(i) === 47 && sql.charCodeAt(i + 1) === 42) {
          depth++;
          i += 2;
        } else if (sql.charCodeAt(i) === 42 && sql.charCodeAt(i + 1) === 47) {
          depth--;
          i += 2;
        } else i++;
      }
      if (depth > 0) return null;
      continue;
    }
    i++;
  }
  return copied === 0 ? sql : key + sql.slice(copied);
}

/** Index just past the closing quote of a '…' string starting at `open` ('' is a quote inside), or -1. */
function endOfString(sql: string, open: number): number {
  let i = open + 1;
  for (;;) {
    const q = sql.indexOf("'", i);
    if (q < 0) return -1;
    if (sql.charCodeAt(q + 1) === 39) {
      i = q + 2;
      continue;
    }
    return q + 1;
  }
}
