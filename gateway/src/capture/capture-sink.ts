/**
 * Live traffic capture: the session observer hands every client frame after authentication, the
 * StartupMessage, and the backend's ReadyForQuery/ErrorResponse; the sink keeps the connections
 * selected by the user/database/application filters and writes them as capture records
 * (capture/format.ts) into rotating files. Memory is bounded: past `maxBufferedBytes` queued in
 * the file stream, a connection's records are dropped (counted) and it is marked truncated.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { ErrorCodes, type ErrorCode } from '../errors';
import type { FastCounter } from '../metrics/metrics';
import type { ConnectionInfo } from '../policy/types';
import { FrontendType, BackendType } from '../protocol/message-types';
import { encodeQuery } from '../protocol/frontend/query';
import { encodeParse } from '../protocol/frontend/parse';
import { encodeBind } from '../protocol/frontend/bind';
import { encodeFunctionCall } from '../protocol/frontend/function-call';
import { encodeCopyFail } from '../protocol/frontend/simple-messages';
import type { FrontendMessage } from '../protocol/frontend/frontend-message';
import { encodeErrorResponse, type ErrorResponse } from '../protocol/backend/error-response';
import { normalizeSql, REDACTED } from '../audit/redact';
import type { FrameDirection } from '../session/types';
import type { LexicalRefusal } from '../sql/lexical';
import {
  connectionRecord,
  makeHeader,
  nowMicros,
  type CaptureHeader,
  type CaptureRecord,
  type FrameRecord,
} from './format';

export interface CaptureSinkOptions {
  dir: string;
  /** Empty: every user. */
  users: readonly string[];
  databases: readonly string[];
  applications: readonly string[];
  max_file_bytes: number;
  max_file_age_s: number;
  redact: { parameters: boolean; literals: boolean };
  /** sql.max_sql_bytes_in_input, written into each header so replay bounds SQL the same way. */
  maxSqlBytesInInput: number;
  /** Bytes queued in the file stream beyond which records are dropped. Default 8 MiB. */
  maxBufferedBytes?: number;
  pgwardVersion?: string;
}

export interface CaptureSinkDeps {
  metrics?: { capturedFrames: FastCounter; countError(code: ErrorCode): void };
  logger?: Logger;
  /** Microseconds since the epoch. */
  now?: () => number;
}

export interface CaptureStats {
  active: boolean;
  file: string | null;
  files_opened: number;
  frames_written: number;
  records_dropped: number;
  connections_captured: number;
  write_errors: number;
}

interface ConnState {
  /** false: filtered out (or truncated), nothing more is written for it. */
  keep: boolean;
  authenticated: boolean;
}

const DEFAULT_MAX_BUFFERED = 8 * 1024 * 1024;
const REDACTED_BYTES = Buffer.from(REDACTED, 'utf8');

export class CaptureSink {
  private readonly conns = new Map<string, ConnState>();
  private stream: fs.WriteStream | null = null;
  private file: string | null = null;
  private fileBytes = 0;
  private fileOpenedAt = 0;
  private fileSeq = 0;
  private running = false;
  private broken = false;
  private readonly stats_ = {
    files_opened: 0,
    frames_written: 0,
    records_dropped: 0,
    connections_captured: 0,
    write_errors: 0,
  };
  private readonly now: () => number;
  private readonly maxBuffered: number;
  /** Connections whose records were dropped and that still need their `truncated` marker. */
  private readonly owedTruncation = new Set<string>();

  constructor(
    private readonly opts: CaptureSinkOptions,
    private readonly deps: CaptureSinkDeps = {},
  ) {
    this.now = deps.now ?? nowMicros;
    this.maxBuffered = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
  }

  get active(): boolean {
    return this.running;
  }

  /** Starts capturing new connections (connections already open are not captured). */
  start(): void {
    if (this.running) return;
    fs.mkdirSync(this.opts.dir, { recursive: true });
    this.running = true;
    this.broken = false;
    this.deps.logger?.info({ dir: this.opts.dir }, 'traffic capture started');
  }

