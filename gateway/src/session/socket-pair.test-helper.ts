import net from 'node:net';
import { once } from 'node:events';

export interface SocketPair {
  /** The server side, as pgward's listener gets it. */
  accepted: net.Socket;
  /** The client side. */
  dialed: net.Socket;
  close: () => Promise<void>;
}

const opened: SocketPair[] = [];

/**
 * A connected pair of loopback TCP sockets (`pauseOnConnect`: the accepted side does not read
 * until resumed). Every pair is closed by closeSocketPairs (call it in afterEach).
 */
export async function socketPair(pauseOnConnect = false): Promise<SocketPair> {
  const server = net.createServer({ pauseOnConnect });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const accepting = once(server, 'connection');
  const dialed = net.connect(port, '127.0.0.1');
  await once(dialed, 'connect');
  const [accepted] = (await accepting) as [net.Socket];
  let closing: Promise<void> | null = null;
  const p: SocketPair = {
    accepted,
    dialed,
    close: (): Promise<void> => {
      closing ??= (async () => {
        accepted.destroy();
        dialed.destroy();
        server.close();
        await once(server, 'close');
      })();
      return closing;
    },
  };
  opened.push(p);
  return p;
}

/** Closes every pair opened since the last call (whether its test passed or not). */
export async function closeSocketPairs(): Promise<void> {
  await Promise.all(opened.splice(0).map((p) => p.close()));
}
