/**
 * The pgward capture format, version 1 (docs/policy-ci.md): JSON Lines, one header line, then one
 * record per line in the order the gateway saw them. Frames are the original protocol bytes in
 * base64 (re-encoded only when redaction rewrote them). Password frames ('p') never appear.
 */
import type { ConnectionInfo } from '../policy/types';

export const CAPTURE_FORMAT = 'pgward-capture';
export const CAPTURE_VERSION = 1;

export interface CaptureHeader {
  format: typeof CAPTURE_FORMAT;
  version: typeof CAPTURE_VERSION;
  /** ISO 8601 time the file was opened. */
  created: string;
  /** 'pgward' (live capture) or 'pcap' (imported from a packet capture). */
  source: 'pgward' | 'pcap';
  pgward_version: string;
  /** What was rewritten before writing (replay then judges the rewritten frames). */
  redact: { parameters: boolean; literals: boolean };
  /** sql.max_sql_bytes_in_input of the capturing gateway (replay bounds SQL the same way). */
  max_sql_bytes_in_input: number;
}

/** The context of one connection, as the gateway knew it when the StartupMessage was judged. */
export type ConnectionRecord = { t: number; conn: string; ev: 'connection' } & Pick<
  ConnectionInfo,
  | 'client_addr'
  | 'client_port'
  | 'tls'
  | 'user'
  | 'database'
  | 'application_name'
  | 'parameters'
  | 'options'
  | 'protocol_version'
>;

/** AuthenticationOk reached: what follows is the ready phase. */
export interface AuthRecord {
  t: number;
  conn: string;
  ev: 'auth';
  protocol_version: string;
}

export interface CloseRecord {
  t: number;
  conn: string;
  ev: 'close';
  outcome: string;
}

/** Records of this connection were dropped from here on (the sink fell behind): replay stops judging it. */
export interface TruncatedRecord {
  t: number;
  conn: string;
  ev: 'truncated';
}

export interface FrameRecord {
  t: number;
  conn: string;
  /** F: client to server, B: server to client. */
  dir: 'F' | 'B';
  /** F frames: the transaction status the gateway judged this frame with. */
  ts?: 'I' | 'T' | 'E';
  /** base64 of the whole frame (type byte and length included; untyped for the StartupMessage). */
  frame: string;
  /**
   * A Query or Parse whose SQL text the gateway refused to read as the server would (a backslash
   * it could not place, bytes invalid in the client encoding, …): it was denied with this code,
   * reason and SQLSTATE, and replay denies it the same way without reading the text. With
   * literals redacted the frame's text is empty (withheld). Absent in captures written before
   * 2026-12-06 (replay then reads the text again, and judges a redacted one as empty).
   */
  unread?: { code: string; reason: string; sqlstate: string };
}

export type CaptureRecord = ConnectionRecord | AuthRecord | CloseRecord | TruncatedRecord | FrameRecord;

/** Microseconds since the epoch. */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

export function connectionRecord(t: number, c: ConnectionInfo): ConnectionRecord {
  return {
    t,
    conn: c.id,
    ev: 'connection',
    client_addr: c.client_addr,
    client_port: c.client_port,
    tls: { ...c.tls },
    user: c.user,
    database: c.database,
    application_name: c.application_name,
    parameters: { ...c.parameters },
    options: { ...c.options },
    protocol_version: c.protocol_version,
  };
}

export function makeHeader(over: Partial<CaptureHeader> & Pick<CaptureHeader, 'source'>): CaptureHeader {
  return {
    format: CAPTURE_FORMAT,
    version: CAPTURE_VERSION,
    created: new Date().toISOString(),
    pgward_version: '0.1.0',
    redact: { parameters: false, literals: false },
    max_sql_bytes_in_input: 64 * 1024,
    ...over,
  };
}

/** Checks a parsed header line; throws with the reason. */
export function checkHeader(v: unknown): CaptureHeader {
  const h = v as Partial<CaptureHeader> | null;
  if (h === null || typeof h !== 'object' || h.format !== CAPTURE_FORMAT) {
    throw new Error(`not a pgward capture (the first line has no "format": "${CAPTURE_FORMAT}")`);
  }
  if (h.version !== CAPTURE_VERSION) throw new Error(`unsupported capture version ${String(h.version)}`);
  if (typeof h.max_sql_bytes_in_input !== 'number' || !(h.max_sql_bytes_in_input > 0)) {
    throw new Error('capture header: max_sql_bytes_in_input missing');
  }
  return h as CaptureHeader;
}
