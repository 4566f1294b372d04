/**
 * The startup phase, as PostgreSQL runs it (postmaster.c ProcessStartupPacket, then the backend's
 * authentication): SSLRequest / GSSENCRequest / CancelRequest, the StartupMessage (names cut to
 * NAMEDATALEN-1 bytes, a byte cut as in PostgreSQL 15, before any policy sees them), refusals for full limits once encryption is
 * settled, the startup decision, then the authentication exchange relayed to the upstream until
 * AuthenticationOk (where the login timeout and the unauthenticated count end) and the first
 * ReadyForQuery.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
import { ErrorCodes } from '../errors';
import {
  FrontendType,
  MAX_AUTH_MESSAGE_BYTES,
  ProtocolError,
  encodeAuthenticationSASL,
  encodeStartupMessage,
  isAuthenticationMessage,
  parseStartupOptions,
  readFrontendMessage,
  scramChannelBindingFlag,
  startupIdentity,
  type AuthenticationMessage,
  type AuthenticationResponseName,
  type BackendMessage,
  type FrontendFrame,
  type SASLInitialResponse,
  type StartupMessage,
} from '../protocol';
import { encodeFatal, encodeStartupDenied } from '../enforcement/deny';
import { lexicalStartupCheck } from '../sql/lexical';
import { emptyServerState } from '../policy/tripwires';
import type { Refusal, UpstreamInfo } from './actions';
import type { SessionCore } from './core';

export class StartupPhase {
  /** Set once the upstream is connected. */
  upstream: UpstreamInfo | null = null;
  protocolMinor = 0;
  /**
   * What the client's next 'p' message is, from the server's last Authentication request
   * (AuthenticationSASL → SASLInitialResponse, SASLContinue → SASLResponse, else PasswordMessage).
   */
  private expecting: AuthenticationResponseName = 'PasswordMessage';
  /** In the unauthenticated count. */
  private counted = false;

  constructor(
    private readonly core: SessionCore,
    private readonly refusal: Refusal | null,
  ) {
    if (refusal === null) {
      core.deps.unauthenticated.count++;
      this.counted = true;
    }
  }

  uncount(): void {
    if (!this.counted) return;
    this.counted = false;
    this.core.deps.unauthenticated.count--;
  }

  /** A startup-phase packet, decoded here once. */
  onPacket(frame: FrontendFrame): void {
    const core = this.core;
    const p = readFrontendMessage(frame);
    switch (p.name) {
      case 'SSLRequest':
      case 'GSSENCRequest':
        // Bytes after the request and before the handshake are never protocol (CVE-2021-23214).
        if (core.framer.buffered > 0) {
          throw new ProtocolError(
            ErrorCodes.PROTOCOL_DATA_AFTER_SSLREQUEST,
            `received unencrypted data after ${p.name === 'SSLRequest' ? 'SSL' : 'GSSENC'} request`,
          );
        }
        if (core.conn.tls.enabled)
          throw new ProtocolError(ErrorCodes.PROTOCOL_STARTUP_INVALID, `${p.name} after TLS is established`);
        if (p.name === 'SSLRequest' && core.deps.clientTls.context) {
          core.phase = 'tls';
          core.emit({ kind: 'startTls' });
        } else core.toClient(Buffer.from('N'));
        return;
      case 'CancelRequest': {
        const target = core.deps.cancel.lookup(p.processId, p.secretKey);
        if (target) core.emit({ kind: 'cancel', target });
        else core.log.info({ pid: p.processId }, 'CancelRequest with a key pgward did not issue: ignored');
        // PostgreSQL closes the connection without a reply either way.
        core.closeOutcome = 'cancel_request';
        core.endClient();
        return;
      }
      case 'StartupMessage':
        this.onStartupMessage(p);
        return;
      default:
        // The framer reads only untyped packets in this phase.
        throw new ProtocolError(ErrorCodes.PROTOCOL_STARTUP_INVALID, `unexpected ${p.name} before startup`);
    }
  }

  private onStartupMessage(m: StartupMessage): void {
    const core = this.core;
    if (this.refusal !== null) return this.refuse(this.refusal);
    if (core.deps.clientTls.require && !core.conn.tls.enabled) {
      core.deps.observer.onError(ErrorCodes.TLS_REQUIRED, core.conn);
      core.closeOutcome = 'tls_required';
      core.fatal(
        '28000',
        'pgward: TLS is required; connect with sslmode=require or stronger',
        ErrorCodes.TLS_REQUIRED,
      );
      return;
    }
    // The user and database PostgreSQL will use: names cut to NAMEDATALEN-1 bytes, the database
    // defaulting to the user, before any policy sees them.
    const id = startupIdentity(m.parameters);
    const params: Record<string, string> = {};
    for (const [k, v] of m.parameters) params[k] = v;
    if (params.user !== undefined) params.user = id.user;
    if (params.database !== undefined) params.database = id.database;
    this.protocolMinor = m.protocolVersion & 0xffff;
    const c = core.conn;
    c.user = id.user;
    c.database = id.database;
    c.application_name = params.application_name ?? null;
    c.parameters = Object.freeze(params);
    c.options = Object.freeze(params.options ? parseStartupOptions(params.options) : {});
    c.protocol_version = `3.${this.protocolMinor}`;
    core.log = core.log.child({ user: c.user, db: c.database });
    if (core.deps.observer.onFrame) core.deps.observer.onFrame('frontend', m.bytes, c, m);

    // A client encoding or string syntax pgward cannot read SQL under: refused before the upstream
    // is contacted (the server's own reports are checked again as they arrive, tripwires.ts).
    const lexical = lexicalStartupCheck(params, c.options);
    if (!lexical.ok) {
      core.log.info({ code: lexical.code, reason: lexical.reason }, 'startup refused: lexical state');
      core.deps.observer.onError(lexical.code, c);
      core.closeOutcome = 'startup_denied';
      core.fatal(lexical.sqlstate, `pgward: ${lexical.reason}`, lexical.code);
      return;
    }
    core.requests.lexical = { ...lexical.state, changing: false };
    c.server = Object.freeze(emptyServerState());

    const decision = core.requests.decide(core.requests.judge.startup(c), m);
    if (!decision.allow) {
      core.closeOutcome = 'startup_denied';
      core.log.info(
        { decision: decision.id, reasons: decision.reasons, code: decision.error_code },
        'startup denied',
      );
      core.toClient(
        decision.error_code === ErrorCodes.POLICY_NO_BUNDLE
          ? encodeFatal('57P03', 'pgward: no policy bundle is loaded; connections are refused until one is')
          : encodeStartupDenied(decision),
      );
      core.endClient();
      return;
    }
    core.requests.judgedAtStartup = {
      user: c.user,
      readOnly: decision.session_parameters['default_transaction_read_only'] === 'on',
      superuser: null,
    };
    // Parameters the decision pins override whatever the client sent (direct startup parameters
    // are applied after `options` switches, so they win over `-c` settings too).
    // The names go as sent: the server cuts them exactly as above.
    const forward = new Map(m.parameters);
    for (const [k, v] of Object.entries(decision.session_parameters)) {
      for (const key of [...forward.keys()]) if (key.toLowerCase() === k) forward.delete(key);
      forward.set(k, v);
    }
    core.framer.setStartupPhase(false);
    core.framer.setMaxMessageBytes(Math.min(core.deps.limits.maxMessageBytes, MAX_AUTH_MESSAGE_BYTES));
    core.phase = 'connecting';
    core.emit({ kind: 'pauseClient' });
    core.emit({ kind: 'connectUpstream', startup: encodeStartupMessage(m.protocolVersion, forward) });
  }

  /** postmaster.c CAC_TOOMANY: after the StartupMessage, in whatever encryption was negotiated. */
  private refuse(r: Refusal): void {
    const core = this.core;
    const code = r === 'max_clients' ? ErrorCodes.LIMIT_CLIENTS : ErrorCodes.LIMIT_UNAUTHENTICATED;
    core.log.warn({ code, limit: r }, 'sorry, too many clients already');
    core.deps.observer.onError(code, null);
    core.closeOutcome = 'rejected_limit';
    core.fatal('53300', 'sorry, too many clients already', code);
  }

  /**
   * Between StartupMessage and the first ReadyForQuery only the authentication exchange may flow:
   * each 'p' is decoded once, as the message the server's last request asked for.
   */
  onAuthFrame(frame: FrontendFrame): void {
    const core = this.core;
    const type = frame.type;
    if (type !== FrontendType.PasswordMessage && type !== FrontendType.Terminate) {
      throw new ProtocolError(
        ErrorCodes.PROTOCOL_UNEXPECTED_MESSAGE,
        `expected password response, got message type ${type}`,
      );
    }
    const m = readFrontendMessage(frame, { authentication: this.expecting });
    if (m.name === 'Terminate') {
      core.closeOutcome = 'client_terminated';
      core.endClient();
      return;
    }
    if (m.name === 'SASLInitialResponse' && !this.checkChannelBinding(m)) return;
    core.toUpstream(m.bytes);
  }

  /** SASLInitialResponse: whether the client's channel-binding flag can be honoured end to end. */
  private checkChannelBinding(m: SASLInitialResponse): boolean {
    const core = this.core;
    const flag = scramChannelBindingFlag(m.data);
    const honoured = this.upstream?.channelBindingHonoured === true;
    // A client that supports channel binding, told the server does not, sends 'y'; a TLS
    // upstream then (rightly) fails the exchange as a downgrade. Say why, clearly, instead.
    if (flag === 'y' && this.upstream?.tls === true && !honoured) {
      core.deps.observer.onError(ErrorCodes.AUTH_CHANNEL_BINDING, core.conn);
      core.fatal(
        '28000',
        'pgward: SCRAM channel binding cannot pass through a TLS-terminating gateway',
        ErrorCodes.AUTH_CHANNEL_BINDING,
        "Connect with channel_binding=disable, or give pgward the database server's own certificate and key (tls.cert_file, tls.key_file) so that the binding holds end to end.",
      );
      return false;
    }
    if (flag === 'p' && !honoured)
      throw new ProtocolError(
        ErrorCodes.PROTOCOL_UNEXPECTED_MESSAGE,
        'channel binding requested but not offered',
      );
    return true;
  }

  /** Backend messages before the first ReadyForQuery (`m`: decoded once by the core, see core.ts DECODED). */
  onBackend(type: number, msg: Buffer, m: BackendMessage): Buffer | null {
    const core = this.core;
    switch (m.name) {
      case 'ReadyForQuery':
        core.conn.transaction_status = m.status;
        if (core.deps.observer.onFrame) core.deps.observer.onFrame('backend', msg, core.conn);
        core.phase = 'ready';
        core.framer.setMaxMessageBytes(core.deps.limits.maxMessageBytes);
        core.log.debug('ready');
        return null;
      case 'NegotiateProtocolVersion':
      case 'BackendKeyData':
      case 'ParameterStatus':
      case 'ErrorResponse':
        return core.requests.onBackend(type, msg, m);
      default:
        return isAuthenticationMessage(m) ? this.onAuthentication(m) : null;
    }
  }

  private onAuthentication(a: AuthenticationMessage): Buffer | null {
    const core = this.core;
    this.expecting =
      a.name === 'AuthenticationSASL'
        ? 'SASLInitialResponse'
        : a.name === 'AuthenticationSASLContinue'
          ? 'SASLResponse'
          : 'PasswordMessage';
    if (a.name === 'AuthenticationOk') {
      this.authenticated();
      return null;
    }
    if (a.name === 'AuthenticationSASL') {
      // The binding (a hash of the server certificate) holds end to end only when the client
      // talks TLS to pgward and pgward presents the upstream's own certificate; otherwise never
      // offer SCRAM-SHA-256-PLUS to the client.
      if (this.upstream?.channelBindingHonoured === true) return null;
      const mechs = a.mechanisms.filter((x) => !x.endsWith('-PLUS'));
      if (mechs.length === 0) {
        core.deps.observer.onError(ErrorCodes.AUTH_CHANNEL_BINDING, core.conn);
        core.fatal(
          '28000',
          'pgward: the server offers only channel-bound SASL mechanisms',
          ErrorCodes.AUTH_CHANNEL_BINDING,
        );
        return Buffer.alloc(0);
      }
      return mechs.length === a.mechanisms.length ? null : encodeAuthenticationSASL(mechs);
    }
    // GSS/SSPI/Kerberos cannot be relayed meaningfully by a TLS-terminating gateway.
    if (
      a.name === 'AuthenticationGSS' ||
      a.name === 'AuthenticationGSSContinue' ||
      a.name === 'AuthenticationSSPI' ||
      a.name === 'AuthenticationKerberosV5'
    ) {
      core.fatal(
        '28000',
        'pgward: GSSAPI/SSPI authentication is not supported through pgward',
        ErrorCodes.PROTOCOL_UNEXPECTED_MESSAGE,
      );
      return Buffer.alloc(0);
    }
    return null;
  }

  /** AuthenticationOk: the login timeout and the unauthenticated count end here. */
  private authenticated(): void {
    const core = this.core;
    core.conn.authenticated = true;
    core.emit({ kind: 'stopLoginTimer' });
    this.uncount();
    core.deps.observer.onAuthenticated(core.conn);
    core.log.debug('authenticated');
  }
}
