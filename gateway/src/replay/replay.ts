/**
 * Offline re-evaluation of captured traffic: capture records are fed in order, each connection
 * gets a FrameJudge per engine (the same policy half the live session uses), and every judged
 * message yields a decision. Engines are replayed side by side ("lanes") with separate statement
 * registries, because what a Bind means depends on which earlier Parse each policy allowed.
 */
import { createHash } from 'node:crypto';
import { FrameJudge, type JudgedType, type SqlTextDecoder } from '../policy/frame-judge';
import {
  applyParameterStatus,
  DEFAULT_LEXICAL_STATE,
  readSqlText,
  type LexicalRefusal,
  type LexicalState,
} from '../sql/lexical';
import { ReplayStatements } from '../session/judged-ops';
import type { Alert, ConnectionInfo, Denial, PolicyEngine } from '../policy/types';
import type { Classification } from '../sql/types';
import { BackendType } from '../protocol/message-types';
import { readBackendMessage } from '../protocol/backend/backend-message';
import { readFrontendMessage, type FrontendMessage } from '../protocol/frontend/frontend-message';
import { PgwardError, ErrorCodes, type ErrorCode } from '../errors';
import { checkHeader, type CaptureHeader, type CaptureRecord, type FrameRecord } from '../capture/format';

/** One judged message, as compared between runs (decision ids differ between runs and are not kept). */
export interface ReplayDecision {
  /**
   * `<content hash>#<n>`: the hash of the message's content (type, user, database,
   * application_name, SQL), n counting earlier messages of the same content in the replay from 0.
   * Neither connection ids nor file names enter it, so re-capturing the same workload gives the
   * same keys (replayKey).
   */
  key: string;
  conn: string;
  index: number;
  user: string;
  database: string;
  application_name: string | null;
  type: JudgedType;
  /** Query/Parse text, or the SQL of the statement a Bind binds. */
  sql: string | null;
  fingerprint: string | null;
  allow: boolean;
  denials: Denial[];
  reasons: string[];
  alerts: Alert[];
  sqlstate: string | null;
  error_code: string | null;
}

export interface ReplayStats {
  records: number;
  frames: number;
  connections: number;
  /** Frames of connections whose start is not in the capture (not judged). */
  orphan_frames: number;
  warnings: string[];
}

interface LaneConn {
  judge: FrameJudge;
  statements: ReplayStatements;
  /** The connection was refused at startup by this lane's policy: nothing after it is judged. */
  closed: boolean;
}

interface Conn {
  info: ConnectionInfo;
  phase: 'startup' | 'ready' | 'truncated';
  judged: number;
  lastStatus: 'I' | 'T' | 'E';
  /**
   * What the server reported of client_encoding and standard_conforming_strings (the captured
   * ParameterStatus messages), so SQL text is read as the live session read it.
   */
  lexical: LexicalState;
  /**
   * The refusal the capture recorded for the frame being judged (its `unread`): the live session
   * could not read that text, and replay denies it the same way without reading it.
   */
  unread: LexicalRefusal | null;
  lanes: LaneConn[];
}

const NO_PARAMETERS: ReadonlyMap<string, string> = new Map();

export interface ReplayerOptions {
  classify(sql: string): Classification;
  /** Called for every decision of every lane (lane index, decision). */
  onDecision(lane: number, d: ReplayDecision): void;
}

export class Replayer {
  private readonly conns = new Map<string, Conn>();
  /** Messages seen per content hash (the `#n` of keys). */
  private readonly occurrences = new Map<string, number>();
  private maxSqlBytes = 64 * 1024;
  readonly stats: ReplayStats = { records: 0, frames: 0, connections: 0, orphan_frames: 0, warnings: [] };

  constructor(
    private readonly engines: readonly PolicyEngine[],
    private readonly opts: ReplayerOptions,
  ) {}

  /** Starts a capture file. Connections carry over between files (rotation splits a capture set). */
  beginFile(_name: string, header: unknown): CaptureHeader {
    const h = checkHeader(header);
    this.maxSqlBytes = h.max_sql_bytes_in_input;
    return h;
  }

