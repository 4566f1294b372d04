/**
 * CommandComplete ('C'): the command tag, a String. The tags that carry a row count are those of
 * PostgreSQL's BuildQueryCompletionString (src/backend/tcop/cmdtag.c, cmdtaglist.h with
 * display_rowcount): "INSERT 0 <rows>" (the 0 was the OID), "SELECT|UPDATE|DELETE|MERGE|FETCH|MOVE|COPY
 * <rows>". https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COMMANDCOMPLETE
 */
import { malformed } from '../errors';
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export interface CommandComplete {
  readonly name: 'CommandComplete';
  /** The original message (a view). */
  readonly bytes: Buffer;
  /**
   * The whole tag as sent, e.g. "INSERT 0 3", "PREPARE", "DEALLOCATE ALL" (its command and row
   * count: parseCommandTag; not split here, as the session reads one per statement and never
   * needs them).
   */
  readonly tag: string;
}

const ROW_COUNT_TAGS = new Set(['SELECT', 'UPDATE', 'DELETE', 'MERGE', 'FETCH', 'MOVE', 'COPY']);
const DIGITS = /^[0-9]+$/;

/**
 * Splits a tag into its command (the tag without its counts, e.g. "INSERT", "CREATE TABLE") and
 * row count (INSERT/UPDATE/DELETE/SELECT/MERGE/COPY/FETCH/MOVE; null for tags without one, or not
 * as PostgreSQL writes them). PostgreSQL counts in uint64; a count above 2^53 loses precision.
 */
export function parseCommandTag(tag: string): { command: string; rows: number | null } {
  const sp = tag.lastIndexOf(' ');
  if (sp > 0) {
    const count = tag.slice(sp + 1);
    const head = tag.slice(0, sp);
    if (DIGITS.test(count)) {
      if (ROW_COUNT_TAGS.has(head)) return { command: head, rows: Number(count) };
      // INSERT <oid> <rows>
      const sp2 = head.lastIndexOf(' ');
      if (sp2 > 0 && head.slice(0, sp2) === 'INSERT' && DIGITS.test(head.slice(sp2 + 1)))
        return { command: 'INSERT', rows: Number(count) };
    }
  }
  return { command: tag, rows: null };
}

export function readCommandComplete(msg: Buffer): CommandComplete {
  const r = new BodyReader(msg, 5);
  const tag = r.cstring();
  r.done('CommandComplete');
  return { name: 'CommandComplete', bytes: msg, tag };
}

/**
 * Checks in place that `source[start, end)` (a whole CommandComplete, header included) is what
 * readCommandComplete accepts (one String, nothing after it), with its errors, without making a
 * view or the tag's string: for an answer whose tag nobody reads (session/pipeline.ts wantsTag).
 * The length word is not checked here: BackendScanner hands over whole messages only, `end` being
 * the message's start + its length word + 1.
 */
export function checkCommandCompleteAt(source: Buffer, start: number, end: number): void {
  let nul = start + 5;
  while (nul < end && source[nul] !== 0) nul++;
  if (nul >= end) throw malformed('string not terminated');
  if (nul !== end - 1) throw malformed(`CommandComplete: ${end - 1 - nul} trailing bytes`);
}

export function encodeCommandComplete(tag: string): Buffer {
  return new MessageWriter(tag.length + 8).cstring(tag).message('C');
}
