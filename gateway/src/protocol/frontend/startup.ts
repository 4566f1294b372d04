/**
 * Untyped startup-phase packets: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { ErrorCodes } from '../../errors';
import { ProtocolError } from '../errors';
import { MAX_CANCEL_KEY_BYTES } from '../limits';
import { BodyReader } from '../reader';
import { StartupCode } from '../message-types';
import { MessageWriter } from '../writer';

export interface StartupMessage {
  readonly name: 'StartupMessage';
  /** (major << 16) | minor */
  readonly protocolVersion: number;
  readonly parameters: ReadonlyMap<string, string>;
}

export interface SSLRequest {
  readonly name: 'SSLRequest';
}

export interface GSSENCRequest {
  readonly name: 'GSSENCRequest';
}

export interface CancelRequest {
  readonly name: 'CancelRequest';
  readonly processId: number;
  /** 4 bytes in protocol 3.0, up to 256 bytes in 3.2. */
  readonly secretKey: Buffer;
}

export type StartupPacket = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;

function invalid(msg: string): ProtocolError {
  return new ProtocolError(ErrorCodes.PROTOCOL_STARTUP_INVALID, msg);
}

/** Decodes one whole startup packet (length word included). Throws ProtocolError. */
export function readStartupPacket(packet: Buffer): StartupPacket {
  const r = new BodyReader(packet, 4);
  const code = r.int32();
  if (code === StartupCode.SSLRequest) {
    r.done('SSLRequest');
    return { name: 'SSLRequest' };
  }
  if (code === StartupCode.GSSENCRequest) {
    r.done('GSSENCRequest');
    return { name: 'GSSENCRequest' };
  }
  if (code === StartupCode.CancelRequest) {
    const processId = r.int32();
    const keyLen = r.remaining;
    if (keyLen < 4 || keyLen > MAX_CANCEL_KEY_BYTES) throw invalid(`invalid length of CancelRequest: ${packet.length}`);
    return { name: 'CancelRequest', processId, secretKey: Buffer.from(r.rest()) };
  }
  const major = code >>> 16;
  if (major !== 3) {
    throw new ProtocolError(
      ErrorCodes.PROTOCOL_UNSUPPORTED_VERSION,
      `unsupported frontend protocol ${major}.${code & 0xffff}: server supports 3.0 to 3.2`,
    );
  }
  const parameters = new Map<string, string>();
  for (;;) {
    const key = r.cstring();
    if (key === '') break;
    const value = r.cstring();
    if (parameters.has(key)) throw invalid(`duplicate startup parameter "${key}"`);
    parameters.set(key, value);
  }
  r.done('StartupMessage');
  if (!parameters.get('user')) throw invalid('no PostgreSQL user name specified in startup packet');
  return { name: 'StartupMessage', protocolVersion: code, parameters };
}

export function encodeStartupMessage(protocolVersion: number, parameters: Iterable<[string, string]>): Buffer {
  const w = new MessageWriter();
  w.int32(protocolVersion);
  for (const [k, v] of parameters) w.cstring(k).cstring(v);
  w.int8(0);
  return w.packet();
}

export function encodeSSLRequest(): Buffer {
  return new MessageWriter(4).int32(StartupCode.SSLRequest).packet();
}

export function encodeGSSENCRequest(): Buffer {
  return new MessageWriter(4).int32(StartupCode.GSSENCRequest).packet();
}

export function encodeCancelRequest(processId: number, secretKey: Uint8Array): Buffer {
  return new MessageWriter(8 + secretKey.length).int32(StartupCode.CancelRequest).int32(processId).bytes(secretKey).packet();
}

/**
 * Splits the `options` startup parameter into settings, the way PostgreSQL's
 * pg_split_opts + process_postgres_switches read it: `-c name=value`, `--name=value`, backslash
 * escapes a space. Other switches are kept under their letter (e.g. `-B` → "B").
 */
export function parseStartupOptions(options: string): Record<string, string> {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i] as string;
    if (ch === '\\' && i + 1 < options.length) {
      cur += options[++i];
      inWord = true;
    } else if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  const out: Record<string, string> = {};
  const setKV = (kv: string): void => {
    const eq = kv.indexOf('=');
    const name = (eq < 0 ? kv : kv.slice(0, eq)).replace(/-/g, '_').toLowerCase();
    out[name] = eq < 0 ? '' : kv.slice(eq + 1);
  };
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    if (w === '-c') {
      const next = words[++i];
      if (next !== undefined) setKV(next);
    } else if (w.startsWith('-c')) {
      setKV(w.slice(2));
    } else if (w.startsWith('--')) {
      setKV(w.slice(2));
    } else if (w.startsWith('-') && w.length >= 2) {
      const rest = w.length > 2 ? w.slice(2) : (words[i + 1] !== undefined && !words[i + 1]!.startsWith('-') ? words[++i] : '');
      out[`-${w[1]}`] = rest ?? '';
    } else {
      out[`arg:${w}`] = '';
    }
  }
  return out;
}
