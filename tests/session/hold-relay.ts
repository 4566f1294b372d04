/**
 * A TCP relay between pgward and PostgreSQL that holds back the server's first ReadyForQuery of each
 * connection until the test releases it: an honest stand-in for a backend that is slow to start
 * after authentication (the server has sent AuthenticationOk, ParameterStatus and BackendKeyData).
 * Needs a plaintext upstream leg (pgward's default `upstream.tls.mode: disable`), so the server's
 * bytes are typed messages from the first one.
 */
import net from 'node:net';

export interface HeldSession {
  /** Types of the server messages passed on before the ReadyForQuery was held. */
  passed: string[];
  /** Lets the ReadyForQuery and everything after it through. */
  release(): void;
}

export interface HoldRelay {
  host: string;
  port: number;
  /** Resolves with the next session whose ReadyForQuery is being held. */
  nextHeld(timeoutMs?: number): Promise<HeldSession>;
  close(): Promise<void>;
}

export async function startHoldRelay(upstream: { host: string; port: number }): Promise<HoldRelay> {
  const held: HeldSession[] = [];
  const waiters: Array<(h: HeldSession) => void> = [];
  const sockets = new Set<net.Socket>();
  const onHeld = (h: HeldSession): void => {
    const w = waiters.shift();
    if (w) w(h);
    else held.push(h);
  };

  const server = net.createServer((client) => {
    const server = net.connect(upstream);
    sockets.add(client).add(server);
    const closeBoth = (): void => {
      client.destroy();
      server.destroy();
      sockets.delete(client);
      sockets.delete(server);
    };
    client.on('error', closeBoth).on('close', closeBoth);
    server.on('error', closeBoth).on('close', closeBoth);
    client.pipe(server);

    let buf = Buffer.alloc(0);
    let holding: Buffer[] | null = null; // non-null once the first ReadyForQuery is held
    let released = false;
    const passed: string[] = [];
    server.on('data', (chunk: Buffer) => {
      if (released) {
        client.write(chunk);
        return;
      }
      if (holding) {
        holding.push(chunk);
        return;
      }
      buf = Buffer.concat([buf, chunk]);
      let off = 0;
      while (buf.length - off >= 5) {
        const type = String.fromCharCode(buf[off] as number);
        const len = buf.readInt32BE(off + 1);
        if (buf.length - off < len + 1) break;
        if (type === 'Z') {
          client.write(buf.subarray(0, off));
          holding = [buf.subarray(off)];
          const session: HeldSession = {
            passed: [...passed],
            release() {
              released = true;
              for (const b of holding ?? []) client.write(b);
              holding = null;
            },
          };
          onHeld(session);
          return;
        }
        passed.push(type);
        off += len + 1;
      }
      client.write(buf.subarray(0, off));
      buf = buf.subarray(off);
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as net.AddressInfo;
  return {
    host: '127.0.0.1',
    port: addr.port,
    nextHeld(timeoutMs = 10_000) {
      const h = held.shift();
      if (h) return Promise.resolve(h);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no session reached its ReadyForQuery')), timeoutMs);
        waiters.push((s) => {
          clearTimeout(t);
          resolve(s);
        });
      });
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