  /** Stops capturing and closes the current file. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.stream !== null && this.owedTruncation.size > 0) this.payTruncations(this.stream);
    this.conns.clear();
    this.owedTruncation.clear();
    await this.closeFile();
    // Files rotated away are closed in the background; stopped means every one is complete.
    await Promise.all([...this.closing]);
    this.deps.logger?.info({ frames: this.stats_.frames_written }, 'traffic capture stopped');
  }

  stats(): CaptureStats {
    return { active: this.running, file: this.file, ...this.stats_ };
  }

  /**
   * `message` is the client frame as the session decoded it once, `sql` a Query's or Parse's text
   * as the session decoded it: redaction reads them, never the frame again. `refusal`: the session
   * refused to read that text (the frame was denied); the record says so (`unread`), and with
   * literals redacted its text is withheld (an empty text in its place).
   */
  onFrame(
    direction: FrameDirection,
    frame: Buffer,
    c: ConnectionInfo,
    message?: FrontendMessage | ErrorResponse,
    sql?: string,
    refusal?: LexicalRefusal,
  ): void {
    if (!this.running) return;
    let st = this.conns.get(c.id);
    if (direction === 'frontend') {
      // Passwords and SASL exchanges: the session never hands them, and the sink never writes them.
      if (st === undefined) {
        // Only connections seen from their StartupMessage on are captured (replay needs the whole
        // statement history of a connection to judge a Bind).
        if (c.authenticated) return;
        st = { keep: this.selected(c), authenticated: false };
        this.conns.set(c.id, st);
        if (!st.keep) return;
        this.stats_.connections_captured++;
        this.write(c.id, connectionRecord(this.now(), c));
        this.writeFrame(c.id, 'F', frame, null);
        return;
      }
      if (!st.keep) return;
      // Before AuthenticationOk only the authentication exchange flows: never written.
      if (!st.authenticated || frame[0] === FrontendType.PasswordMessage) return;
      const m = message?.name === 'ErrorResponse' ? undefined : message;
      const out = this.redactFrame(frame, m, refusal === undefined ? sql : '');
      if (out === null) return;
      this.writeFrame(c.id, 'F', out, c.transaction_status, refusal);
      return;
    }
    if (st === undefined || !st.keep) return;
    const type = frame[0];
    if (type === BackendType.ReadyForQuery && !st.authenticated) {
      st.authenticated = true;
      this.write(c.id, { t: this.now(), conn: c.id, ev: 'auth', protocol_version: c.protocol_version });
    }
    const error = message?.name === 'ErrorResponse' ? message : null;
    this.writeFrame(
      c.id,
      'B',
      type === BackendType.ErrorResponse ? this.redactError(frame, error) : frame,
      null,
    );
  }

  /**
   * A server error as written: with either redaction on, its severity and SQLSTATE only (the
   * message `[REDACTED]`): PostgreSQL quotes values in messages and details (`invalid input syntax
   * for type integer: "…"`, `Key (email)=(…) already exists`). Replay reads no more than that.
   * `e`: the error as the session decoded it once (without it, nothing of the server's is kept).
   */
  private redactError(frame: Buffer, e: ErrorResponse | null): Buffer {
    const r = this.opts.redact;
    if (!r.literals && !r.parameters) return frame;
    const f = e?.fields ?? { severity: 'ERROR', code: 'XX000', message: '' };
    return encodeErrorResponse({
      severity: f.severity,
      severityNonLocalized: f.severityNonLocalized ?? f.severity,
      code: f.code,
      message: REDACTED,
    });
  }

  onConnectionClosed(outcome: string, c: ConnectionInfo): void {
    const st = this.conns.get(c.id);
    if (st === undefined) return;
    this.conns.delete(c.id);
    if (!this.running || !st.keep) return;
    this.write(c.id, { t: this.now(), conn: c.id, ev: 'close', outcome });
  }

  async close(): Promise<void> {
    await this.stop();
  }

  private selected(c: ConnectionInfo): boolean {
    const o = this.opts;
    if (o.users.length > 0 && !o.users.includes(c.user)) return false;
    if (o.databases.length > 0 && !o.databases.includes(c.database)) return false;
    if (o.applications.length > 0 && !o.applications.includes(c.application_name ?? '')) return false;
    return true;
  }

  /**
   * The frame as it is written: literals and/or values rewritten per the redaction options; null
   * to skip it (a Query or Parse whose text the session could not read is never written unredacted).
   */
  private redactFrame(frame: Buffer, m: FrontendMessage | undefined, sql: string | undefined): Buffer | null {
    const r = this.opts.redact;
    if (!r.literals && !r.parameters) return frame;
    if (m === undefined) return null;
    switch (m.name) {
      case 'Query':
        if (!r.literals) return m.bytes;
        return sql === undefined ? null : encodeQuery(normalizeSql(sql));
      case 'Parse':
        if (!r.literals) return m.bytes;
        return sql === undefined ? null : encodeParse(m.statement, normalizeSql(sql), m.paramTypes);
      case 'Bind':
        return r.parameters
          ? encodeBind(m.portal, m.statement, redacted(m.params), m.resultFormats)
          : m.bytes;
      case 'FunctionCall':
        return r.parameters ? encodeFunctionCall(m.oid, redacted(m.args), m.resultFormat) : m.bytes;
      case 'CopyData':
        // Row data is values: not written at all when parameters are redacted.
        return r.parameters ? null : m.bytes;
      case 'CopyFail':
        // A driver may quote the row it gave up on.
        return r.parameters ? encodeCopyFail(REDACTED) : m.bytes;
      default:
        return m.bytes;
    }
  }

