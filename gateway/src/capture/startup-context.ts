/**
 * The connection context the session derives from a StartupMessage (user, database defaulting to
 * the user, application_name, `options` switches, protocol version), for captures that carry only
 * the packet (pcap import). Mirrors Session.onStartupMessage.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-STARTUPMESSAGE
 */
import type { TlsInfo } from '../policy/types';
import { parseStartupOptions } from '../protocol/frontend/startup';
import { readFrontendMessage } from '../protocol/frontend/frontend-message';
import type { ConnectionRecord } from './format';

export const NO_TLS: TlsInfo = { enabled: false, version: null, cipher: null, client_cert_subject: null };

/** null when the packet is not a StartupMessage (SSLRequest, CancelRequest…). Throws ProtocolError when malformed. */
export function connectionFromStartup(
  t: number,
  id: string,
  packet: Buffer,
  peer: { client_addr: string; client_port: number; tls?: TlsInfo },
): ConnectionRecord | null {
  const m = readFrontendMessage({ type: 0, bytes: packet, bodyOffset: 4 });
  if (m.name !== 'StartupMessage') return null;
  const params: Record<string, string> = {};
  for (const [k, v] of m.parameters) params[k] = v;
  const user = params.user ?? '';
  return {
    t,
    conn: id,
    ev: 'connection',
    client_addr: peer.client_addr.startsWith('::ffff:') ? peer.client_addr.slice(7) : peer.client_addr,
    client_port: peer.client_port,
    tls: { ...(peer.tls ?? NO_TLS) },
    user,
    database: params.database ?? user,
    application_name: params.application_name ?? null,
    parameters: params,
    options: params.options ? parseStartupOptions(params.options) : {},
    protocol_version: `3.${m.protocolVersion & 0xffff}`,
  };
}
