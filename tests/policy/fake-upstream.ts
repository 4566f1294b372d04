/**
 * A TCP listener standing in for PostgreSQL, to prove what pgward does NOT forward: it records
 * every connection and the bytes each one sent, and answers nothing (a session that does reach
 * it is closed at once). The sidecar's readiness probe connects without sending anything, so
 * "a session reached the upstream" is counted as "a connection that sent bytes".
 */
import net from 'node:net';

export interface FakeUpstream {
  address: string;
  /** connections accepted (readiness probes included) */
  connections(): number;
  /** connections that sent at least one byte: sessions forwarded upstream */
  sessions(): number;
  close(): Promise<void>;
}

export async function startFakeUpstream(): Promise<FakeUpstream> {
  let connections = 0;
  let sessions = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.once('data', () => {
      sessions++;
      s.destroy();
    });
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    connections: () => connections,
    sessions: () => sessions,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
