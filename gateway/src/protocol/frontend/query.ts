/** Query ('Q'): a simple-protocol query string; exec_simple_query reads one String, then pq_getmsgend. */
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface Query {
  readonly name: 'Query';
  /** The original frame, header included (a view, not a copy). */
  readonly bytes: Buffer;
  /**
   * The SQL text as sent (a view of `bytes`, no copy, without its NUL): decoded once, by the
   * session, in the encoding the server reads it in (sql/lexical.ts readSqlText).
   */
  readonly sqlBytes: Buffer;
}

/** `ab`/`at`: where `frame` lies, when known (FrontendFrame; views of it are then cheaper). */
export function readQuery(frame: Buffer, bodyOffset = 5, ab: ArrayBufferLike | null = null, at = 0): Query {
  const r = new BodyReader(frame, bodyOffset, frame.length, ab, at);
  const sqlBytes = r.cstringBytes();
  r.done('Query');
  return { name: 'Query', bytes: frame, sqlBytes };
}

export function encodeQuery(sql: string): Buffer {
  return new MessageWriter(sql.length + 8).cstring(sql).message('Q');
}
