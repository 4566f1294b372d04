/**
 * Backend messages pgward passes through and decodes only on request: DataRow ('D', never decoded
 * on the hot path: the scanner skips it by length), CopyData ('d', opaque), FunctionCallResponse
 * ('V'), NotificationResponse ('A').
 */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

/** A DataRow, undecoded: only the original message. */
export interface DataRow {
  readonly name: 'DataRow';
  readonly bytes: Buffer;
}

export interface BackendCopyData {
  readonly name: 'CopyData';
  readonly bytes: Buffer;
  /** The body (a view). */
  readonly data: Buffer;
}

export interface FunctionCallResponse {
  readonly name: 'FunctionCallResponse';
  readonly bytes: Buffer;
  /** null for a NULL result (length -1); a view otherwise. */
  readonly value: Buffer | null;
}

export interface NotificationResponse {
  readonly name: 'NotificationResponse';
  readonly bytes: Buffer;
  readonly processId: number;
  readonly channel: string;
  readonly payload: string;
}

export function readDataRow(msg: Buffer): DataRow {
  return { name: 'DataRow', bytes: msg };
}

export function readBackendCopyData(msg: Buffer): BackendCopyData {
  return { name: 'CopyData', bytes: msg, data: msg.subarray(5) };
}

export function readFunctionCallResponse(msg: Buffer): FunctionCallResponse {
  const r = new BodyReader(msg, 5);
  const len = r.int32();
  let value: Buffer | null = null;
  if (len === -1) value = null;
  else if (len < 0) throw malformed(`FunctionCallResponse: invalid length ${len}`);
  else value = r.bytes(len);
  r.done('FunctionCallResponse');
  return { name: 'FunctionCallResponse', bytes: msg, value };
}

export function readNotificationResponse(msg: Buffer): NotificationResponse {
  const r = new BodyReader(msg, 5);
  const processId = r.int32();
  const channel = r.cstring();
  const payload = r.cstring();
  r.done('NotificationResponse');
  return { name: 'NotificationResponse', bytes: msg, processId, channel, payload };
}

export function encodeFunctionCallResponse(value: Uint8Array | null): Buffer {
  const w = new MessageWriter();
  if (value === null) w.int32(-1);
  else w.int32(value.length).bytes(value);
  return w.message('V');
}

export function encodeNotificationResponse(processId: number, channel: string, payload: string): Buffer {
  return new MessageWriter().int32(processId).cstring(channel).cstring(payload).message('A');
}

export function encodeDataRow(values: ReadonlyArray<Uint8Array | null>): Buffer {
  const w = new MessageWriter().int16(values.length);
  for (const v of values) {
    if (v === null) w.int32(-1);
    else w.int32(v.length).bytes(v);
  }
  return w.message('D');
}
