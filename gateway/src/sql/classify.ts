/**
 * SQL text → Classification: every statement of a (possibly multi-statement) text, each with its
 * own SQL slice, fingerprint and effects. Unparsable text yields no statements and the parser's
 * message, never a guess.
 */
import { analyzeStatement, unwrapNode } from './analyze';
import { statementColumns } from './columns';
import { fingerprintStatement, isSqlParserReady, parseStatements } from './parser';
import type { RawStmt } from './parser';
import type { Classification, StatementInfo } from './types';

export { initSqlParser, isSqlParserReady } from './parser';

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The statement's own text: `stmt_location`/`stmt_len` are UTF-8 byte offsets; len 0 = to the end. */
function statementText(sql: string, ascii: boolean, bytes: Buffer | null, raw: RawStmt): string {
  const start = raw.stmt_location ?? 0;
  const len = raw.stmt_len ?? 0;
  const end = len > 0 ? start + len : undefined;
  if (ascii) return sql.slice(start, end).trim();
  return (bytes ?? Buffer.from(sql, 'utf8')).subarray(start, end).toString('utf8').trim();
}

/** Classifies SQL text. Synchronous; throws only when initSqlParser() has not completed. */
export function classify(sql: string): Classification {
  return classifyWithSpans(sql, null);
}

/**
 * classify(), also reporting each statement's raw [start, end) in the text (end -1: to the end),
 * for ASCII texts (UTF-8 byte offsets are then string offsets). Used by the shape cache.
 */
export function classifyWithSpans(sql: string, spans: Array<[number, number]> | null): Classification {
  if (!isSqlParserReady()) throw new Error('SQL parser not initialised: await initSqlParser() first');
  if (sql === '') return { statements: [], parse_error: null };
  // The parser reads a C string: text after a NUL would be invisible to it but not to others.
  if (sql.includes('\u0000')) return { statements: [], parse_error: 'SQL text contains a NUL character' };

  let raws: RawStmt[];
  try {
    raws = parseStatements(sql);
  } catch (err) {
    return { statements: [], parse_error: errorMessage(err) };
  }
  try {
    const ascii = Buffer.byteLength(sql, 'utf8') === sql.length;
    const bytes = ascii ? null : Buffer.from(sql, 'utf8');
    const statements: StatementInfo[] = [];
    for (const raw of raws) {
      const node = unwrapNode(raw.stmt);
      if (node === null) throw new Error('parse tree without a statement node');
      const text = statementText(sql, ascii, bytes, raw);
      if (spans !== null && ascii) {
        const start = raw.stmt_location ?? 0;
        const len = raw.stmt_len ?? 0;
        spans.push([start, len > 0 ? start + len : -1]);
      }
      const info = analyzeStatement(node[0], node[1], text, fingerprintStatement(text));
      info.columns = statementColumns(node[0], node[1]);
      statements.push(info);
    }
    return { statements, parse_error: null };
  } catch (err) {
    // Deeper than the walker can go, or a tree shape it does not know: fail closed.
    return { statements: [], parse_error: `cannot classify: ${errorMessage(err)}` };
  }
}
