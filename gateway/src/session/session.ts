/**
 * One client connection: startup (TLS, SSLRequest/GSSENCRequest/CancelRequest), the startup
 * policy decision, authentication passed through to the upstream, then every frame judged before
 * its original bytes go upstream. Backend traffic is scanned in place; only the messages that
 * change session state (Authentication, BackendKeyData, ReadyForQuery, ErrorResponse, COPY
 * responses, NegotiateProtocolVersion) are looked at.
 * https://www.postgresql.org/docs/current/protocol-flow.html
 */
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ErrorCodes, PgwardError, type ErrorCode } from '../errors';
import {
  AuthCode,
  BackendScanner,
  BackendType,
  SESSION_INSPECTED_BACKEND_TYPES,
  typeTable,
  FrontendFramer,
  FrontendType,
  MAX_AUTH_MESSAGE_BYTES,
  ProtocolError,
  encodeAuthenticationSASL,
  encodeBackendKeyData,
  encodeCancelRequest,
  encodeStartupMessage,
  encodeTerminate,
  parseStartupOptions,
  readAuthentication,
  readBackendKeyData,
  readCopyFail,
  readDescribe,
  readEmpty,
  readErrorFields,
  readExecute,
  readNegotiateProtocolVersion,
  readReadyForQuery,
  readSASLInitialResponse,
  readStartupPacket,
  scramChannelBindingFlag,
  type StartupMessage,
} from '../protocol';
import type { ConnectionInfo, Decision } from '../policy/types';
import {
  encodeFatal,
  encodePolicyError,
  encodeStartupDenied,
  newSentinelToken,
  sentinelParse,
  sentinelQuery,
} from '../enforcement/deny';
import { connectUpstream } from './upstream';
import { FrameJudge, denyWith, type Judgement } from '../policy/frame-judge';
import type { SessionDeps } from './types';

type State = 'startup' | 'tls' | 'connecting' | 'auth' | 'ready' | 'closed';

/** Backend message types the session inspects; all others pass through unread. */
const INSPECT = typeTable(SESSION_INSPECTED_BACKEND_TYPES);

/** What a client may send during COPY FROM STDIN. */
const COPY_IN_FRAMES = typeTable([
  FrontendType.CopyData,
  FrontendType.CopyDone,
  FrontendType.CopyFail,
  FrontendType.Flush,
  FrontendType.Sync,
  FrontendType.Terminate,
]);

/**
 * An ErrorResponse above the inspection cap (PostgreSQL quotes whole values in some errors) is
 * forwarded unread: it cannot be the rewrite target of a denial, whose errors are small.
 */
const PASS_LARGE = typeTable([BackendType.ErrorResponse]);

let sessionCounter = 0;
const sessionPrefix = randomBytes(4).toString('hex');

export class Session {
  readonly id: string;
  log: Logger;
  private state: State = 'startup';
  private client: net.Socket | tls.TLSSocket;
  private upstream: net.Socket | tls.TLSSocket | null = null;
  private upstreamTls = false;
  /** Both hops are TLS with the same server certificate: SCRAM-SHA-256-PLUS can pass through. */
  private channelBindingHonoured = false;
  private readonly framer: FrontendFramer;
  private readonly scanner: BackendScanner;
  private conn: ConnectionInfo;
  private counted = false; // in the unauthenticated count
  private loginTimer: NodeJS.Timeout | null = null;
  private upstreamKey: { processId: number; secretKey: Buffer } | null = null;
  private issuedPid: number | null = null;
  private protocolMinor = 0;
  /** Sentinel tokens whose ErrorResponse is to be rewritten into the policy error. */
  private readonly pending = new Map<string, { decision: Decision; sync: number }>();
  private readonly judge: FrameJudge;
  private copyIn = false;
  /** The server offered SASL: the client's next 'p' is a SASLInitialResponse. */
  private saslStarting = false;
  private sawFatal = false;
  private draining = false;
  private closeOutcome = 'closed';
  private clientPaused = false;
  private upstreamPaused = false;

