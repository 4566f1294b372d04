/** Authentication* ('R') messages. https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** Legacy shape returned by readAuthentication. */
export type Authentication =
  | Exclude<
      AuthenticationMessage,
      {
        name:
          | 'AuthenticationKerberosV5'
          | 'AuthenticationGSS'
          | 'AuthenticationGSSContinue'
          | 'AuthenticationSSPI';
      }
    >
  | { readonly name: 'AuthenticationOther'; readonly code: number };

/** Authentication* as named in the protocol documentation; `bytes` is the original message (a view). */
export type AuthenticationMessage =
  | { readonly name: 'AuthenticationOk'; readonly bytes: Buffer }
  | { readonly name: 'AuthenticationKerberosV5'; readonly bytes: Buffer }
  | { readonly name: 'AuthenticationCleartextPassword'; readonly bytes: Buffer }
  | { readonly name: 'AuthenticationMD5Password'; readonly bytes: Buffer; readonly salt: Buffer }
  | { readonly name: 'AuthenticationGSS'; readonly bytes: Buffer }
  | { readonly name: 'AuthenticationGSSContinue'; readonly bytes: Buffer; readonly data: Buffer }
  | { readonly name: 'AuthenticationSSPI'; readonly bytes: Buffer }
  | { readonly name: 'AuthenticationSASL'; readonly bytes: Buffer; readonly mechanisms: readonly string[] }
  | { readonly name: 'AuthenticationSASLContinue'; readonly bytes: Buffer; readonly data: Buffer }
  | { readonly name: 'AuthenticationSASLFinal'; readonly bytes: Buffer; readonly data: Buffer };

/** Whether a decoded backend message is one of the Authentication requests. */
export function isAuthenticationMessage(m: { readonly name: string }): m is AuthenticationMessage {
  return m.name.startsWith('Authentication');
}

/**
 * Reads an Authentication ('R') message. Fixed-size requests must end where their fields end (libpq
 * checks the consumed length of every message); the SASL mechanism list ends with an empty String;
 * an unknown request code is refused (libpq: "authentication method %u not supported").
 */
export function readAuthenticationMessage(msg: Buffer): AuthenticationMessage {
  const r = new BodyReader(msg, 5);
  const code = r.int32();
  switch (code) {
    case AuthCode.Ok:
      r.done('AuthenticationOk');
      return { name: 'AuthenticationOk', bytes: msg };
    case AuthCode.KerberosV5:
      r.done('AuthenticationKerberosV5');
      return { name: 'AuthenticationKerberosV5', bytes: msg };
    case AuthCode.CleartextPassword:
      r.done('AuthenticationCleartextPassword');
      return { name: 'AuthenticationCleartextPassword', bytes: msg };
    case AuthCode.MD5Password: {
      const salt = r.bytes(4);
      r.done('AuthenticationMD5Password');
      return { name: 'AuthenticationMD5Password', bytes: msg, salt };
    }
    case AuthCode.GSS:
      r.done('AuthenticationGSS');
      return { name: 'AuthenticationGSS', bytes: msg };
    case AuthCode.GSSContinue:
      return { name: 'AuthenticationGSSContinue', bytes: msg, data: r.rest() };
    case AuthCode.SSPI:
      r.done('AuthenticationSSPI');
      return { name: 'AuthenticationSSPI', bytes: msg };
    case AuthCode.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const m = r.cstring();
        if (m === '') break;
        mechanisms.push(m);
      }
      r.done('AuthenticationSASL');
      return { name: 'AuthenticationSASL', bytes: msg, mechanisms };
    }
    case AuthCode.SASLContinue:
      return { name: 'AuthenticationSASLContinue', bytes: msg, data: r.rest() };
    case AuthCode.SASLFinal:
      return { name: 'AuthenticationSASLFinal', bytes: msg, data: r.rest() };
    default:
      throw malformed(`Authentication: unsupported request code ${code}`);
  }
}

/**
 * Legacy reader (the session before the union): KerberosV5, GSS, GSSContinue, SSPI and unknown codes
 * come back as AuthenticationOther. Prefer readAuthenticationMessage / readBackendMessage.
 */
export function readAuthentication(msg: Buffer): Authentication {
  const code = new BodyReader(msg, 5).int32();
  if (!KNOWN_CODES.has(code)) return { name: 'AuthenticationOther', code };
  const a = readAuthenticationMessage(msg);
  switch (a.name) {
    case 'AuthenticationKerberosV5':
    case 'AuthenticationGSS':
    case 'AuthenticationGSSContinue':
    case 'AuthenticationSSPI':
      return { name: 'AuthenticationOther', code };
    default:
      return a;
  }
}

const KNOWN_CODES = new Set<number>(Object.values(AuthCode));

export function encodeAuthenticationOk(): Buffer {
  return new MessageWriter(4).int32(AuthCode.Ok).message('R');
}

export function encodeAuthenticationCleartextPassword(): Buffer {
  return new MessageWriter(4).int32(AuthCode.CleartextPassword).message('R');
}

export function encodeAuthenticationMD5Password(salt: Uint8Array): Buffer {
  return new MessageWriter(8).int32(AuthCode.MD5Password).bytes(salt).message('R');
}

export function encodeAuthenticationSASL(mechanisms: readonly string[]): Buffer {
  const w = new MessageWriter().int32(AuthCode.SASL);
  for (const m of mechanisms) w.cstring(m);
  w.int8(0);
  return w.message('R');
}
