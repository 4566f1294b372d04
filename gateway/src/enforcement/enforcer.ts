/**
 * Enforcement in position. A denied message is replaced by a *sentinel* that makes the server
 * itself fail at that point (see deny.ts), so that PostgreSQL does what it always does on an error
 * (fails the transaction block, skips the rest of the pipeline up to Sync, sends one
 * ReadyForQuery); the enforcer remembers each sentinel's token and rewrites the one ErrorResponse
 * that carries it. A sentinel the server skipped (an earlier error in its cycle) never answers and
 * is settled when its cycle ends.
 */
import type { Decision } from '../policy/types';
import { MessageWriter, encodeBind, encodeErrorResponse, type ErrorFields } from '../protocol';
import { newSentinelToken, policyErrorFields, sentinelParse, sentinelQuery } from './deny';

interface Pending {
  cycle: number;
  /** A policy denial: its error replaces the server's. */
  decision: Decision | null;
  /** A Bind of a statement the server does not have: the server's own error, for this name. */
  statement: string | null;
}

export type DeniedType = 'Query' | 'Parse' | 'Bind' | 'FunctionCall';

export class Enforcer {
  private readonly pending = new Map<string, Pending>();

  get size(): number {
    return this.pending.size;
  }

  /**
   * The bytes to forward in place of a denied message. A Parse becomes a Parse of the same name
   * (an unnamed one drops the previous unnamed statement exactly as the real Parse would), a Bind a
   * Parse of a name nobody uses, a Query or FunctionCall a Query.
   */
  deny(type: DeniedType, decision: Decision, cycle: number, statementName: string): Buffer {
    const token = newSentinelToken();
    this.pending.set(token, { cycle, decision, statement: null });
    if (type === 'Parse') return sentinelParse(token, statementName);
    if (type === 'Bind') return sentinelParse(token, token);
    return sentinelQuery(token);
  }

  /**
   * A Bind of a named statement the server does not have: a Bind of a name nobody uses gets the
   * server's own 26000 ErrorResponse (prepared statement "…" does not exist), which is given back
   * with the client's name. Nothing can run, even if a statement pgward never saw has that name.
   */
  unknownStatement(name: string, cycle: number): Buffer {
    const token = newSentinelToken();
    this.pending.set(token, { cycle, decision: null, statement: name });
    return encodeBind('', token, []);
  }

  /**
   * The replacement for a backend ErrorResponse (its fields, as the session decoded them once)
   * with the SQLSTATE the client sees, or null to forward it as is.
   */
  rewrite(f: ErrorFields): { bytes: Buffer; code: string } | null {
    if (this.pending.size === 0) return null;
    for (const [token, p] of this.pending) {
      if (!f.message.includes(token)) continue;
      this.pending.delete(token);
      if (p.decision !== null) {
        const fields = policyErrorFields(p.decision);
        return { bytes: encodeErrorResponse(fields), code: fields.code };
      }
      const raw = { ...(f.raw ?? {}) };
      raw.M = f.message.split(token).join(p.statement ?? '');
      return { bytes: encodeRawError(raw), code: f.code };
    }
    return null;
  }

  /** Forgets the sentinels of every cycle up to `lastEnded` (answered or skipped). */
  settle(lastEnded: number): void {
    if (this.pending.size === 0) return;
    for (const [token, p] of this.pending) if (p.cycle <= lastEnded) this.pending.delete(token);
  }
}

/** An ErrorResponse with exactly these fields, in this order. */
function encodeRawError(raw: Record<string, string>): Buffer {
  const w = new MessageWriter(256);
  for (const [code, value] of Object.entries(raw)) w.int8(code.charCodeAt(0)).cstring(value);
  w.int8(0);
  return w.message('E');
}
