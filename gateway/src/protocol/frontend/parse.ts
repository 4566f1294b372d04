/**
 * Parse ('P'): extended protocol statement preparation.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARSE
 * exec_parse_message reads name, query string, an unsigned Int16 count of parameter type OIDs
 * (up to 65,535), the OIDs, then pq_getmsgend.
 */
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface Parse {
  readonly name: 'Parse';
  /** The original frame, header included (a view, not a copy). */
  readonly bytes: Buffer;
  readonly statement: string;
  /**
   * The SQL text as sent (a view of `bytes`, no copy, without its NUL): decoded once, by the
   * session, in the encoding the server reads it in (sql/lexical.ts readSqlText).
   */
  readonly sqlBytes: Buffer;
  readonly paramTypes: readonly number[];
}

/** `ab`/`at`: where `frame` lies, when known (FrontendFrame; views of it are then cheaper). */
export function readParse(frame: Buffer, bodyOffset = 5, ab: ArrayBufferLike | null = null, at = 0): Parse {
  const r = new BodyReader(frame, bodyOffset, frame.length, ab, at);
  const statement = r.cstring();
  const sqlBytes = r.cstringBytes();
  const n = r.uint16();
  r.expect(n, 4, 'Parse');
  const paramTypes: number[] = new Array(n);
  for (let i = 0; i < n; i++) paramTypes[i] = r.uint32();
  r.done('Parse');
  return { name: 'Parse', bytes: frame, statement, sqlBytes, paramTypes };
}

export function encodeParse(statement: string, sql: string, paramTypes: readonly number[] = []): Buffer {
  const w = new MessageWriter(sql.length + statement.length + 16)
    .cstring(statement)
    .cstring(sql)
    .int16(paramTypes.length);
  for (const t of paramTypes) w.uint32(t);
  return w.message('P');
}
