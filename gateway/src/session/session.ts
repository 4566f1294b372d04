/**
 * The socket adapter: the only code that touches the client and upstream sockets and timers. It
 * feeds socket events to the session core (core.ts) and carries out the actions it returns: writes
 * (with backpressure: a side that cannot take more pauses the other), the client TLS upgrade, the
 * upstream connection, the login timer, cancels, and closing both sides. The sockets are
 * `node:net`/`node:tls`, or under Bun its own (bun-socket.ts, same events and calls).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { ErrorCodes, PgwardError, type ErrorCode } from '../errors';
import { encodeCancelRequest, encodeTerminate } from '../protocol';
import type { ConnectionInfo } from '../policy/types';
import { connectUpstream, sendCancelRequest } from './upstream';
import { SessionCore } from './core';
import { WriteAction, type Action, type Refusal } from './actions';
import type { SessionDeps } from './types';
import type { BunSocket } from './bun-socket';
import { useSharedReads } from './shared-reads';
import { directWriter, type DirectWriter } from './direct-writes';

/** What the adapter uses of a socket: `node:net`/`node:tls`, or Bun's own (bun-socket.ts). */
interface Sock {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'close' | 'drain', listener: () => void): unknown;
  write(data: Buffer | string): boolean;
  cork(): void;
  uncork(): void;
  pause(): unknown;
  resume(): unknown;
  end(): unknown;
  end(last: Buffer): unknown;
  destroy(): unknown;
  setNoDelay(on?: boolean): unknown;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  readonly writableNeedDrain: boolean;
}

export { coalesce } from './core';

export class Session {
  readonly core: SessionCore;
  private client: Sock;
  private upstream: Sock | null = null;
  private loginTimer: NodeJS.Timeout | null = null;
  private clientPaused = false;
  private upstreamPaused = false;
  /**
   * Whether each side still reads through the stream's `data` event: once the session is ready,
   * plain TCP sockets switch to shared reads (shared-reads.ts), each as soon as it is not paused.
   */
  private clientStreamReads = true;
  private upstreamStreamReads = true;
  /**
   * Each side's writes once it reads the shared way: straight through the socket's handle
   * (direct-writes.ts); null: `write()`.
   */
  private clientWriter: DirectWriter | null = null;
  private upstreamWriter: DirectWriter | null = null;

  constructor(
    socket: (net.Socket | BunSocket) & {
      remoteAddress?: string | undefined;
      remotePort?: number | undefined;
    },
    private readonly deps: SessionDeps,
    refusal: Refusal | null = null,
  ) {
    this.client = socket;
    socket.setNoDelay(true);
    this.core = new SessionCore(deps, {
      clientAddr: normalizeAddr(socket.remoteAddress),
      clientPort: socket.remotePort ?? 0,
      cancelTarget: this,
      refusal,
    });
    this.attachClient(socket);
    this.run();
  }

  get id(): string {
    return this.core.id;
  }

  get log(): Logger {
    return this.core.log;
  }

  get connection(): ConnectionInfo {
    return this.core.conn;
  }

  get isIdle(): boolean {
    return this.core.isIdle;
  }

  /** Graceful shutdown: idle sessions close now, busy ones when they next become idle. */
  drain(): void {
    this.core.shutdown();
    this.run();
  }

  close(outcome: string): void {
    this.core.clientClosed(outcome);
    this.run();
  }

  /** Ends the connection after a FATAL error (shutdown past its deadline). */
  fatal(sqlstate: string, message: string, code: ErrorCode | null): void {
    this.core.fatal(sqlstate, message, code);
    this.run();
  }

