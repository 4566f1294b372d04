/**
 * A raw PostgreSQL wire-protocol client for security tests: builds frontend frames byte by byte
 * (including malformed ones) and decodes what comes back, so a test sees exactly which bytes the
 * gateway sent and whether it closed the connection.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import net from 'node:net';

export const PROTOCOL_3_0 = 196608;
const SSL_REQUEST_CODE = 80877103;
const GSSENC_REQUEST_CODE = 80877104;
const CANCEL_REQUEST_CODE = 80877102;

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function cstring(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}

/** An untyped startup-phase packet: length (itself included) then body. */
export function untypedPacket(body: Buffer): Buffer {
  return Buffer.concat([int32(body.length + 4), body]);
}

export function encodeStartup(params: Record<string, string>, version = PROTOCOL_3_0): Buffer {
  const parts = [int32(version)];
  for (const [k, v] of Object.entries(params)) parts.push(cstring(k), cstring(v));
  parts.push(Buffer.from([0]));
  return untypedPacket(Buffer.concat(parts));
}

export const encodeSSLRequest = (): Buffer => untypedPacket(int32(SSL_REQUEST_CODE));
export const encodeGSSENCRequest = (): Buffer => untypedPacket(int32(GSSENC_REQUEST_CODE));

export function encodeCancelRequest(processId: number, secretKey: Buffer): Buffer {
  return untypedPacket(Buffer.concat([int32(CANCEL_REQUEST_CODE), int32(processId), secretKey]));
}

/** A typed frontend message with a correct length word. */
export function typed(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(body.length + 4), body]);
}

/** A typed header whose length word says `claimedLength` whatever follows. */
export function typedHeader(type: string, claimedLength: number): Buffer {
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(claimedLength)]);
}

export const encodeQuery = (sql: string): Buffer => typed('Q', cstring(sql));
export const encodeCopyData = (data: string): Buffer => typed('d', Buffer.from(data, 'utf8'));
export const encodeCopyDone = (): Buffer => typed('c');
export const encodeTerminate = (): Buffer => typed('X');

export interface BackendMessage {
  type: string;
  body: Buffer;
}

export interface ErrorFields {
  severity: string;
  code: string;
  message: string;
  detail?: string;
}

/** Decodes ErrorResponse / NoticeResponse fields. */
export function readErrorFields(body: Buffer): ErrorFields {
  const f: Record<string, string> = {};
  let pos = 0;
  while (pos < body.length && body[pos] !== 0) {
    const key = String.fromCharCode(body[pos] as number);
    const end = body.indexOf(0, pos + 1);
    if (end < 0) break;
    f[key] = body.toString('utf8', pos + 1, end);
    pos = end + 1;
  }
  const out: ErrorFields = { severity: f.V ?? f.S ?? '', code: f.C ?? '', message: f.M ?? '' };
  if (f.D !== undefined) out.detail = f.D;
  return out;
}

export function readBackendKeyData(body: Buffer): { processId: number; secretKey: Buffer } {
  return { processId: body.readInt32BE(0), secretKey: Buffer.from(body.subarray(4)) };
}

/** Splits a byte stream into backend messages; a trailing partial message is returned as `rest`. */
export function splitBackendMessages(data: Buffer): { messages: BackendMessage[]; rest: Buffer } {
  const messages: BackendMessage[] = [];
  let pos = 0;
  while (data.length - pos >= 5) {
    const len = data.readInt32BE(pos + 1);
    if (len < 4 || data.length - pos < len + 1) break;
    messages.push({
      type: String.fromCharCode(data[pos] as number),
      body: data.subarray(pos + 5, pos + 1 + len),
    });
    pos += len + 1;
  }
  return { messages, rest: data.subarray(pos) };
}

/**
 * One TCP connection with an incremental backend-message reader. `next()` waits for the next
 * whole message; `closed` resolves when the peer has closed (or the socket errored).
 */