  private writeFrame(
    conn: string,
    dir: 'F' | 'B',
    frame: Buffer,
    ts: 'I' | 'T' | 'E' | null,
    refusal?: LexicalRefusal,
  ): void {
    const rec: FrameRecord =
      ts === null
        ? { t: this.now(), conn, dir, frame: frame.toString('base64') }
        : { t: this.now(), conn, dir, ts, frame: frame.toString('base64') };
    if (refusal !== undefined)
      rec.unread = { code: refusal.code, reason: refusal.reason, sqlstate: refusal.sqlstate };
    if (this.write(conn, rec)) {
      this.stats_.frames_written++;
      this.deps.metrics?.capturedFrames.inc();
    }
  }

  /** Writes one record; false when it was dropped. */
  private write(conn: string, rec: CaptureRecord): boolean {
    if (this.broken) return this.drop(conn);
    const line = JSON.stringify(rec) + '\n';
    const n = Buffer.byteLength(line);
    const stream = this.ensureFile(n);
    if (stream === null) return this.drop(conn);
    if (stream.writableLength > this.maxBuffered) return this.drop(conn);
    if (this.owedTruncation.size > 0) this.payTruncations(stream);
    stream.write(line);
    this.fileBytes += n;
    return true;
  }

  private drop(conn: string): boolean {
    this.stats_.records_dropped++;
    this.deps.metrics?.countError(ErrorCodes.CAPTURE_SINK);
    const st = this.conns.get(conn);
    if (st && st.keep) {
      st.keep = false;
      this.owedTruncation.add(conn);
      this.deps.logger?.warn({ conn }, 'capture fell behind: connection no longer captured');
    }
    return false;
  }

  private payTruncations(stream: fs.WriteStream): void {
    for (const conn of this.owedTruncation) {
      const line = JSON.stringify({ t: this.now(), conn, ev: 'truncated' }) + '\n';
      stream.write(line);
      this.fileBytes += line.length;
    }
    this.owedTruncation.clear();
  }

  private ensureFile(nextBytes: number): fs.WriteStream | null {
    const now = this.now();
    if (
      this.stream !== null &&
      (this.fileBytes + nextBytes > this.opts.max_file_bytes ||
        now - this.fileOpenedAt >= this.opts.max_file_age_s * 1e6)
    ) {
      void this.closeFile();
    }
    if (this.stream !== null) return this.stream;
    this.fileSeq++;
    const stamp = new Date(now / 1000).toISOString().replace(/[:.]/g, '-');
    const file = path.join(
      this.opts.dir,
      `pgward-capture-${stamp}-${process.pid}-${String(this.fileSeq).padStart(6, '0')}.jsonl`,
    );
    let stream: fs.WriteStream;
    try {
      stream = fs.createWriteStream(file, { flags: 'wx', mode: 0o600 });
    } catch (err) {
      this.onWriteError(err);
      return null;
    }
    stream.on('error', (err) => this.onWriteError(err));
    const header: CaptureHeader = makeHeader({
      source: 'pgward',
      pgward_version: this.opts.pgwardVersion ?? '0.1.0',
      redact: { ...this.opts.redact },
      max_sql_bytes_in_input: this.opts.maxSqlBytesInInput,
    });
    const line = JSON.stringify(header) + '\n';
    stream.write(line);
    this.stream = stream;
    this.file = file;
    this.fileBytes = line.length;
    this.fileOpenedAt = now;
    this.stats_.files_opened++;
    return stream;
  }

  private onWriteError(err: unknown): void {
    this.stats_.write_errors++;
    this.broken = true;
    this.deps.metrics?.countError(ErrorCodes.CAPTURE_SINK);
    this.deps.logger?.error(
      { err: (err as Error).message, code: ErrorCodes.CAPTURE_SINK },
      'capture file cannot be written',
    );
  }

  /** Closes of rotated files still flushing. */
  private readonly closing = new Set<Promise<void>>();

  private closeFile(): Promise<void> {
    const s = this.stream;
    this.stream = null;
    this.file = null;
    if (s === null) return Promise.resolve();
    const done = new Promise<void>((resolve) => {
      s.end(() => resolve());
      s.once('error', () => resolve());
    });
    this.closing.add(done);
    void done.then(() => this.closing.delete(done));
    return done;
  }
}

/** Values replaced by [REDACTED], NULLs kept. */
function redacted(params: ReadonlyArray<{ format: 0 | 1; value: Buffer | null }>): Array<{
  format: 0 | 1;
  value: Buffer | null;
}> {
  return params.map((p) => ({ format: p.format, value: p.value === null ? null : REDACTED_BYTES }));
}
