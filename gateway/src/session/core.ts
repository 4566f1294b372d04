/**
 * One client connection as a state machine without sockets or timers: events in (client bytes,
 * server bytes, TLS established, upstream connected/failed, login timer fired, shutdown, either
 * side closed), actions out (see actions.ts). The startup phase (startup.ts) runs until the first
 * ReadyForQuery; the request phase (requests.ts) judges every client message, forwards original
 * bytes, and reconciles the server's answers with what was asked.
 * https://www.postgresql.org/docs/current/protocol-flow.html
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ErrorCodes, PgwardError, type ErrorCode } from '../errors';
// From the modules, not the protocol/ index: its re-exports are getters, run on every use.
import { BackendScanner, FrontendFramer, type FrontendFrame } from '../protocol/framing';
import { bufferView } from '../protocol/view';
import { BackendType, SESSION_INSPECTED_BACKEND_TYPES, typeTable } from '../protocol/message-types';
import { ProtocolError } from '../protocol/errors';
import { readBackendMessage } from '../protocol/backend/backend-message';
import { checkCommandCompleteAt } from '../protocol/backend/command-complete';
import { readReadyForQueryAt } from '../protocol/backend/ready-for-query';
import type { FrontendMessage } from '../protocol/frontend/frontend-message';
import type { ConnectionInfo } from '../policy/types';
import { encodeFatal } from '../enforcement/deny';
import type { Cancellable } from './cancel-registry';
import { WriteAction, type Action, type Refusal, type TlsInfo, type UpstreamInfo } from './actions';
import { StartupPhase } from './startup';
import { RequestPhase } from './requests';
import type { DecisionEvent, SessionDeps } from './types';
import type { Tripwire } from '../policy/tripwires';

export type Phase = 'startup' | 'tls' | 'connecting' | 'auth' | 'ready' | 'closed';

/**
 * Backend messages the core reads (by type; only the listed ones are handed over whole, DataRow
 * and CopyData never): the startup and cancel-key messages, every answer that confirms or ends a
 * request (see pipeline.ts), and ParameterStatus.
 */
const INSPECT = typeTable([
  ...SESSION_INSPECTED_BACKEND_TYPES,
  BackendType.ParseComplete,
  BackendType.BindComplete,
  BackendType.CloseComplete,
  BackendType.NoData,
  BackendType.ParameterDescription,
  BackendType.RowDescription,
  BackendType.CommandComplete,
  BackendType.EmptyQueryResponse,
  BackendType.PortalSuspended,
  BackendType.ParameterStatus,
]);

/**
 * The inspected backend messages whose content the core reads: decoded once (readBackendMessage)
 * and handed to the phases typed. The other inspected answers are counted by type only, never
 * decoded; DataRow and CopyData are not even inspected.
 */
const DECODED = typeTable([
  BackendType.Authentication,
  BackendType.BackendKeyData,
  BackendType.ReadyForQuery,
  BackendType.ErrorResponse,
  BackendType.NegotiateProtocolVersion,
  BackendType.CommandComplete,
  BackendType.ParameterStatus,
]);

/**
 * An ErrorResponse above the inspection cap (PostgreSQL quotes whole values in some errors) is
 * forwarded unread: it cannot be the rewrite target of a denial, whose errors are small.
 */
const PASS_LARGE = typeTable([BackendType.ErrorResponse]);

let sessionCounter = 0;
const sessionPrefix = randomBytes(4).toString('hex');

export interface CoreOptions {
  clientAddr: string;
  clientPort: number;
  /** The adapter that cancels this session's upstream query (the cancel registry's target). */
  cancelTarget: Cancellable;
  /** Refuse once encryption is negotiated (a limit was full when the client connected). */
  refusal?: Refusal | null;
}