export class WireClient {
  readonly socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private ended = false;
  /** Every byte received, in order. */
  readonly received: Buffer[] = [];
  readonly closed: Promise<void>;
  closedAt: number | null = null;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      const done = (): void => {
        if (this.ended) return;
        this.ended = true;
        this.closedAt = Date.now();
        this.wake();
        resolve();
      };
      socket.on('end', done);
      socket.on('close', done);
      socket.on('error', done);
    });
  }

  static connect(host: string, port: number): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new WireClient(s));
      });
      s.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.ended;
  }

  get allBytes(): Buffer {
    return Buffer.concat(this.received);
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Raw bytes: waits until `n` bytes are buffered; returns and consumes them. */
  async readBytes(n: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.length < n) {
      if (this.ended) throw new Error(`connection closed after ${this.buf.length} of ${n} bytes`);
      await this.waitForData(deadline);
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** The next whole backend message, or null when the connection closed first. */
  async next(timeoutMs = 5000): Promise<BackendMessage | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (len < 4) throw new Error(`bad backend length ${len}`);
        if (this.buf.length >= len + 1) {
          const msg = {
            type: String.fromCharCode(this.buf[0] as number),
            body: this.buf.subarray(5, len + 1),
          };
          this.buf = this.buf.subarray(len + 1);
          return msg;
        }
      }
      if (this.ended) return null;
      await this.waitForData(deadline);
    }
  }

  /** Messages up to and including the first that matches `stop` (or up to the close). */
  async readUntil(stop: (m: BackendMessage) => boolean, timeoutMs = 5000): Promise<BackendMessage[]> {
    const deadline = Date.now() + timeoutMs;
    const out: BackendMessage[] = [];
    for (;;) {
      const m = await this.next(Math.max(1, deadline - Date.now()));
      if (m === null) return out;
      out.push(m);
      if (stop(m)) return out;
    }
  }

  /** Messages until `count` ReadyForQuery have been read. */
  async readReady(count = 1, timeoutMs = 5000): Promise<BackendMessage[]> {
    let seen = 0;
    return this.readUntil((m) => m.type === 'Z' && ++seen === count, timeoutMs);
  }

  /** Every message until the peer closes; throws when it stays open past the timeout. */
  async readToClose(timeoutMs = 5000): Promise<BackendMessage[]> {
    const deadline = Date.now() + timeoutMs;
    const out: BackendMessage[] = [];
    for (;;) {
      const m = await this.next(Math.max(1, deadline - Date.now()));
      if (m === null) return out;
      out.push(m);
    }
  }

  private waitForData(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const left = deadline - Date.now();
      if (left <= 0) {
        reject(new Error('timed out waiting for the server'));
        return;
      }
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        reject(new Error('timed out waiting for the server'));
      }, left);
      const wake = (): void => {
        clearTimeout(t);
        resolve();
      };
      this.waiters.push(wake);
    });
  }

  /**
   * StartupMessage for a trust-authenticated user; resolves with every message up to the first
   * ReadyForQuery. Throws with the server's error when an ErrorResponse comes instead.
   */
  async startup(params: Record<string, string>, timeoutMs = 10_000): Promise<BackendMessage[]> {
    this.write(encodeStartup(params));
    const msgs = await this.readUntil((m) => m.type === 'Z' || m.type === 'E', timeoutMs);
    const last = msgs[msgs.length - 1];
    if (!last || last.type !== 'Z') {
      const err = msgs.find((m) => m.type === 'E');
      throw new Error(
        `startup failed: ${err ? JSON.stringify(readErrorFields(err.body)) : 'connection closed'}`,
      );
    }
    return msgs;
  }

  /** Simple Query; resolves with every message up to ReadyForQuery. */
  async query(sql: string, timeoutMs = 10_000): Promise<BackendMessage[]> {
    this.write(encodeQuery(sql));
    return this.readReady(1, timeoutMs);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Text values of the DataRows in `msgs` (NULL as null). */
export function dataRows(msgs: BackendMessage[]): Array<Array<string | null>> {
  return msgs
    .filter((m) => m.type === 'D')
    .map((m) => {
      const n = m.body.readInt16BE(0);
      const row: Array<string | null> = [];
      let pos = 2;
      for (let i = 0; i < n; i++) {
        const len = m.body.readInt32BE(pos);
        pos += 4;
        if (len < 0) row.push(null);
        else {
          row.push(m.body.toString('utf8', pos, pos + len));
          pos += len;
        }
      }
      return row;
    });
}

export function errorsOf(msgs: BackendMessage[]): ErrorFields[] {
  return msgs.filter((m) => m.type === 'E').map((m) => readErrorFields(m.body));
}

/**
 * Connects, writes `bytes`, and collects everything the server sends until it closes the
 * connection (or `timeoutMs` passes: then `closed` is false).
 */
export async function exchange(
  host: string,
  port: number,
  bytes: Buffer,
  timeoutMs = 5000,
): Promise<{ data: Buffer; messages: BackendMessage[]; closed: boolean; elapsedMs: number }> {
  const c = await WireClient.connect(host, port);
  const t0 = Date.now();
  c.write(bytes);
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
  const r = await Promise.race([c.closed.then(() => 'closed' as const), timer]);
  const elapsedMs = (c.closedAt ?? Date.now()) - t0;
  c.destroy();
  const data = c.allBytes;
  return { data, messages: splitBackendMessages(data).messages, closed: r === 'closed', elapsedMs };
}