  constructor(
    socket: net.Socket,
    private readonly deps: SessionDeps,
  ) {
    sessionCounter = (sessionCounter + 1) >>> 0;
    this.id = `${sessionPrefix}-${sessionCounter.toString(36)}`;
    this.client = socket;
    this.framer = new FrontendFramer(deps.limits.maxMessageBytes);
    this.scanner = new BackendScanner(INSPECT, deps.frameCounts.backend, PASS_LARGE);
    this.judge = new FrameJudge(deps.engine, deps.classify, { maxSqlBytes: deps.limits.maxSqlBytesInInput });
    this.conn = {
      id: this.id,
      client_addr: normalizeAddr(socket.remoteAddress),
      client_port: socket.remotePort ?? 0,
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
    this.log = deps.logger.child({
      conn: this.id,
      client: `${this.conn.client_addr}:${this.conn.client_port}`,
    });
    socket.setNoDelay(true);
    deps.unauthenticated.count++;
    this.counted = true;
    deps.observer.onConnectionOpened();
    this.loginTimer = setTimeout(() => this.onLoginTimeout(), deps.limits.loginTimeoutMs);
    this.loginTimer.unref();
    this.attachClient(socket);
  }

  get connection(): ConnectionInfo {
    return this.conn;
  }

  get isIdle(): boolean {
    return (
      this.state === 'ready' &&
      this.conn.transaction_status === 'I' &&
      this.syncsSent === this.readyReceived &&
      this.pending.size === 0 &&
      !this.copyIn
    );
  }

  // ---------------------------------------------------------------- client side

  private attachClient(s: net.Socket | tls.TLSSocket): void {
    s.on('data', (chunk: Buffer) => this.onClientData(chunk));
    s.on('error', (err) => {
      this.log.debug({ err: err.message }, 'client socket error');
      this.close('client_error');
    });
    s.on('close', () => this.close(this.closeOutcome === 'closed' ? 'client_closed' : this.closeOutcome));
    s.on('drain', () => {
      if (this.upstreamPaused && this.upstream) {
        this.upstreamPaused = false;
        this.upstream.resume();
      }
    });
  }

  private onClientData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.framer.push(chunk);
    this.pump();
  }

  /** Processes every complete client frame the current state allows. */
  private pump(): void {
    try {
      while (this.state !== 'closed' && this.state !== 'connecting' && this.state !== 'tls') {
        const frame = this.framer.next();
        if (!frame) break;
        this.deps.frameCounts.frontend[frame.type]!++;
        if (this.state === 'startup') this.onStartupPacket(frame.bytes);
        else if (this.state === 'auth') this.onAuthFrame(frame.type, frame.bytes);
        else this.onReadyFrame(frame.type, frame.bytes);
      }
      this.flushUpstream();
    } catch (err) {
      this.onClientFailure(err);
    }
  }

  private onClientFailure(err: unknown): void {
    if (err instanceof ProtocolError) {
      this.log.warn({ code: err.code, err: err.message }, 'protocol violation by client');
      this.deps.observer.onError(err.code, this.conn);
      this.fatal('08P01', err.message, err.code);
      return;
    }
    const e = err instanceof Error ? err : new Error(String(err));
    this.log.error({ err: e.message, stack: e.stack }, 'session failure');
    this.deps.observer.onError(ErrorCodes.PROTOCOL_MALFORMED, this.conn);
    this.fatal('XX000', 'pgward: internal error', ErrorCodes.PROTOCOL_MALFORMED);
  }