export class SessionCore {
  readonly id: string;
  log: Logger;
  phase: Phase = 'startup';
  readonly conn: ConnectionInfo;
  readonly framer: FrontendFramer;
  readonly startup: StartupPhase;
  readonly requests: RequestPhase;
  closeOutcome = 'closed';
  private readonly scanner: BackendScanner;
  private actions: Action[] = [];
  private readonly out = new UpstreamRuns();
  private draining = false;
  private finished = false;
  /**
   * A client message waiting for the server to answer the cycles before it (RequestPhase.mustHold),
   * decoded once; its views keep the chunk it came in (never reused: each read is a new Buffer).
   */
  private held: FrontendMessage | null = null;

  constructor(
    readonly deps: SessionDeps,
    readonly opts: CoreOptions,
  ) {
    sessionCounter = (sessionCounter + 1) >>> 0;
    this.id = `${sessionPrefix}-${sessionCounter.toString(36)}`;
    this.framer = new FrontendFramer(deps.limits.maxMessageBytes);
    this.scanner = new BackendScanner(INSPECT, deps.frameCounts.backend, PASS_LARGE);
    this.conn = {
      id: this.id,
      client_addr: opts.clientAddr,
      client_port: opts.clientPort,
      // Nested objects are frozen and replaced, never changed in place: the policy layer keeps the
      // connection's JSON text while no field changes (policy/input-json.ts).
      tls: Object.freeze({ enabled: false, version: null, cipher: null, client_cert_subject: null }),
      user: '',
      database: '',
      application_name: null,
      parameters: Object.freeze({}),
      options: Object.freeze({}),
      protocol_version: '3.0',
      authenticated: false,
      transaction_status: 'I',
    };
    this.log = deps.logger.child({ conn: this.id, client: `${opts.clientAddr}:${opts.clientPort}` });
    this.startup = new StartupPhase(this, opts.refusal ?? null);
    this.requests = new RequestPhase(this);
    deps.observer.onConnectionOpened();
    this.emit({ kind: 'startLoginTimer', ms: deps.limits.loginTimeoutMs });
  }

  /** The actions produced since the last call, in order. */
  takeActions(): Action[] {
    const a = this.actions;
    this.actions = [];
    return a;
  }

  /** Every ParameterStatus the server sent, by name (the latest value). */
  get serverParameters(): ReadonlyMap<string, string> {
    return this.requests.serverParameters;
  }

  get isIdle(): boolean {
    return this.phase === 'ready' && this.conn.transaction_status === 'I' && this.requests.idle;
  }

  // ---------------------------------------------------------------- events

