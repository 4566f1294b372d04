/**
 * A minimal raw protocol-3 client for pipelines and fastpath calls: frames are built with the
 * gateway's own encoders (gateway/src/protocol), responses split into typed messages.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import net from 'node:net';
import {
  PROTOCOL_3_0,
  encodeStartupMessage,
  readErrorFields,
  type ErrorFields,
} from '../../gateway/src/protocol';

export interface BackendMsg {
  /** one-letter type: '1' ParseComplete, '2' BindComplete, 'C', 'D', 'E', 'Z', … */
  type: string;
  /** the whole frame, header included */
  frame: Buffer;
}

export function errorOf(m: BackendMsg): ErrorFields {
  return readErrorFields(m.frame);
}

/** ReadyForQuery's transaction status. */
export function statusOf(m: BackendMsg): string {
  return String.fromCharCode(m.frame[5] as number);
}

export class RawClient {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake();
    });
    const done = (): void => {
      this.closed = true;
      this.wake();
    };
    socket.on('close', done);
    socket.on('end', done);
    socket.on('error', done);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    if (w) w();
  }

  static open(host: string, port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port });
      s.setNoDelay(true);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new RawClient(s));
      });
      s.once('error', reject);
    });
  }

  /** Connects and completes a trust-auth startup; returns the client and what the server sent. */
  static async connect(
    host: string,
    port: number,
    params: Record<string, string>,
  ): Promise<{ client: RawClient; startup: BackendMsg[] }> {
    const client = await RawClient.open(host, port);
    client.send(encodeStartupMessage(PROTOCOL_3_0, Object.entries(params)));
    const startup = await client.readUntil(
      (m) => m.type === 'Z' || (m.type === 'E' && errorOf(m).severity === 'FATAL'),
    );
    return { client, startup };
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  private take(): BackendMsg | null {
    if (this.buf.length < 5) return null;
    const len = this.buf.readInt32BE(1);
    if (this.buf.length < len + 1) return null;
    const frame = this.buf.subarray(0, len + 1);
    this.buf = this.buf.subarray(len + 1);
    return { type: String.fromCharCode(frame[0] as number), frame };
  }

  /** The next message, or null when the connection closed first. */
  async next(timeoutMs = 10_000): Promise<BackendMsg | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.take();
      if (m) return m;
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a backend message');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Messages up to and including the first one matching `stop`; throws if the connection closes first. */
  async readUntil(stop: (m: BackendMsg) => boolean, timeoutMs = 10_000): Promise<BackendMsg[]> {
    const out: BackendMsg[] = [];
    for (;;) {
      const m = await this.next(timeoutMs);
      if (!m) throw new Error(`connection closed after ${out.map((x) => x.type).join('')}`);
      out.push(m);
      if (stop(m)) return out;
    }
  }

  readUntilReady(timeoutMs = 10_000): Promise<BackendMsg[]> {
    return this.readUntil((m) => m.type === 'Z', timeoutMs);
  }

  /** Everything until the peer closes (or `timeoutMs`, then what arrived so far). */
  async readToClose(timeoutMs = 5_000): Promise<BackendMsg[]> {
    const out: BackendMsg[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return out;
      let m: BackendMsg | null;
      try {
        m = await this.next(left);
      } catch {
        return out;
      }
      if (!m) return out;
      out.push(m);
    }
  }

  /** Bytes that arrive within `ms` (to prove nothing more was sent). */
  async quietFor(ms: number): Promise<number> {
    await new Promise((r) => setTimeout(r, ms));
    return this.buf.length;
  }

  close(): void {
    this.socket.destroy();
  }
}

export { PROTOCOL_3_0 };