  private onStartupPacket(packet: Buffer): void {
    const p = readStartupPacket(packet);
    switch (p.name) {
      case 'SSLRequest':
        // Bytes after SSLRequest and before the handshake are never protocol (CVE-2021-23214).
        if (this.framer.buffered > 0) {
          throw new ProtocolError(
            ErrorCodes.PROTOCOL_DATA_AFTER_SSLREQUEST,
            'received unencrypted data after SSL request',
          );
        }
        if (this.conn.tls.enabled)
          throw new ProtocolError(ErrorCodes.PROTOCOL_STARTUP_INVALID, 'SSLRequest after TLS is established');
        if (this.deps.clientTls.context) this.startClientTls();
        else this.client.write('N');
        return;
      case 'GSSENCRequest':
        if (this.framer.buffered > 0) {
          throw new ProtocolError(
            ErrorCodes.PROTOCOL_DATA_AFTER_SSLREQUEST,
            'received unencrypted data after GSSENC request',
          );
        }
        this.client.write('N');
        return;
      case 'CancelRequest':
        this.onCancelRequest(p.processId, p.secretKey);
        return;
      case 'StartupMessage':
        this.onStartupMessage(p, packet);
        return;
    }
  }

  private startClientTls(): void {
    const raw = this.client as net.Socket;
    this.state = 'tls';
    raw.removeAllListeners('data');
    raw.removeAllListeners('error');
    raw.removeAllListeners('close');
    raw.removeAllListeners('drain');
    raw.write('S');
    const opts: tls.TLSSocketOptions = {
      isServer: true,
      secureContext: this.deps.clientTls.context as tls.SecureContext,
      requestCert: this.deps.clientTls.requestCert,
      rejectUnauthorized: false,
    };
    const ts = new tls.TLSSocket(raw, opts);
    this.client = ts;
    raw.on('error', () => this.close('client_error'));
    ts.once('secure', () => {
      const cert = ts.getPeerCertificate();
      const authorized = ts.authorized;
      const subject = authorized && cert && cert.subject ? formatSubject(cert.subject) : null;
      this.conn.tls = Object.freeze({
        enabled: true,
        version: ts.getProtocol() ?? null,
        cipher: ts.getCipher()?.name ?? null,
        client_cert_subject: subject,
      });
      this.state = 'startup';
      this.pump();
    });
    this.attachClient(ts);
  }

  private onCancelRequest(processId: number, secretKey: Buffer): void {
    const target = this.deps.cancel.lookup(processId, secretKey);
    if (target) void target.cancelUpstream();
    else this.log.info({ pid: processId }, 'CancelRequest with a key pgward did not issue: ignored');
    // PostgreSQL closes the connection without a reply either way.
    this.closeOutcome = 'cancel_request';
    this.endClient();
  }

  private onStartupMessage(m: StartupMessage, packet: Buffer): void {
    if (this.deps.clientTls.require && !this.conn.tls.enabled) {
      this.deps.observer.onError(ErrorCodes.TLS_REQUIRED, this.conn);
      this.closeOutcome = 'tls_required';
      this.fatal(
        '28000',
        'pgward: TLS is required; connect with sslmode=require or stronger',
        ErrorCodes.TLS_REQUIRED,
      );
      return;
    }
    const params: Record<string, string> = {};
    for (const [k, v] of m.parameters) params[k] = v;
    this.protocolMinor = m.protocolVersion & 0xffff;
    const c = this.conn;
    c.user = params.user ?? '';
    c.database = params.database ?? c.user;
    c.application_name = params.application_name ?? null;
    c.parameters = Object.freeze(params);
    c.options = Object.freeze(params.options ? parseStartupOptions(params.options) : {});
    c.protocol_version = `3.${this.protocolMinor}`;
    this.log = this.log.child({ user: c.user, db: c.database });
    if (this.deps.observer.onFrame) this.deps.observer.onFrame('frontend', packet, c);

    const decision = this.decide(this.judge.startup(c), packet);
    if (!decision.allow) {
      this.closeOutcome = 'startup_denied';
      this.log.info(
        { decision: decision.id, reasons: decision.reasons, code: decision.error_code },
        'startup denied',
      );
      if (decision.error_code === ErrorCodes.POLICY_NO_BUNDLE) {
        this.writeClient(
          encodeFatal('57P03', 'pgward: no policy bundle is loaded; connections are refused until one is'),
        );
      } else {
        this.writeClient(encodeStartupDenied(decision));
      }
      this.endClient();
      return;
    }
    // Parameters the decision pins override whatever the client sent (direct startup parameters
    // are applied after `options` switches, so they win over `-c` settings too).
    const forward = new Map(m.parameters);
    for (const [k, v] of Object.entries(decision.session_parameters)) {
      for (const key of [...forward.keys()]) if (key.toLowerCase() === k) forward.delete(key);
      forward.set(k, v);
    }
    this.framer.setStartupPhase(false);
    this.framer.setMaxMessageBytes(Math.min(this.deps.limits.maxMessageBytes, MAX_AUTH_MESSAGE_BYTES));
    this.state = 'connecting';
    this.client.pause();
    connectUpstream(this.deps.upstream).then(
      (up) => this.onUpstreamConnected(up.socket, up.tls, encodeStartupMessage(m.protocolVersion, forward)),
      (err: unknown) => {
        const e =
          err instanceof PgwardError ? err : new PgwardError(ErrorCodes.UPSTREAM_CONNECT, String(err));
        this.log.error({ code: e.code, err: e.message }, 'cannot connect upstream');
        this.deps.observer.onUpstreamConnectError();
        this.deps.observer.onError(e.code, this.conn);
        this.fatal('08006', 'pgward: could not connect to the database server', e.code);
      },
    );
  }