  /**
   * Sends a CancelRequest for this session's backend with the upstream's own key, over TLS when the
   * upstream connections use it (upstream.ts). Resolves true once the server has closed the cancel
   * connection (it does so after acting on the request), false if it could not be delivered.
   */
  cancelUpstream(): Promise<boolean> {
    const key = this.core.requests.cancelKey;
    if (!key) return Promise.resolve(false);
    this.log.info('cancel request forwarded');
    return sendCancelRequest(this.deps.upstream, encodeCancelRequest(key.processId, key.secretKey)).then(
      (ok) => {
        if (!ok) this.log.warn('cancel connection failed');
        return ok;
      },
    );
  }

  private readonly onClientData = (chunk: Buffer): void => {
    this.core.clientData(chunk);
    this.run();
  };

  private readonly onServerData = (chunk: Buffer): void => {
    this.core.serverData(chunk);
    this.run();
  };

  private attachClient(s: Sock): void {
    s.on('data', this.onClientData);
    s.on('error', (err) => {
      this.log.debug({ err: err.message }, 'client socket error');
      this.close('client_error');
    });
    s.on('close', () => this.close('client_closed'));
    s.on('drain', () => {
      if (this.upstreamPaused && this.upstream) {
        this.upstreamPaused = false;
        this.upstream.resume();
      }
    });
  }

  /** Carries out the core's actions, in order. */
  private run(): void {
    for (const a of this.core.takeActions()) this.act(a);
    if ((this.clientStreamReads || this.upstreamStreamReads) && this.core.phase === 'ready')
      this.shareReads();
  }

  /**
   * Moves each plain TCP side that is not paused to shared reads (shared-reads.ts); a TLS side,
   * or a runtime without them, keeps the stream path for good.
   */
  private shareReads(): void {
    if (this.clientStreamReads && !this.clientPaused) {
      const r = useSharedReads(this.client, this.onClientData);
      this.clientStreamReads = r === 'later';
      if (r === 'switched') this.clientWriter = directWriter(this.client);
    }
    if (this.upstreamStreamReads && this.upstream !== null && !this.upstreamPaused) {
      const r = useSharedReads(this.upstream, this.onServerData);
      this.upstreamStreamReads = r === 'later';
      if (r === 'switched') this.upstreamWriter = directWriter(this.upstream);
    }
  }

  private act(a: Action): void {
    // The writes of every read first, by class (one object shape; a `kind` read across every
    // action's shape would be a megamorphic lookup on each read).
    if (a instanceof WriteAction) {
      if (a.kind === 'writeUpstream') this.writeUpstream(a.data, a.bytes);
      else this.writeClient(a.data, a.bytes);
      return;
    }
    switch (a.kind) {
      case 'startTls':
        return this.startClientTls();
      case 'connectUpstream':
        return this.connect(a.startup);
      case 'pauseClient':
        this.client.pause();
        return;
      case 'resumeClient':
        if (!this.clientPaused) this.client.resume();
        return;
      case 'startLoginTimer':
        this.loginTimer = setTimeout(() => {
          this.core.loginTimerFired();
          this.run();
        }, a.ms);
        this.loginTimer.unref();
        return;
      case 'stopLoginTimer':
        if (this.loginTimer) clearTimeout(this.loginTimer);
        this.loginTimer = null;
        return;
      case 'cancel':
        void a.target.cancelUpstream();
        return;
      case 'endClient':
        this.client.end();
        // Do not wait for a client that never reads its FATAL.
        setTimeout(() => this.client.destroy(), 2000).unref();
        return this.closed();
      case 'destroyClient':
        this.client.destroy();
        return this.closed();
      case 'closeUpstream':
        return this.closeUpstream(a.terminate, a.cancelFirst);
    }
  }

  private closed(): void {
    this.deps.onClose(this);
  }

  private writeUpstream(data: Buffer[], bytes: number): void {
    const up = this.upstream;
    if (!up || up.writableEnded) return;
    this.deps.observer.onBytes('client_to_upstream', bytes);
    let ok = true;
    if (data.length === 1) {
      const w = this.upstreamWriter;
      ok = w !== null ? w.write(data[0] as Buffer) : up.write(data[0] as Buffer);
    } else {
      up.cork();
      for (const b of data) ok = up.write(b);
      up.uncork();
      if (up.writableNeedDrain) ok = false;
    }
    if (!ok && !this.clientPaused) {
      this.clientPaused = true;
      this.client.pause();
    }
  }

