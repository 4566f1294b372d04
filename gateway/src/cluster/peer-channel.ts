/**
 * Cancels forwarded between peered replicas. A CancelRequest that reaches a replica whose key names
 * another peer is sent to every address the configured peers resolve to (a headless Service's DNS
 * name gives one per pod, resolved at each use); the replica the key names hands it to its worker,
 * which compares the key in constant time as it does for a CancelRequest of its own.
 *
 * The channel is authenticated with a secret shared by the peers (HMAC-SHA256 over the whole
 * message), fresh (a timestamp within `MAX_SKEW_MS`) and not replayable (a nonce remembered for that
 * long). One message per TCP connection, like a CancelRequest; no answer.
 *
 *   "PGWC" | version 1 | timestamp ms (u64) | nonce (16) | pid (u32) | key length (u16) | key | HMAC (32)
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { Logger } from 'pino';
import { parseHostPort } from '../config/host-port';

const MAGIC = Buffer.from('PGWC');
const VERSION = 1;
const HEADER = 4 + 1 + 8 + 16 + 4 + 2;
const MAC = 32;
/** PostgreSQL 18 keys are at most 256 bytes. */
const MAX_KEY = 256;
export const MAX_MESSAGE = HEADER + MAX_KEY + MAC;
export const MAX_SKEW_MS = 30_000;

export interface ForwardedCancel {
  processId: number;
  secretKey: Buffer;
}

export function encodePeerCancel(secret: Buffer, c: ForwardedCancel, now = Date.now()): Buffer {
  if (c.secretKey.length > MAX_KEY) throw new RangeError('cancel key too long');
  const head = Buffer.alloc(HEADER);
  MAGIC.copy(head, 0);
  head[4] = VERSION;
  head.writeBigUInt64BE(BigInt(now), 5);
  randomBytes(16).copy(head, 13);
  head.writeUInt32BE(c.processId >>> 0, 29);
  head.writeUInt16BE(c.secretKey.length, 33);
  const body = Buffer.concat([head, c.secretKey]);
  return Buffer.concat([body, createHmac('sha256', secret).update(body).digest()]);
}

export type PeerVerdict =
  { ok: true; cancel: ForwardedCancel; nonce: string; at: number } | { ok: false; reason: string };

/** Checks shape, MAC and freshness (the caller checks the nonce). */
export function decodePeerCancel(secret: Buffer, msg: Buffer, now = Date.now()): PeerVerdict {
  if (msg.length < HEADER + MAC || msg.length > MAX_MESSAGE) return { ok: false, reason: 'bad length' };
  const keyLen = msg.readUInt16BE(33);
  if (msg.length !== HEADER + keyLen + MAC) return { ok: false, reason: 'bad length' };
  const body = msg.subarray(0, HEADER + keyLen);
  const mac = createHmac('sha256', secret).update(body).digest();
  if (!timingSafeEqual(mac, msg.subarray(HEADER + keyLen))) return { ok: false, reason: 'bad MAC' };
  if (!msg.subarray(0, 4).equals(MAGIC) || msg[4] !== VERSION) return { ok: false, reason: 'bad version' };
  const at = Number(msg.readBigUInt64BE(5));
  if (Math.abs(now - at) > MAX_SKEW_MS) return { ok: false, reason: 'stale' };
  return {
    ok: true,
    nonce: msg.subarray(13, 29).toString('hex'),
    at,
    cancel: {
      processId: msg.readUInt32BE(29),
      secretKey: Buffer.from(msg.subarray(HEADER, HEADER + keyLen)),
    },
  };
}

export interface PeerServerOptions {
  listen: string;
  secret: Buffer;
  timeoutMs: number;
  logger: Logger;
  /** A verified forward; the receiver checks that the key names this replica. */
  deliver(c: ForwardedCancel): void;
  onRefused?: (reason: string) => void;
}

/** Accepts forwarded cancels; anything that does not verify is dropped and logged. */
export async function startPeerServer(o: PeerServerOptions): Promise<net.Server & { port: number }> {
  const seen = new Map<string, number>();
  const server = net.createServer((s) => {
    const chunks: Buffer[] = [];
    let size = 0;
    s.setTimeout(o.timeoutMs, () => s.destroy());
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_MESSAGE) return s.destroy();
      chunks.push(c);
    });
    s.on('end', () => {
      s.end();
      const now = Date.now();
      const v = decodePeerCancel(o.secret, Buffer.concat(chunks), now);
      for (const [n, at] of seen) if (now - at > 2 * MAX_SKEW_MS) seen.delete(n);
      const reason = !v.ok ? v.reason : seen.has(v.nonce) ? 'replayed' : null;
      if (reason !== null || !v.ok) {
        o.logger.warn({ peer: s.remoteAddress, reason }, 'forwarded cancel refused');
        o.onRefused?.(reason ?? 'invalid');
        return;
      }
      seen.set(v.nonce, now);
      o.deliver(v.cancel);
    });
  });
  const addr = parseHostPort(o.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return Object.assign(server, { port: (server.address() as net.AddressInfo).port });
}

export interface PeerClientOptions {
  peers: readonly string[];
  secret: Buffer;
  timeoutMs: number;
  logger: Logger;
}

/** Sends a forward to every address of every peer; resolves true if at least one took it. */
export async function forwardToPeers(o: PeerClientOptions, c: ForwardedCancel): Promise<boolean> {
  const msg = encodePeerCancel(o.secret, c);
  const targets: Array<{ host: string; port: number }> = [];
  for (const p of o.peers) {
    const { host, port } = parseHostPort(p);
    try {
      for (const a of await lookup(host, { all: true })) targets.push({ host: a.address, port });
    } catch (err) {
      o.logger.warn({ peer: p, err: (err as Error).message }, 'peer name did not resolve');
    }
  }
  const sent = await Promise.all(targets.map((t) => sendOne(t, msg, o.timeoutMs)));
  return sent.some(Boolean);
}

function sendOne(t: { host: string; port: number }, msg: Buffer, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let sent = false;
    const s = net.connect(t);
    s.setTimeout(timeoutMs, () => s.destroy());
    s.on('error', () => undefined);
    s.on('connect', () => s.end(msg, () => (sent = true)));
    s.on('close', (hadError) => resolve(sent && !hadError));
    s.resume();
  });
}

/** The shared secret from the config (inline or a file), as bytes; null when not peered. */
export function peerSecret(
  c: { peer_secret?: string | undefined; peer_secret_file?: string | undefined },
  read: (f: string) => string,
): Buffer | null {
  if (c.peer_secret !== undefined) return Buffer.from(c.peer_secret, 'utf8');
  if (c.peer_secret_file !== undefined) return Buffer.from(read(c.peer_secret_file).trim(), 'utf8');
  return null;
}
