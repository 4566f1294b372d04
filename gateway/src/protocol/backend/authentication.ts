/** Authentication* ('R') messages. https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP */
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

export type Authentication =
  | { readonly name: 'AuthenticationOk' }
  | { readonly name: 'AuthenticationCleartextPassword' }
  | { readonly name: 'AuthenticationMD5Password'; readonly salt: Buffer }
  | { readonly name: 'AuthenticationSASL'; readonly mechanisms: readonly string[] }
  | { readonly name: 'AuthenticationSASLContinue'; readonly data: Buffer }
  | { readonly name: 'AuthenticationSASLFinal'; readonly data: Buffer }
  | { readonly name: 'AuthenticationOther'; readonly code: number };

export function readAuthentication(msg: Buffer): Authentication {
  const r = new BodyReader(msg, 5);
  const code = r.int32();
  switch (code) {
    case AuthCode.Ok:
      r.done('AuthenticationOk');
      return { name: 'AuthenticationOk' };
    case AuthCode.CleartextPassword:
      r.done('AuthenticationCleartextPassword');
      return { name: 'AuthenticationCleartextPassword' };
    case AuthCode.MD5Password: {
      const salt = r.bytes(4);
      r.done('AuthenticationMD5Password');
      return { name: 'AuthenticationMD5Password', salt };
    }
    case AuthCode.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const m = r.cstring();
        if (m === '') break;
        mechanisms.push(m);
      }
      r.done('AuthenticationSASL');
      return { name: 'AuthenticationSASL', mechanisms };
    }
    case AuthCode.SASLContinue:
      return { name: 'AuthenticationSASLContinue', data: r.rest() };
    case AuthCode.SASLFinal:
      return { name: 'AuthenticationSASLFinal', data: r.rest() };
    default:
      return { name: 'AuthenticationOther', code };
  }
}

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