  private onUpstreamConnected(socket: net.Socket | tls.TLSSocket, isTls: boolean, startup: Buffer): void {
    if (this.state === 'closed') {
      socket.destroy();
      return;
    }
    this.upstream = socket;
    this.upstreamTls = isTls;
    const own = this.deps.clientTls.certDer;
    this.channelBindingHonoured =
      isTls &&
      this.conn.tls.enabled &&
      own !== null &&
      (socket as tls.TLSSocket).getPeerCertificate().raw?.equals(own) === true;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    socket.on('error', (err) => {
      this.log.warn({ err: err.message }, 'upstream socket error');
    });
    socket.on('close', () => this.onUpstreamClosed());
    socket.on('drain', () => {
      if (this.clientPaused) {
        this.clientPaused = false;
        this.client.resume();
      }
    });
    socket.resume();
    socket.write(startup);
    this.state = 'auth';
    this.client.resume();
    this.pump();
  }

  /** Between StartupMessage and AuthenticationOk only the authentication exchange may flow. */
  private onAuthFrame(type: number, bytes: Buffer): void {
    if (type === FrontendType.Terminate) {
      this.closeOutcome = 'client_terminated';
      this.endClient();
      return;
    }
    if (type !== FrontendType.PasswordMessage) {
      throw new ProtocolError(
        ErrorCodes.PROTOCOL_UNEXPECTED_MESSAGE,
        `expected password response, got message type ${type}`,
      );
    }
    if (this.saslStarting) {
      this.saslStarting = false;
      const flag = scramChannelBindingFlag(readSASLInitialResponse(bytes).data);
      // A client that supports channel binding, told the server does not, sends 'y'; a TLS
      // upstream then (rightly) fails the exchange as a downgrade. Say why, clearly, instead.
      if (flag === 'y' && this.upstreamTls && !this.channelBindingHonoured) {
        this.deps.observer.onError(ErrorCodes.AUTH_CHANNEL_BINDING, this.conn);
        this.fatal(
          '28000',
          'pgward: SCRAM channel binding cannot pass through a TLS-terminating gateway',
          ErrorCodes.AUTH_CHANNEL_BINDING,
          "Connect with channel_binding=disable, or give pgward the database server's own certificate and key (tls.cert_file, tls.key_file) so that the binding holds end to end.",
        );
        return;
      }
      if (flag === 'p' && !this.channelBindingHonoured) {
        throw new ProtocolError(
          ErrorCodes.PROTOCOL_UNEXPECTED_MESSAGE,
          'channel binding requested but not offered',
        );
      }
    }
    this.sendUpstream(bytes);
  }