  private writeClient(data: Buffer[], bytes: number): void {
    const c = this.client;
    if (c.destroyed || c.writableEnded) return;
    let ok = true;
    if (data.length === 1) {
      const w = this.clientWriter;
      ok = w !== null ? w.write(data[0] as Buffer) : c.write(data[0] as Buffer);
    } else {
      c.cork();
      for (const p of data) if (p.length > 0) ok = c.write(p);
      c.uncork();
      if (c.writableNeedDrain) ok = false;
    }
    this.deps.observer.onBytes('upstream_to_client', bytes);
    if (!ok && this.upstream && !this.upstreamPaused) {
      this.upstreamPaused = true;
      this.upstream.pause();
    }
  }

  private startClientTls(): void {
    const raw = this.client;
    // Bun's own sockets serve only listeners without client TLS (main.ts); never upgrade one.
    if (!(raw instanceof net.Socket)) {
      this.close('client_error');
      return;
    }
    raw.removeAllListeners('data');
    raw.removeAllListeners('error');
    raw.removeAllListeners('close');
    raw.removeAllListeners('drain');
    raw.write('S');
    const ts = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: this.deps.clientTls.context as tls.SecureContext,
      requestCert: this.deps.clientTls.requestCert,
      rejectUnauthorized: false,
    });
    this.client = ts;
    raw.on('error', () => this.close('client_error'));
    ts.once('secure', () => {
      const cert = ts.getPeerCertificate();
      const subject = ts.authorized && cert && cert.subject ? formatSubject(cert.subject) : null;
      this.core.tlsEstablished({
        version: ts.getProtocol() ?? null,
        cipher: ts.getCipher()?.name ?? null,
        clientCertSubject: subject,
      });
      this.run();
    });
    this.attachClient(ts);
  }

  private connect(startup: Buffer): void {
    connectUpstream(this.deps.upstream).then(
      (up) => {
        if (this.core.phase !== 'connecting') {
          up.socket.destroy();
          return;
        }
        this.attachUpstream(up.socket, up.tls, startup);
        this.run();
      },
      (err: unknown) => {
        const e =
          err instanceof PgwardError ? err : new PgwardError(ErrorCodes.UPSTREAM_CONNECT, String(err));
        this.core.upstreamFailed(e);
        this.run();
      },
    );
  }

  private attachUpstream(socket: Sock, isTls: boolean, startup: Buffer): void {
    this.upstream = socket;
    const own = this.deps.clientTls.certDer;
    const honoured =
      isTls &&
      this.core.conn.tls.enabled &&
      own !== null &&
      (socket as tls.TLSSocket).getPeerCertificate().raw?.equals(own) === true;
    socket.setNoDelay(true);
    socket.on('data', this.onServerData);
    socket.on('error', (err) => this.log.warn({ err: err.message }, 'upstream socket error'));
    socket.on('close', () => {
      this.core.upstreamClosed();
      this.run();
    });
    socket.on('drain', () => {
      if (this.clientPaused) {
        this.clientPaused = false;
        this.client.resume();
      }
    });
    socket.resume();
    socket.write(startup);
    this.core.upstreamConnected({ tls: isTls, channelBindingHonoured: honoured });
    this.client.resume();
  }

  private closeUpstream(terminate: boolean, cancelFirst: boolean): void {
    const up = this.upstream;
    if (!up || up.destroyed) return;
    if (cancelFirst) void this.cancelUpstream();
    if (terminate) up.end(encodeTerminate());
    else up.destroy();
    setTimeout(() => up.destroy(), 2000).unref();
  }
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
