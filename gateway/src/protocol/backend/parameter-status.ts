/** ParameterStatus ('S'): a run-time parameter the server reports (server_version, TimeZone, ...). */
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface ParameterStatus {
  readonly name: 'ParameterStatus';
  /** The original message (a view). */
  readonly bytes: Buffer;
  readonly parameter: string;
  readonly value: string;
}

export function readParameterStatusMessage(msg: Buffer): ParameterStatus {
  const { name: parameter, value } = readParameterStatus(msg);
  return { name: 'ParameterStatus', bytes: msg, parameter, value };
}

/** Legacy shape: `name` is the parameter's name. Prefer readParameterStatusMessage. */
export function readParameterStatus(msg: Buffer): { name: string; value: string } {
  const r = new BodyReader(msg, 5);
  const name = r.cstring();
  const value = r.cstring();
  r.done('ParameterStatus');
  return { name, value };
}

export function encodeParameterStatus(name: string, value: string): Buffer {
  return new MessageWriter().cstring(name).cstring(value).message('S');
}
