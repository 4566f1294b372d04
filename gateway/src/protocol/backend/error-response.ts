/**
 * ErrorResponse ('E') and NoticeResponse ('N'): a list of (field code, string) pairs.
 * Field codes: https://www.postgresql.org/docs/current/protocol-error-fields.html
 */
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface ErrorFields {
  /** S: localized severity */
  severity: string;
  /** V: non-localized severity (9.6+) */
  severityNonLocalized?: string;
  /** C: SQLSTATE */
  code: string;
  /** M: primary message */
  message: string;
  /** D */
  detail?: string;
  /** H */
  hint?: string;
  /** every field by its code letter, as received */
  raw?: Record<string, string>;
}

export interface ErrorResponse {
  readonly name: 'ErrorResponse';
  /** The original message (a view). */
  readonly bytes: Buffer;
  readonly fields: ErrorFields;
}

export interface NoticeResponse {
  readonly name: 'NoticeResponse';
  readonly bytes: Buffer;
  readonly fields: ErrorFields;
}

export function readErrorResponse(msg: Buffer): ErrorResponse {
  return { name: 'ErrorResponse', bytes: msg, fields: readErrorFields(msg) };
}

export function readNoticeResponse(msg: Buffer): NoticeResponse {
  return { name: 'NoticeResponse', bytes: msg, fields: readErrorFields(msg) };
}

/** The fields of an ErrorResponse or NoticeResponse: (Byte1 code, String) pairs, then a zero byte. */
export function readErrorFields(msg: Buffer): ErrorFields {
  const r = new BodyReader(msg, 5);
  const raw: Record<string, string> = {};
  for (;;) {
    const code = r.int8();
    if (code === 0) break;
    raw[String.fromCharCode(code)] = r.cstring();
  }
  r.done('ErrorResponse');
  const out: ErrorFields = { severity: raw.S ?? '', code: raw.C ?? '', message: raw.M ?? '', raw };
  if (raw.V !== undefined) out.severityNonLocalized = raw.V;
  if (raw.D !== undefined) out.detail = raw.D;
  if (raw.H !== undefined) out.hint = raw.H;
  return out;
}

function encodeFields(type: 'E' | 'N', f: ErrorFields): Buffer {
  const w = new MessageWriter(128 + f.message.length);
  w.int8(0x53).cstring(f.severity);
  w.int8(0x56).cstring(f.severityNonLocalized ?? f.severity);
  w.int8(0x43).cstring(f.code);
  w.int8(0x4d).cstring(f.message);
  if (f.detail !== undefined) w.int8(0x44).cstring(f.detail);
  if (f.hint !== undefined) w.int8(0x48).cstring(f.hint);
  w.int8(0);
  return w.message(type);
}

export function encodeErrorResponse(f: ErrorFields): Buffer {
  return encodeFields('E', f);
}

export function encodeNoticeResponse(f: ErrorFields): Buffer {
  return encodeFields('N', f);
}