  private onReadyFrame(type: number, bytes: Buffer): void {
    if (this.deps.observer.onFrame) this.deps.observer.onFrame('frontend', bytes, this.conn);
    if (this.copyIn) {
      // COPY FROM STDIN: only the copy sub-protocol (and Flush/Sync, which the server ignores there).
      if (!COPY_IN_FRAMES[type]) {
        throw new ProtocolError(
          ErrorCodes.PROTOCOL_UNEXPECTED_MESSAGE,
          `unexpected message type ${type} during COPY from stdin`,
        );
      }
      if (type === FrontendType.CopyDone || type === FrontendType.CopyFail) this.copyIn = false;
    }
    const j = this.judge.judge(type, bytes, this.conn);
    if (j) {
      const d = this.decide(j, bytes);
      this.judge.settle(j, d.allow);
      if (d.allow) this.sendUpstream(bytes);
      else if (j.type === 'Parse')
        this.sendSentinel(d, (token) => sentinelParse(token, j.statementName ?? ''));
      else if (j.type === 'Bind') this.sendSentinel(d, (token) => sentinelParse(token, token));
      else this.sendSentinel(d, sentinelQuery);
      return;
    }
    // Messages that are not judged are still decoded: bytes pgward did not understand never go
    // upstream (a malformed body is a protocol violation, FATAL 08P01).
    switch (type) {
      case FrontendType.Execute:
        readExecute(bytes);
        break;
      case FrontendType.Describe:
        readDescribe(bytes);
        break;
      case FrontendType.Sync:
        readEmpty(bytes, 'Sync');
        break;
      case FrontendType.Flush:
        readEmpty(bytes, 'Flush');
        break;
      case FrontendType.CopyDone:
        readEmpty(bytes, 'CopyDone');
        break;
      case FrontendType.CopyFail:
        readCopyFail(bytes);
        break;
      case FrontendType.Close: // decoded by the judge
      case FrontendType.CopyData: // opaque by definition
        break;
      case FrontendType.Terminate:
        // finish() sends the upstream its Terminate.
        readEmpty(bytes, 'Terminate');
        this.closeOutcome = 'client_terminated';
        this.endClient();
        return;
      default:
        throw new ProtocolError(
          ErrorCodes.PROTOCOL_UNEXPECTED_MESSAGE,
          `unexpected message type ${type} after authentication`,
        );
    }
    this.sendUpstream(bytes);
  }

  /** Evaluates, records, and applies the audit fail-closed rule. */
  private decide(j: Judgement, frame: Buffer): Decision {
    const input = j.input;
    let d = j.decision;
    const recorded = this.deps.observer.onDecision({
      decision: d,
      input,
      frame,
      connection: this.conn,
      original: j.original,
    });
    if (d.allow && d.alerts.length > 0 && !recorded && this.deps.auditFailClosed) {
      d = denyWith(d, ErrorCodes.AUDIT_SINK, 'the audit log cannot record this statement');
      this.deps.observer.onDecision({
        decision: d,
        input,
        frame,
        connection: this.conn,
        original: j.original,
      });
    }
    if (d.alerts.length > 0) this.log.warn({ decision: d.id, alerts: d.alerts }, 'policy alert');
    if (!d.allow)
      this.log.info(
        { decision: d.id, reasons: d.reasons, code: d.error_code, type: input.message.type },
        'denied',
      );
    return d;
  }

  private sendSentinel(d: Decision, make: (token: string) => Buffer): void {
    const token = newSentinelToken();
    this.pending.set(token, { decision: d, sync: this.syncsSent });
    this.sendUpstream(make(token));
  }

  /** Messages that end a request cycle with ReadyForQuery: Sync, Query, FunctionCall. */
  private syncsSent = 0;
  private readyReceived = 0;
  /** The type bytes of the cycle-ending messages sent and not answered yet, oldest first. */
  private cycles: number[] = [];

  private settleSentinels(): void {
    for (const [token, p] of this.pending) if (p.sync < this.readyReceived) this.pending.delete(token);
  }

  // ---------------------------------------------------------------- upstream side

  private out: Buffer[] = [];
  private outBytes = 0;

