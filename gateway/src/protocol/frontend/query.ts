/** Query ('Q'): a simple-protocol query string. */
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface Query {
  readonly name: 'Query';
  readonly sql: string;
}

export function readQuery(frame: Buffer, bodyOffset = 5): Query {
  const r = new BodyReader(frame, bodyOffset);
  const sql = r.cstring();
  r.done('Query');
  return { name: 'Query', sql };
}

export function encodeQuery(sql: string): Buffer {
  return new MessageWriter(sql.length + 8).cstring(sql).message('Q');
}
