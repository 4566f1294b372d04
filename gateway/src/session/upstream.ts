/**
 * Opening the upstream connection, with TLS negotiated independently of the client side:
 * SSLRequest, a single-byte answer, then the handshake. Bytes after the answer and before the
 * handshake are refused (the CVE-2021-23214 class, server side).
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
 */
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { ErrorCodes, PgwardError } from '../errors';
import { encodeSSLRequest } from '../protocol';
import { connectNative, nativeConnectsAbandoned, type BunSocket } from './bun-socket';

export type UpstreamTlsMode = 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

export interface UpstreamOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  tls: {
    mode: UpstreamTlsMode;
    ca_file?: string | undefined;
    cert_file?: string | undefined;
    key_file?: string | undefined;
    servername?: string | undefined;
  };
  /**
   * Under Bun: plain TCP sessions (`tls.mode: disable`) connect with Bun's own sockets
   * (bun-socket.ts). Cancel connections always use `node:net`.
   */
  native?: boolean;
}

export interface UpstreamConnection {
  socket: net.Socket | tls.TLSSocket | BunSocket;
  tls: boolean;
}

const fileCache = new Map<string, Buffer>();
function file(path: string): Buffer {
  let b = fileCache.get(path);
  if (!b) {
    b = readFileSync(path);
    fileCache.set(path, b);
  }
  return b;
}

function connectTcp(opts: UpstreamOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: opts.host, port: opts.port });
    s.setNoDelay(true);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new PgwardError(ErrorCodes.UPSTREAM_CONNECT, `connect to ${opts.host}:${opts.port} timed out`));
    }, opts.connectTimeoutMs);
    timer.unref();
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new PgwardError(ErrorCodes.UPSTREAM_CONNECT, `connect to ${opts.host}:${opts.port}: ${err.message}`),
      );
    });
  });
}

/** Sends SSLRequest and reads the one-byte answer; anything beyond that byte is an attack or a bug. */
function negotiateSsl(s: net.Socket, timeoutMs: number): Promise<'S' | 'N'> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail('timed out waiting for the SSLRequest answer'), timeoutMs);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      s.pause();
      cleanup();
      if (chunk.length !== 1) return fail('unexpected data after the SSLRequest answer');
      const c = String.fromCharCode(chunk[0] as number);
      if (c === 'S' || c === 'N') resolve(c);
      else fail(`unexpected SSLRequest answer 0x${(chunk[0] as number).toString(16)}`);
    };
    const onError = (err: Error): void => {
      cleanup();
      fail(err.message);
    };
    const onClose = (): void => {
      cleanup();
      fail('server closed the connection during SSL negotiation');
    };
    function cleanup(): void {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('error', onError);
      s.off('close', onClose);
    }
    function fail(msg: string): void {
      cleanup();
      s.destroy();
      reject(new PgwardError(ErrorCodes.UPSTREAM_TLS, msg));
    }
    s.on('data', onData);
    s.on('error', onError);
    s.on('close', onClose);
    s.write(encodeSSLRequest());
  });
}

function startTls(s: net.Socket, opts: UpstreamOptions): Promise<tls.TLSSocket> {
  const t = opts.tls;
  const servername = t.servername ?? (net.isIP(opts.host) ? undefined : opts.host);
  const options: tls.ConnectionOptions = {
    socket: s,
    rejectUnauthorized: t.mode === 'verify-ca' || t.mode === 'verify-full',
  };
  if (servername !== undefined) options.servername = servername;
  if (t.ca_file) options.ca = file(t.ca_file);
  if (t.cert_file) options.cert = file(t.cert_file);
  if (t.key_file) options.key = file(t.key_file);
  if (t.mode === 'verify-ca') options.checkServerIdentity = () => undefined;
  if (t.mode === 'verify-full') {
    const host = t.servername ?? opts.host;
    options.checkServerIdentity = (_name, cert) => tls.checkServerIdentity(host, cert);
  }
  return new Promise((resolve, reject) => {
    const ts = tls.connect(options);
    const timer = setTimeout(() => {
      ts.destroy();
      reject(new PgwardError(ErrorCodes.UPSTREAM_TLS, 'TLS handshake with the server timed out'));
    }, opts.connectTimeoutMs);
    timer.unref();
    ts.once('secureConnect', () => {
      clearTimeout(timer);
      ts.removeAllListeners('error');
      resolve(ts);
    });
    ts.once('error', (err) => {
      clearTimeout(timer);
      ts.destroy();
      reject(new PgwardError(ErrorCodes.UPSTREAM_TLS, `TLS with the server: ${err.message}`));
    });
  });
}

/** Whether sessions' upstream connections may use Bun's own sockets: under Bun, and no TLS wanted. */
export function nativeUpstream(opts: UpstreamOptions): boolean {
  return opts.native === true && opts.tls.mode === 'disable';
}

/** A session's upstream connection (Bun's own sockets when nativeUpstream). */
export async function connectUpstream(opts: UpstreamOptions): Promise<UpstreamConnection> {
  // A native connect cannot be cancelled at its timeout: while one is still pending, use node:net.
  if (nativeUpstream(opts) && nativeConnectsAbandoned() === 0)
    return { socket: await connectNative(opts.host, opts.port, opts.connectTimeoutMs), tls: false };
  return connectUpstreamNode(opts);
}

async function connectUpstreamNode(
  opts: UpstreamOptions,
): Promise<UpstreamConnection & { socket: net.Socket }> {
  const s = await connectTcp(opts);
  if (opts.tls.mode === 'disable') return { socket: s, tls: false };
  const answer = await negotiateSsl(s, opts.connectTimeoutMs);
  if (answer === 'N') {
    if (opts.tls.mode === 'prefer') {
      s.resume();
      return { socket: s, tls: false };
    }
    s.destroy();
    throw new PgwardError(
      ErrorCodes.UPSTREAM_TLS,
      'server does not support SSL, but upstream.tls.mode requires it',
    );
  }
  const ts = await startTls(s, opts);
  return { socket: ts, tls: true };
}

/**
 * Sends a CancelRequest for an upstream backend over a new connection, in the same TLS mode as the
 * sessions' connections: PostgreSQL reads a CancelRequest after an SSLRequest as it reads a
 * StartupMessage, so with TLS the upstream's secret never crosses the network in cleartext.
 * Resolves true once the server has closed the connection (it does so after acting on the
 * request), false if it could not be delivered.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 */
export async function sendCancelRequest(opts: UpstreamOptions, request: Buffer): Promise<boolean> {
  let conn: UpstreamConnection & { socket: net.Socket };
  try {
    conn = await connectUpstreamNode(opts);
  } catch {
    return false;
  }
  const s = conn.socket;
  return new Promise((resolve) => {
    let sent = false;
    s.on('error', () => undefined);
    s.on('close', (hadError) => resolve(sent && !hadError));
    s.setTimeout(opts.connectTimeoutMs, () => s.destroy());
    s.resume();
    s.end(request, () => (sent = true));
  });
}