  private sendUpstream(bytes: Buffer): void {
    const t = bytes[0] as number;
    // The server ignores Sync during COPY FROM STDIN: it ends no cycle there.
    if (
      (t === FrontendType.Sync && !this.copyIn) ||
      t === FrontendType.Query ||
      t === FrontendType.FunctionCall
    ) {
      this.syncsSent++;
      this.cycles.push(t);
    }
    this.out.push(bytes);
    this.outBytes += bytes.length;
  }

  /** One write per client read: the frames judged from one chunk go upstream together. */
  private flushUpstream(): void {
    if (this.out.length === 0 || !this.upstream || this.upstream.writableEnded) return;
    const up = this.upstream;
    const bufs = this.out;
    this.deps.observer.onBytes('client_to_upstream', this.outBytes);
    this.out = [];
    this.outBytes = 0;
    let ok = true;
    if (bufs.length === 1) ok = up.write(bufs[0] as Buffer);
    else {
      const merged = coalesce(bufs);
      if (merged.length === 1) ok = up.write(merged[0] as Buffer);
      else {
        up.cork();
        for (const b of merged) ok = up.write(b);
        up.uncork();
      }
    }
    if (!ok && !this.clientPaused) {
      this.clientPaused = true;
      this.client.pause();
    }
  }