  record(rec: CaptureRecord): void {
    this.stats.records++;
    if ('dir' in rec) {
      this.stats.frames++;
      this.frame(rec.conn, rec.dir, Buffer.from(rec.frame, 'base64'), rec.ts, unreadOf(rec));
      return;
    }
    switch (rec.ev) {
      case 'connection': {
        const info: ConnectionInfo = {
          id: rec.conn,
          client_addr: rec.client_addr,
          client_port: rec.client_port,
          tls: { ...rec.tls },
          user: rec.user,
          database: rec.database,
          application_name: rec.application_name,
          parameters: { ...rec.parameters },
          options: { ...rec.options },
          protocol_version: rec.protocol_version,
          authenticated: false,
          transaction_status: 'I',
        };
        const opts = { maxSqlBytes: this.maxSqlBytes };
        const conn: Conn = {
          info,
          phase: 'startup',
          judged: 0,
          lastStatus: 'I',
          lexical: { ...DEFAULT_LEXICAL_STATE },
          unread: null,
          lanes: [],
        };
        const readSql: SqlTextDecoder = (bytes) => conn.unread ?? readSqlText(bytes, conn.lexical);
        this.conns.set(rec.conn, conn);
        conn.lanes.push(
          ...this.engines.map((e) => ({
            judge: new FrameJudge(e, this.opts.classify, opts, readSql),
            statements: new ReplayStatements(),
            closed: false,
          })),
        );
        this.stats.connections++;
        return;
      }
      case 'auth': {
        const c = this.conns.get(rec.conn);
        if (!c || c.phase !== 'startup') return;
        c.phase = 'ready';
        c.info.authenticated = true;
        c.info.protocol_version = rec.protocol_version;
        return;
      }
      case 'close':
        this.conns.delete(rec.conn);
        return;
      case 'truncated': {
        const c = this.conns.get(rec.conn);
        if (c) c.phase = 'truncated';
        this.stats.warnings.push(
          `connection ${rec.conn}: capture truncated (the sink fell behind); later messages not judged`,
        );
        return;
      }
      default:
        throw new PgwardError(
          ErrorCodes.REPLAY_INPUT,
          `unknown capture record ${JSON.stringify(rec).slice(0, 100)}`,
        );
    }
  }

  private frame(
    id: string,
    dir: 'F' | 'B',
    frame: Buffer,
    ts: 'I' | 'T' | 'E' | undefined,
    unread: LexicalRefusal | null,
  ): void {
    const c = this.conns.get(id);
    if (!c) {
      this.stats.orphan_frames++;
      return;
    }
    if (dir === 'B') {
      if (frame[0] === BackendType.ReadyForQuery && frame.length === 6) {
        const b = readBackendMessage(frame);
        if (b.name === 'ReadyForQuery') c.lastStatus = b.status;
      } else if (frame[0] === BackendType.ParameterStatus) {
        this.parameterStatus(id, c, frame);
      }
      return;
    }
    if (c.phase === 'truncated') return;
    if (c.phase === 'startup') {
      // The only client frame captured before authentication is the StartupMessage.
      const info = { ...c.info };
      let key: string | null = null;
      c.lanes.forEach((lane, i) => {
        if (lane.closed) return;
        const j = lane.judge.startup(info);
        if (!j.decision.allow) lane.closed = true;
        key ??= this.nextKey(c, j.type, null);
        this.emit(i, c, key, j.type, null, null, j.decision);
      });
      c.judged++;
      return;
    }
    c.info.transaction_status = ts ?? c.lastStatus;
    const msg = this.decode(id, c, frame);
    if (msg === null) return;
    let judged = false;
    let key: string | null = null;
    c.unread = msg.name === 'Query' || msg.name === 'Parse' ? unread : null;
    c.lanes.forEach((lane, i) => {
      if (lane.closed || c.phase === 'truncated') return;
      if (
        msg.name !== 'Query' &&
        msg.name !== 'Parse' &&
        msg.name !== 'Bind' &&
        msg.name !== 'FunctionCall'
      ) {
        lane.statements.other(msg);
        return;
      }
      const j = lane.judge.judge(msg, c.info, { view: lane.statements, serverParameters: NO_PARAMETERS });
      judged = true;
      lane.statements.judged(j, j.decision.allow);
      const m = j.input.message;
      const sql = j.original?.sql ?? m.sql ?? m.statement?.sql ?? null;
      key ??= this.nextKey(c, j.type, sql);
      const shown = sql === '' ? textAsSent(msg) : sql;
      this.emit(i, c, key, j.type, shown, j.input.statements[0]?.fingerprint ?? null, j.decision);
    });
    c.unread = null;
    if (judged) c.judged++;
  }