  clientData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.framer.push(chunk);
    if (this.held !== null) this.emit({ kind: 'pauseClient' });
    this.out.setChunk(chunk);
    this.pump();
    this.out.setChunk(null);
  }

  serverData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    let parts: Buffer[];
    try {
      parts = this.scanner.push(chunk, this.inspect);
    } catch (err) {
      const e = err instanceof PgwardError ? err : new PgwardError(ErrorCodes.UPSTREAM_PROTOCOL, String(err));
      this.upstreamProtocolError(e.message);
      return;
    }
    if ((this.phase as Phase) === 'closed') return;
    let n = 0;
    for (const p of parts) n += p.length;
    if (n > 0) this.emit(new WriteAction('writeClient', parts, n));
    if (this.held !== null) this.pump();
    if (this.draining && this.isIdle) this.shutdownIdle();
  }

  tlsEstablished(info: TlsInfo): void {
    if (this.phase !== 'tls') return;
    this.conn.tls = Object.freeze({
      enabled: true,
      version: info.version,
      cipher: info.cipher,
      client_cert_subject: info.clientCertSubject,
    });
    this.phase = 'startup';
    this.pump();
  }

  upstreamConnected(info: UpstreamInfo): void {
    if (this.phase !== 'connecting') return;
    this.startup.upstream = info;
    this.phase = 'auth';
    this.pump();
  }

  upstreamFailed(err: PgwardError): void {
    if (this.phase !== 'connecting') return;
    this.log.error({ code: err.code, err: err.message }, 'cannot connect upstream');
    this.deps.observer.onUpstreamConnectError();
    this.deps.observer.onError(err.code, this.conn);
    this.fatal('08006', 'pgward: could not connect to the database server', err.code);
  }

  loginTimerFired(): void {
    if (this.phase === 'closed' || this.conn.authenticated) return;
    this.deps.observer.onError(ErrorCodes.LOGIN_TIMEOUT, this.conn.user ? this.conn : null);
    this.closeOutcome = 'login_timeout';
    this.fatal('08P01', 'pgward: authentication timed out', ErrorCodes.LOGIN_TIMEOUT);
  }

  /** Graceful shutdown: an idle session closes now, a busy one when it next becomes idle. */
  shutdown(): void {
    this.draining = true;
    if (this.phase !== 'ready' || this.isIdle) this.shutdownIdle();
  }

  /** The client's socket closed or failed. */
  clientClosed(outcome: string): void {
    if (this.phase !== 'closed') {
      this.phase = 'closed';
      this.closeOutcome = this.closeOutcome === 'closed' ? outcome : this.closeOutcome;
      this.emit({ kind: 'destroyClient' });
    }
    this.finish();
  }

  upstreamClosed(): void {
    if (this.keyOutlivesClient) {
      this.keyOutlivesClient = false;
      this.requests.releaseKey();
    }
    if (this.phase === 'closed') return;
    const fatal = this.requests.sawFatal;
    if (!fatal && this.phase === 'ready') {
      this.deps.observer.onError(ErrorCodes.UPSTREAM_LOST, this.conn);
      this.toClient(encodeFatal('08006', 'pgward: lost the connection to the database server'));
    }
    this.closeOutcome = fatal ? 'upstream_fatal' : 'upstream_lost';
    this.endClient();
  }

  // ---------------------------------------------------------------- used by the phases

  emit(a: Action): void {
    this.actions.push(a);
  }

  toUpstream(bytes: Buffer): void {
    this.out.push(bytes);
  }

  toClient(bytes: Buffer): void {
    if (this.phase === 'closed') return;
    this.emit(new WriteAction('writeClient', [bytes], bytes.length));
  }

  /** Ends the connection after a FATAL error. */
  fatal(sqlstate: string, message: string, code: ErrorCode | null, detail?: string): void {
    if (this.phase === 'closed') return;
    if (code && this.closeOutcome === 'closed') this.closeOutcome = 'error';
    this.out.clear();
    this.toClient(encodeFatal(sqlstate, message, detail));
    this.endClient();
  }

  /**
   * The server reported a state that contradicts what was judged (policy/tripwires.ts): the
   * session ends at once, with the tripwire's code, an audit record naming the decision that
   * preceded the report, and the error metric.
   */
  serverStateDiverged(trip: Tripwire, preceding: DecisionEvent | null): void {
    if (this.phase === 'closed') return;
    this.log.warn({ code: trip.code, reason: trip.reason }, 'server state diverged');
    this.deps.observer.onError(trip.code, this.conn);
    this.deps.observer.onServerStateDiverged?.({
      code: trip.code,
      reason: trip.reason,
      connection: this.conn,
      preceding,
    });
    this.closeOutcome = 'server_state_diverged';
    this.fatal('42501', `pgward: ${trip.reason}`, trip.code);
  }

  upstreamProtocolError(message: string): void {
    this.log.error({ code: ErrorCodes.UPSTREAM_PROTOCOL, err: message }, 'upstream protocol error');
    this.deps.observer.onError(ErrorCodes.UPSTREAM_PROTOCOL, this.conn);
    this.fatal('08P01', 'pgward: invalid message from the database server', ErrorCodes.UPSTREAM_PROTOCOL);
  }

  endClient(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.emit({ kind: 'endClient' });
    this.finish();
  }

  // ---------------------------------------------------------------- internals

  /**
   * Processes every complete client frame the current phase allows; one upstream write per read.
   * Each frame is decoded once, at the entry of its phase.
   */
  private pump(): void {
    try {
      for (;;) {
        const phase = this.phase;
        if (phase !== 'startup' && phase !== 'auth' && phase !== 'ready') break;
        let m = this.held;
        if (m !== null) {
          if (this.requests.mustHold(m)) break;
          this.held = null;
          this.emit({ kind: 'resumeClient' });
        } else {
          const frame = this.framer.next();
          if (!frame) break;
          this.out.frame = frame;
          this.deps.frameCounts.frontend[frame.type]!++;
          if (phase === 'startup') {
            this.startup.onPacket(frame);
            continue;
          }
          if (phase === 'auth') {
            this.startup.onAuthFrame(frame);
            continue;
          }
          m = this.requests.read(frame);
          if (this.requests.mustHold(m)) {
            this.held = m;
            this.emit({ kind: 'pauseClient' });
            break;
          }
        }
        this.requests.onMessage(m);
      }
      this.out.frame = null;
      this.flushUpstream();
    } catch (err) {
      this.onClientFailure(err);
    }
  }

  private flushUpstream(): void {
    const bytes = this.out.bytes;
    const data = this.out.take();
    if (data !== null) this.emit(new WriteAction('writeUpstream', data, bytes));
  }

  private onClientFailure(err: unknown): void {
    if (err instanceof ProtocolError) {
      this.log.warn({ code: err.code, err: err.message }, 'protocol violation by client');
      this.deps.observer.onError(err.code, this.conn);
      if (err.closeSilently) {
        // PostgreSQL logs this (COMMERROR) and closes without a word.
        this.closeOutcome = 'error';
        this.endClient();
        return;
      }
      this.fatal('08P01', err.message, err.code);
      return;
    }
    const e = err instanceof Error ? err : new Error(String(err));
    this.log.error({ err: e.message, stack: e.stack }, 'session failure');
    this.deps.observer.onError(ErrorCodes.PROTOCOL_MALFORMED, this.conn);
    this.fatal('XX000', 'pgward: internal error', ErrorCodes.PROTOCOL_MALFORMED);
  }

  /** The answers counted by type only (not DECODED) are never even cut out of their chunk. */
  private readonly inspect = (type: number, source: Buffer, start: number, end: number): Buffer | null => {
    if (!DECODED[type]) {
      if (this.phase === 'auth' || this.phase === 'connecting') return null;
      return this.requests.onAnswer(type);
    }
    const startup = this.phase === 'auth' || this.phase === 'connecting';
    // The two answers of every cycle are read in place, without a view or a decoded message:
    // ReadyForQuery's status byte, and a CommandComplete whose tag nothing reads (checked whole).
    if (!startup && type === BackendType.ReadyForQuery)
      return this.requests.onReadyForQuery(readReadyForQueryAt(source, start, end), source, start, end);
    if (!startup && type === BackendType.CommandComplete && !this.requests.pipeline.wantsTag()) {
      checkCommandCompleteAt(source, start, end);
      return this.requests.onAnswer(type);
    }
    const msg = source.subarray(start, end);
    const m = readBackendMessage(msg, { protocolMinor: this.startup.protocolMinor });
    if (startup) return this.startup.onBackend(type, msg, m);
    return this.requests.onBackend(type, msg, m);
  };

  private shutdownIdle(): void {
    this.closeOutcome = 'shutdown';
    this.toClient(encodeFatal('57P01', 'terminating connection due to administrator command'));
    this.endClient();
  }

  /** The cancel key is kept past the client's departure (see finish). */
  private keyOutlivesClient = false;

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.emit({ kind: 'stopLoginTimer' });
    this.startup.uncount();
    // A client that leaves with a query still running (pgx: CancelRequest, then Terminate and
    // close, at once) may have its cancel arrive after it left: directly, PostgreSQL would still
    // honour it. The key stays valid until the upstream connection is gone.
    if (this.startup.upstream !== null && this.requests.outstanding > 0) this.keyOutlivesClient = true;
    else this.requests.releaseKey();
    if (this.startup.upstream !== null) {
      // What was judged and allowed before the client left still goes (e.g. Query + Terminate).
      this.flushUpstream();
      // A backend busy with a query does not read its socket until the query ends, and by default
      // does not notice a vanished client: cancel what is still running, then terminate.
      // (A client that said Terminate after its last request meant that request to run.)
      const authenticated = this.conn.authenticated;
      this.emit({
        kind: 'closeUpstream',
        terminate: authenticated,
        cancelFirst:
          authenticated && this.closeOutcome !== 'client_terminated' && this.requests.outstanding > 0,
      });
    }
    this.deps.observer.onConnectionClosed(this.closeOutcome, this.conn);
  }
}