  private onUpstreamData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    let parts: Buffer[];
    try {
      parts = this.scanner.push(chunk, this.inspectBackend);
    } catch (err) {
      const e = err instanceof PgwardError ? err : new PgwardError(ErrorCodes.UPSTREAM_PROTOCOL, String(err));
      this.log.error({ code: e.code, err: e.message }, 'upstream protocol error');
      this.deps.observer.onError(ErrorCodes.UPSTREAM_PROTOCOL, this.conn);
      this.fatal('08P01', 'pgward: invalid message from the database server', ErrorCodes.UPSTREAM_PROTOCOL);
      return;
    }
    if ((this.state as State) === 'closed') return;
    let ok = true;
    let n = 0;
    if (parts.length === 1) {
      n = (parts[0] as Buffer).length;
      ok = this.client.write(parts[0] as Buffer);
    } else if (parts.length > 1) {
      this.client.cork();
      for (const p of parts) {
        if (p.length === 0) continue;
        n += p.length;
        ok = this.client.write(p);
      }
      this.client.uncork();
    }
    this.deps.observer.onBytes('upstream_to_client', n);
    if (!ok && this.upstream && !this.upstreamPaused) {
      this.upstreamPaused = true;
      this.upstream.pause();
    }
    if (this.draining && this.isIdle) this.shutdownIdle();
  }

  private readonly inspectBackend = (type: number, msg: Buffer): Buffer | null => {
    switch (type) {
      case BackendType.ReadyForQuery: {
        this.conn.transaction_status = readReadyForQuery(msg);
        // A COPY that failed on the server ends with ReadyForQuery; CopyData sent after it is
        // ignored by the server, and the next Query is legitimate.
        this.copyIn = false;
        if (this.deps.observer.onFrame) this.deps.observer.onFrame('backend', msg, this.conn);
        if (this.state === 'auth') {
          this.onAuthenticated();
          return null;
        }
        this.readyReceived++;
        this.cycles.shift();
        // A sentinel that the server skipped (an earlier error in the same pipeline) never gets
        // its error; every sentinel sent before this ReadyForQuery's Sync is settled now.
        if (this.pending.size > 0) this.settleSentinels();
        return null;
      }
      case BackendType.ErrorResponse: {
        const f = readErrorFields(msg);
        if (this.deps.observer.onFrame) this.deps.observer.onFrame('backend', msg, this.conn);
        if (f.severity === 'FATAL' || f.severity === 'PANIC') this.sawFatal = true;
        if (this.pending.size > 0) {
          for (const [token, p] of this.pending) {
            if (f.message.includes(token)) {
              this.pending.delete(token);
              return encodePolicyError(p.decision);
            }
          }
        }
        return null;
      }
      case BackendType.Authentication: {
        const a = readAuthentication(msg);
        if (a.name === 'AuthenticationSASL') {
          this.saslStarting = true;
          // The binding (a hash of the server certificate) holds end to end only when the client
          // talks TLS to pgward and pgward presents the upstream's own certificate; otherwise
          // never offer SCRAM-SHA-256-PLUS to the client.
          if (this.channelBindingHonoured) return null;
          const mechs = a.mechanisms.filter((m) => !m.endsWith('-PLUS'));
          if (mechs.length === 0) {
            this.deps.observer.onError(ErrorCodes.AUTH_CHANNEL_BINDING, this.conn);
            this.fatal(
              '28000',
              'pgward: the server offers only channel-bound SASL mechanisms',
              ErrorCodes.AUTH_CHANNEL_BINDING,
            );
            return Buffer.alloc(0);
          }
          return mechs.length === a.mechanisms.length ? null : encodeAuthenticationSASL(mechs);
        }
        if (a.name === 'AuthenticationOther' && a.code !== AuthCode.GSSContinue) {
          // GSS/SSPI/Kerberos cannot be relayed meaningfully by a TLS-terminating gateway.
          if (a.code === AuthCode.GSS || a.code === AuthCode.SSPI || a.code === AuthCode.KerberosV5) {
            this.fatal(
              '28000',
              'pgward: GSSAPI/SSPI authentication is not supported through pgward',
              ErrorCodes.PROTOCOL_UNEXPECTED_MESSAGE,
            );
            return Buffer.alloc(0);
          }
        }
        return null;
      }
      case BackendType.BackendKeyData: {
        const k = readBackendKeyData(msg);
        this.upstreamKey = { processId: k.processId, secretKey: k.secretKey };
        const mine = this.deps.cancel.issue(this, this.protocolMinor >= 2 ? 32 : 4);
        this.issuedPid = mine.processId;
        return encodeBackendKeyData(mine.processId, mine.secretKey);
      }
      case BackendType.CopyInResponse:
      case BackendType.CopyBothResponse: {
        this.copyIn = true;
        // Every Sync not answered yet was sent after the Execute that started this COPY (a libpq
        // pipeline sends one at once) and reaches the server in copy mode, which ignores it: the
        // cycle ends with the Sync after CopyDone/CopyFail instead.
        const kept = this.cycles.filter((c) => c !== FrontendType.Sync);
        this.syncsSent -= this.cycles.length - kept.length;
        this.cycles = kept;
        return null;
      }
      case BackendType.NegotiateProtocolVersion: {
        const v = readNegotiateProtocolVersion(msg);
        this.protocolMinor = v.newestMinor;
        this.conn.protocol_version = `3.${v.newestMinor}`;
        return null;
      }
      default:
        return null;
    }
  };

  private onAuthenticated(): void {
    this.state = 'ready';
    this.framer.setMaxMessageBytes(this.deps.limits.maxMessageBytes);
    this.conn.authenticated = true;
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.loginTimer = null;
    this.uncount();
    this.deps.observer.onAuthenticated(this.conn);
    this.log.debug('authenticated');
  }

  /**
   * Sends a CancelRequest for this session's backend. Resolves true once the server has closed the
   * cancel connection (it does so after acting on the request), false if it could not be delivered.
   */
  cancelUpstream(): Promise<boolean> {
    const key = this.upstreamKey;
    if (!key) return Promise.resolve(false);
    return new Promise((resolve) => {
      let sent = false;
      const s = net.connect({ host: this.deps.upstream.host, port: this.deps.upstream.port });
      s.on('connect', () => s.end(encodeCancelRequest(key.processId, key.secretKey), () => (sent = true)));
      s.on('error', (err) => this.log.warn({ err: err.message }, 'cancel connection failed'));
      s.on('close', (hadError) => resolve(sent && !hadError));
      s.resume();
      s.setTimeout(this.deps.upstream.connectTimeoutMs, () => s.destroy());
      this.log.info('cancel request forwarded');
    });
  }

  private onUpstreamClosed(): void {
    if (this.state === 'closed') return;
    if (!this.sawFatal && this.state === 'ready') {
      this.deps.observer.onError(ErrorCodes.UPSTREAM_LOST, this.conn);
      this.writeClient(encodeFatal('08006', 'pgward: lost the connection to the database server'));
    }
    this.closeOutcome = this.sawFatal ? 'upstream_fatal' : 'upstream_lost';
    this.endClient();
  }

  // ---------------------------------------------------------------- lifecycle

  private onLoginTimeout(): void {
    if (this.state === 'ready' || this.state === 'closed') return;
    this.deps.observer.onError(ErrorCodes.LOGIN_TIMEOUT, this.conn.user ? this.conn : null);
    this.closeOutcome = 'login_timeout';
    this.fatal('08P01', 'pgward: authentication timed out', ErrorCodes.LOGIN_TIMEOUT);
  }

  /** Graceful shutdown: idle sessions close now, busy ones when they next become idle. */
  drain(): void {
    this.draining = true;
    if (this.state !== 'ready' || this.isIdle) this.shutdownIdle();
  }

  private shutdownIdle(): void {
    this.closeOutcome = 'shutdown';
    this.writeClient(encodeFatal('57P01', 'terminating connection due to administrator command'));
    this.endClient();
  }

  /** Ends the connection after a FATAL error. */
  fatal(sqlstate: string, message: string, code: ErrorCode | null, detail?: string): void {
    if (this.state === 'closed') return;
    if (code) this.closeOutcome = this.closeOutcome === 'closed' ? 'error' : this.closeOutcome;
    this.out = [];
    this.writeClient(encodeFatal(sqlstate, message, detail));
    this.endClient();
  }

  private writeClient(b: Buffer): void {
    if (this.state === 'closed' || this.client.destroyed) return;
    this.client.write(b);
  }

  private endClient(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.client.end();
    // Do not wait for a client that never reads its FATAL.
    setTimeout(() => this.client.destroy(), 2000).unref();
    this.finish();
  }

  close(outcome: string): void {
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.closeOutcome = outcome;
      this.client.destroy();
    }
    this.finish();
  }

  private finished = false;
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.uncount();
    if (this.issuedPid !== null) this.deps.cancel.release(this.issuedPid);
    const up = this.upstream;
    if (up && !up.destroyed) {
      // What was judged and allowed before the client left still goes (e.g. Query + Terminate).
      this.flushUpstream();
      // A backend busy with a query does not read its socket until the query ends, and by default
      // does not notice a vanished client: cancel what is still running, then terminate.
      // (A client that said Terminate after its last request meant that request to run.)
      if (
        this.conn.authenticated &&
        this.closeOutcome !== 'client_terminated' &&
        this.syncsSent > this.readyReceived
      ) {
        void this.cancelUpstream();
      }
      if (this.conn.authenticated) up.end(encodeTerminate());
      else up.destroy();
      setTimeout(() => up.destroy(), 2000).unref();
    }
    this.deps.observer.onConnectionClosed(this.closeOutcome, this.conn);
    this.deps.onClose(this);
  }

  private uncount(): void {
    if (this.counted) {
      this.counted = false;
      this.deps.unauthenticated.count--;
    }
  }
}

/**
 * Frames forwarded unchanged are views into the chunk they arrived in; adjacent views of the same
 * chunk become one buffer again, so a pipeline read in one chunk goes upstream in one write.
 */
export function coalesce(bufs: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let start = bufs[0] as Buffer;
  let end = start.byteOffset + start.length;
  const flush = (): void => {
    const len = end - start.byteOffset;
    out.push(len === start.length ? start : Buffer.from(start.buffer, start.byteOffset, len));
  };
  for (let i = 1; i < bufs.length; i++) {
    const b = bufs[i] as Buffer;
    if (b.buffer === start.buffer && b.byteOffset === end) {
      end += b.length;
    } else {
      flush();
      start = b;
      end = b.byteOffset + b.length;
    }
  }
  flush();
  return out;
}

function normalizeAddr(a: string | undefined): string {
  if (!a) return '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

function formatSubject(s: tls.Certificate): string {
  return Object.entries(s)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(',');
}