  /**
   * A captured ParameterStatus of a lexical setting (capture keeps only those): later SQL text is
   * read under it. A state the live session cannot read ended that session (a tripwire); replay
   * judges nothing more of the connection either.
   */
  private parameterStatus(id: string, c: Conn, frame: Buffer): void {
    let why: string;
    try {
      const b = readBackendMessage(frame);
      if (b.name !== 'ParameterStatus') return;
      const next = applyParameterStatus(c.lexical, b.parameter, b.value);
      if (next.ok) {
        c.lexical = next.state;
        return;
      }
      why = next.reason;
    } catch (err) {
      why = `undecodable ParameterStatus (${(err as Error).message})`;
    }
    c.phase = 'truncated';
    this.stats.warnings.push(
      `connection ${id}: ${why}; the live session ended here, later messages not judged`,
    );
  }

  /** A captured client frame decoded once for every lane, as the live session decodes it once. */
  private decode(id: string, c: Conn, frame: Buffer): FrontendMessage | null {
    try {
      return readFrontendMessage({ type: frame[0] as number, bytes: frame, bodyOffset: 5 });
    } catch (err) {
      // The live session closes the connection (08P01) on a frame it cannot decode.
      c.phase = 'truncated';
      this.stats.warnings.push(
        `connection ${id}: undecodable frame (${(err as Error).message}); later messages not judged`,
      );
      return null;
    }
  }

  /** The key of the next message of this content (computed once per message, shared by the lanes). */
  private nextKey(c: Conn, type: JudgedType, sql: string | null): string {
    const h = replayContentHash(type, c.info.user, c.info.database, c.info.application_name, sql);
    const n = this.occurrences.get(h) ?? 0;
    this.occurrences.set(h, n + 1);
    return `${h}#${n}`;
  }

  private emit(
    lane: number,
    c: Conn,
    key: string,
    type: JudgedType,
    sql: string | null,
    fingerprint: string | null,
    d: {
      allow: boolean;
      denials: Denial[];
      reasons: string[];
      alerts: Alert[];
      sqlstate: string | null;
      error_code: string | null;
    },
  ): void {
    const i = c.info;
    this.opts.onDecision(lane, {
      key,
      conn: i.id,
      index: c.judged,
      user: i.user,
      database: i.database,
      application_name: i.application_name,
      type,
      sql,
      fingerprint,
      allow: d.allow,
      denials: d.denials,
      reasons: d.reasons,
      alerts: d.alerts,
      sqlstate: d.sqlstate,
      error_code: d.error_code,
    });
  }
}

const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCodes));

/** A frame record's `unread` (capture/format.ts), checked: a malformed one stops the replay. */
function unreadOf(rec: FrameRecord): LexicalRefusal | null {
  const u = rec.unread;
  if (u === undefined) return null;
  if (
    typeof u !== 'object' ||
    u === null ||
    typeof u.code !== 'string' ||
    !ERROR_CODES.has(u.code) ||
    typeof u.reason !== 'string' ||
    typeof u.sqlstate !== 'string' ||
    !/^[0-9A-Z]{5}$/.test(u.sqlstate)
  ) {
    throw new PgwardError(
      ErrorCodes.REPLAY_INPUT,
      `capture record of connection ${rec.conn}: malformed "unread" ${JSON.stringify(u).slice(0, 100)}`,
    );
  }
  return { ok: false, code: u.code as ErrorCode, reason: u.reason, sqlstate: u.sqlstate };
}

/**
 * What the report shows for a Query's or Parse's text the judge had as '': the text was empty, or
 * the decoder refused it (pgward cannot read it as the server would; the decision's reasons say
 * why). Its bytes read as UTF-8 (invalid sequences as U+FFFD), for display only: the decision's key
 * stays that of '' (expectations files match by key). Only here: the live audit record carries the
 * frame itself, and capture must keep redacting from the text as read, never from this.
 */
function textAsSent(m: FrontendMessage): string {
  return m.name === 'Query' || m.name === 'Parse' ? m.sqlBytes.toString('utf8') : '';
}

/** 16 hex digits of SHA-256 over the message's content (what a decision key is made of). */
export function replayContentHash(
  type: string,
  user: string,
  database: string,
  application: string | null,
  sql: string | null,
): string {
  return createHash('sha256')
    .update(JSON.stringify([type, user, database, application, sql]))
    .digest('hex')
    .slice(0, 16);
}