/**
 * What goes upstream from one client read. Frames forwarded unchanged are views into the chunk
 * they arrived in; adjacent views of one buffer are merged as they come (no list of frames to
 * merge later), and a run that covers the whole chunk read is written as that chunk: a read whose
 * frames are all allowed goes upstream as it came, in one write.
 */
export class UpstreamRuns {
  private done: Buffer[] = [];
  /**
   * The first view of the run being extended, its ArrayBuffer and offset there (read once per
   * run), and where the run ends in it. Node reads a Buffer's `buffer` and `byteOffset` through
   * getters of 25–40 ns each: a frame's come from the framer (`frame`), the chunk's are read once.
   */
  private first: Buffer | null = null;
  private ab: ArrayBufferLike | null = null;
  private firstAt = 0;
  private end = 0;
  bytes = 0;
  /** The client read being processed (null: none), and where it lies (read when first needed). */
  private chunk: Buffer | null = null;
  private chunkAb: ArrayBufferLike | null = null;
  private chunkAt = 0;
  /** The frame being processed (null: none): a push of its bytes knows where they lie. */
  frame: FrontendFrame | null = null;

  setChunk(c: Buffer | null): void {
    this.chunk = c;
    this.chunkAb = null;
  }

  push(b: Buffer): void {
    this.bytes += b.length;
    const fr = this.frame;
    let ab: ArrayBufferLike;
    let at: number;
    if (fr !== null && fr.bytes === b && fr.ab !== null && fr.ab !== undefined) {
      ab = fr.ab;
      at = fr.at as number;
    } else {
      ab = b.buffer;
      at = b.byteOffset;
    }
    if (this.first !== null) {
      if (at === this.end && ab === this.ab) {
        this.end += b.length;
        return;
      }
      this.done.push(this.close(this.first));
    }
    this.first = b;
    this.ab = ab;
    this.firstAt = at;
    this.end = at + b.length;
  }

  /** The buffers to write, in order (null: nothing), and a fresh start. */
  take(): Buffer[] | null {
    const f = this.first;
    if (f === null) return null;
    const out = this.done;
    out.push(this.close(f));
    this.clear();
    return out;
  }

  clear(): void {
    this.done = [];
    this.first = null;
    this.ab = null;
    this.bytes = 0;
  }

  private close(f: Buffer): Buffer {
    const len = this.end - this.firstAt;
    if (len === f.length) return f;
    const c = this.chunk;
    const ab = this.ab as ArrayBufferLike;
    if (c !== null && c.length === len) {
      if (this.chunkAb === null) {
        this.chunkAb = c.buffer;
        this.chunkAt = c.byteOffset;
      }
      if (this.chunkAt === this.firstAt && this.chunkAb === ab) return c;
    }
    return bufferView(ab, this.firstAt, len);
  }
}

/** `bufs` with adjacent views of one buffer merged (UpstreamRuns). */
export function coalesce(bufs: Buffer[]): Buffer[] {
  const runs = new UpstreamRuns();
  for (const b of bufs) runs.push(b);
  return runs.take() ?? [];
}
