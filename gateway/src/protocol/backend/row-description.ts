/**
 * RowDescription ('T'): an unsigned Int16 field count, then per field its name, table OID, column
 * attribute number, type OID, type size, type modifier and format code.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-ROWDESCRIPTION
 */
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface FieldDescription {
  readonly name: string;
  readonly tableOid: number;
  readonly columnAttributeNumber: number;
  readonly typeOid: number;
  readonly typeSize: number;
  readonly typeModifier: number;
  readonly format: number;
}

export interface RowDescription {
  readonly name: 'RowDescription';
  /** The original message (a view). */
  readonly bytes: Buffer;
  readonly fields: readonly FieldDescription[];
}

/** Smallest field: empty name (1) + 4 + 2 + 4 + 2 + 4 + 2. */
const MIN_FIELD_BYTES = 19;

export function readRowDescription(msg: Buffer): RowDescription {
  const r = new BodyReader(msg, 5);
  const n = r.uint16();
  r.expect(n, MIN_FIELD_BYTES, 'RowDescription');
  const fields: FieldDescription[] = new Array(n);
  for (let i = 0; i < n; i++) {
    fields[i] = {
      name: r.cstring(),
      tableOid: r.uint32(),
      columnAttributeNumber: r.int16(),
      typeOid: r.uint32(),
      typeSize: r.int16(),
      typeModifier: r.int32(),
      format: r.int16(),
    };
  }
  r.done('RowDescription');
  return { name: 'RowDescription', bytes: msg, fields };
}

export function encodeRowDescription(fields: readonly FieldDescription[]): Buffer {
  const w = new MessageWriter().int16(fields.length);
  for (const f of fields) {
    w.cstring(f.name)
      .uint32(f.tableOid)
      .int16(f.columnAttributeNumber)
      .uint32(f.typeOid)
      .int16(f.typeSize)
      .int32(f.typeModifier)
      .int16(f.format);
  }
  return w.message('T');
}
