import { isIPv4, isIPv6 } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

/** Host used for `:port`: every IPv4 interface. */
export const ANY_HOST = '0.0.0.0';

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

export type HostPortResult = { ok: true; value: HostPort } | { ok: false; reason: string };

function parsePort(s: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(s)) return undefined;
  const port = Number(s);
  return port <= 65535 ? port : undefined;
}

/**
 * Parses `host:port`, `[ipv6]:port` or `:port` (all IPv4 interfaces). Port 0 is accepted (the OS picks a
 * free port when listening). IPv6 addresses must be in brackets.
 */
export function tryParseHostPort(s: string): HostPortResult {
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s[close + 1] !== ':') return { ok: false, reason: 'expected [ipv6]:port' };
    host = s.slice(1, close);
    portText = s.slice(close + 2);
    if (!isIPv6(host)) return { ok: false, reason: 'expected an IPv6 address inside [ ]' };
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) return { ok: false, reason: 'expected host:port' };
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) return { ok: false, reason: 'IPv6 addresses must be written as [addr]:port' };
    if (host === '') host = ANY_HOST;
    else if (/^[0-9.]+$/.test(host) ? !isIPv4(host) : !HOSTNAME.test(host)) {
      return { ok: false, reason: 'expected a host name or an IP address before the port' };
    }
  }
  const port = parsePort(portText);
  if (port === undefined) return { ok: false, reason: 'expected a port from 0 to 65535' };
  return { ok: true, value: { host, port } };
}

/** Like tryParseHostPort, throwing an Error whose message names the bad text. */
export function parseHostPort(s: string): HostPort {
  const r = tryParseHostPort(s);
  if (!r.ok) throw new Error(`invalid address ${JSON.stringify(s)}: ${r.reason}`);
  return r.value;
}
