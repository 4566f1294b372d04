/**
 * What the socket-free session core asks its adapter to do. The core takes events (bytes from
 * either side, TLS established, upstream connected or failed, the login timer, shutdown) and
 * answers with these, in order; only the adapter touches sockets and timers.
 */
import type { Cancellable } from './cancel-registry';

export type Action =
  /** Original bytes (or sentinels) for the server: one action per client read. */
  | WriteAction<'writeUpstream'>
  /** Bytes for the client. */
  | WriteAction<'writeClient'>
  /** Answer the SSLRequest with 'S' and start the TLS handshake; then call tlsEstablished. */
  | { kind: 'startTls' }
  /** Open the upstream connection and send it this StartupMessage; then call upstreamConnected/Failed. */
  | { kind: 'connectUpstream'; startup: Buffer }
  /** Pause reading the client (until the upstream is connected, or while a frame is held). */
  | { kind: 'pauseClient' }
  /** Read the client again after a held frame went on. */
  | { kind: 'resumeClient' }
  | { kind: 'startLoginTimer'; ms: number }
  | { kind: 'stopLoginTimer' }
  /** A CancelRequest for another session: forward it to that session's upstream. */
  | { kind: 'cancel'; target: Cancellable }
  /** End the client connection once what was written has gone (destroy it if it lingers). */
  | { kind: 'endClient' }
  /** The client is gone already: destroy its socket. */
  | { kind: 'destroyClient' }
  /**
   * Close the upstream connection: `terminate` sends Terminate first (an authenticated session),
   * `cancelFirst` cancels what is still running.
   */
  | { kind: 'closeUpstream'; terminate: boolean; cancelFirst: boolean };

/**
 * The two write actions are instances of one class (the other actions are literals): the
 * adapter tells the per-read writes from the rest by `instanceof` and reads one object shape,
 * where a `kind` read across every action's shape would be a megamorphic lookup on each read.
 */
export class WriteAction<K extends 'writeUpstream' | 'writeClient' = 'writeUpstream' | 'writeClient'> {
  constructor(
    readonly kind: K,
    readonly data: Buffer[],
    readonly bytes: number,
  ) {}
}

export interface TlsInfo {
  version: string | null;
  cipher: string | null;
  clientCertSubject: string | null;
}

export interface UpstreamInfo {
  tls: boolean;
  /** Both hops are TLS with the same server certificate: SCRAM-SHA-256-PLUS can pass through. */
  channelBindingHonoured: boolean;
}

/** Why a session is refused once its client negotiated encryption (PostgreSQL's CAC_TOOMANY). */
export type Refusal = 'max_clients' | 'max_unauthenticated';
