/**
 * Untyped startup-phase packets: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { ErrorCodes } from '../../errors';
import { ProtocolError } from '../errors';
import { MAX_CANCEL_KEY_BYTES, MAX_STARTUP_NAME_BYTES } from '../limits';
import { BodyReader } from '../reader';
import { StartupCode } from '../message-types';
import { MessageWriter } from '../writer';

export interface StartupMessage {
  readonly name: 'StartupMessage';
  /** The original packet, length word included (a view, not a copy). */
  readonly bytes: Buffer;
  /** (major << 16) | minor */
  readonly protocolVersion: number;
  readonly parameters: ReadonlyMap<string, string>;
}

export interface SSLRequest {
  readonly name: 'SSLRequest';
  /** The original packet, length word included (a view, not a copy). */
  readonly bytes: Buffer;
}

export interface GSSENCRequest {
  readonly name: 'GSSENCRequest';
  /** The original packet, length word included (a view, not a copy). */
  readonly bytes: Buffer;
}

export interface CancelRequest {
  readonly name: 'CancelRequest';
  /** The original packet, length word included (a view, not a copy). */
  readonly bytes: Buffer;
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
  // ProcessStartupPacket reads the whole packet and looks only at the request code: an SSLRequest
  // or GSSENCRequest longer than 8 bytes is answered all the same (PostgreSQL 15 answers 'S' to a
  // 12-byte SSLRequest), the bytes after the code ignored.
  if (code === StartupCode.SSLRequest) return { name: 'SSLRequest', bytes: packet };
  if (code === StartupCode.GSSENCRequest) return { name: 'GSSENCRequest', bytes: packet };
  if (code === StartupCode.CancelRequest) {
    // PostgreSQL 15 wants exactly 16 bytes, 18 (protocol 3.2) a key of 4..256 bytes; a wrong
    // length is COMMERROR "invalid length of startup packet": logged, no reply.
    const keyLen = r.remaining - 4;
    if (keyLen < 4 || keyLen > MAX_CANCEL_KEY_BYTES) {
      throw new ProtocolError(
        ErrorCodes.PROTOCOL_STARTUP_LENGTH,
        `invalid length of CancelRequest: ${packet.length}`,
        true,
      );
    }
    const processId = r.int32();
    return { name: 'CancelRequest', bytes: packet, processId, secretKey: Buffer.from(r.rest()) };
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
  return { name: 'StartupMessage', bytes: packet, protocolVersion: code, parameters };
}

/**
 * What PostgreSQL does to the `user` and `database` of a startup packet (ProcessStartupPacket,
 * src/backend/postmaster/postmaster.c in 15, backend_startup.c in 17+): a name of NAMEDATALEN (64)
 * bytes or more is cut to its first 63 **bytes** (`name[NAMEDATALEN - 1] = '\0'`), with no regard
 * to character boundaries. The "at a character boundary" is what `namein` does to a name
 * in SQL (CREATE ROLE, identifiers), not what the startup packet gets. Checked against the real
 * PostgreSQL 15 (tests/protocol/startup-names.test.ts): a name of 61 ASCII bytes + 'é' + "xyz"
 * logs in as the 63-byte role; a name of 62 ASCII bytes + 'é' (64 bytes) is cut to the 62 bytes
 * and the first byte of 'é', so the server answers FATAL 28000 role "aaa…\303" does not exist,
 * although CREATE ROLE with that same name made the 62-byte role.
 *
 * `name` is the parameter as decoded from the packet (UTF-8). For a name that was valid UTF-8 the
 * result is exactly the bytes the server looks up, decoded; a split character becomes U+FFFD, which
 * no name made in SQL under a UTF-8 server encoding can equal.
 */
export function truncateStartupName(name: string): string {
  // A UTF-16 unit is at most 3 UTF-8 bytes: 21 units or fewer always fit.
  if (name.length <= MAX_STARTUP_NAME_BYTES / 3) return name;
  const raw = Buffer.from(name, 'utf8');
  if (raw.length <= MAX_STARTUP_NAME_BYTES) return name;
  return raw.toString('utf8', 0, MAX_STARTUP_NAME_BYTES);
}

/**
 * The user and database PostgreSQL will use for a StartupMessage, in its order: the database
 * defaults to the user when absent or empty, then both are cut by truncateStartupName. (A
 * `replication` value that makes a physical walsender clears the database afterwards; pgward
 * leaves that to the server.)
 */
export function startupIdentity(parameters: ReadonlyMap<string, string>): {
  user: string;
  database: string;
} {
  const user = parameters.get('user') ?? '';
  const db = parameters.get('database');
  const database = db === undefined || db === '' ? user : db;
  return { user: truncateStartupName(user), database: truncateStartupName(database) };
}

export function encodeStartupMessage(
  protocolVersion: number,
  parameters: Iterable<[string, string]>,
): Buffer {
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
  return new MessageWriter(8 + secretKey.length)
    .int32(StartupCode.CancelRequest)
    .int32(processId)
    .bytes(secretKey)
    .packet();
}

/** The switches of `postgres` (process_postgres_switches); a letter followed by `:` takes an argument. */
const POSTGRES_SWITCHES = 'B:bC:c:D:d:EeFf:h:ijk:lN:nOPp:r:S:sTt:v:W:-:';

function switchTakesArgument(letter: string): boolean | undefined {
  const i = POSTGRES_SWITCHES.indexOf(letter);
  if (i < 0 || letter === ':') return undefined;
  return POSTGRES_SWITCHES[i + 1] === ':';
}

/**
 * Splits the `options` startup parameter into settings, the way PostgreSQL reads it:
 * pg_split_opts (src/backend/utils/init/postinit.c) splits on whitespace (isspace), a backslash
 * escaping the next character (a trailing backslash is dropped); process_postgres_switches then runs
 * getopt over the words, so switches can be combined (`-Ec a=b` is `-E` then `-c a=b`) and an
 * argument is the rest of the word or the next word. `-c name=value` and `--name=value` give
 * `name` (dashes become underscores, lower-cased: GUC names are case-insensitive); other switches
 * are kept as `-X` (with their argument, if any); words that are not switches as `arg:<word>`
 * (PostgreSQL refuses the connection for those and for unknown switches, kept as `-X` too).
 * The result has no prototype, so a name like `__proto__` is an ordinary key.
 */
export function parseStartupOptions(options: string): Record<string, string> {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let escaped = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i] as string;
    if (escaped) {
      cur += ch;
      escaped = false;
    } else if (ch === '\\') {
      escaped = true;
      inWord = true;
    } else if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\v' || ch === '\f') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  const setKV = (kv: string): void => {
    const eq = kv.indexOf('=');
    const name = (eq < 0 ? kv : kv.slice(0, eq)).replace(/-/g, '_').toLowerCase();
    out[name] = eq < 0 ? '' : kv.slice(eq + 1);
  };
  let endOfSwitches = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    if (endOfSwitches || !w.startsWith('-') || w === '-') {
      out[`arg:${w}`] = '';
      continue;
    }
    if (w === '--') {
      // getopt: end of the switches; whatever follows is an argument.
      endOfSwitches = true;
      continue;
    }
    for (let j = 1; j < w.length; j++) {
      const letter = w[j] as string;
      const takes = switchTakesArgument(letter);
      if (takes !== true) {
        out[`-${letter}`] = '';
        continue;
      }
      // The argument is the rest of this word, else the next word (missing: PostgreSQL refuses).
      const arg = j + 1 < w.length ? w.slice(j + 1) : (words[++i] ?? '');
      if (letter === 'c' || letter === '-') setKV(arg);
      else out[`-${letter}`] = arg;
      break;
    }
  }
  return out;
}
