/**
 * The JSON text of an input document: what the wasm policy parses, and the key of the engine's
 * decision cache. It is byte for byte `JSON.stringify(input)`, assembled from texts kept between
 * the messages of a session instead of serialising the whole document every time:
 *
 * - a connection's text is kept per ConnectionInfo object, together with the values of its fields
 *   when it was made; it is made again as soon as any field holds another value (a session sets
 *   `authenticated` and `transaction_status` as it goes). Nested objects (`tls`, `parameters`,
 *   `options`) must be deeply frozen for the text to be kept, so that a change inside them cannot go
 *   unnoticed; a connection with an unfrozen one is serialised every time;
 * - a deeply frozen list (the statements of a classification: shared by every session and
 *   deep-frozen, sql/frozen.ts) has its text kept per list.
 *
 * A stale text would make the policy judge facts that are no longer true, so the rules above are
 * conservative: anything not provably unchanged is serialised again.
 *
 * `inputKey` is the decision cache's key: the same document structure, with a kept connection
 * text or list text replaced by a number given to that text (never given to another text), so
 * that the key is short and cheap to hash. Connection and list texts are numbered by content, so equal
 * connections of different sessions share a number. Two documents with the same key have the same JSON
 * text; the converse need not hold (then the cache misses, and the policy is asked).
 */
import type { ConnectionInfo, InputDocument, MessageInfo, PreparedRef } from './types';

interface KeptText {
  text: string;
  /** `#<n>`: the text's number, unique in the process. */
  ref: string;
}

interface ConnectionText extends KeptText {
  /** The connection's own enumerable keys and values, in order, when `text` was made. */
  keys: string[];
  values: unknown[];
}

const connectionTexts = new WeakMap<ConnectionInfo, ConnectionText>();
const listTexts = new WeakMap<readonly unknown[], KeptText>();
let textSerial = 0;

function nextRef(): string {
  textSerial += 1;
  return `#${textSerial}`;
}

/**
 * Numbers texts by content, bounded: when full it starts again (later texts get new numbers;
 * keys made with the old ones just stop matching).
 */
const MAX_INTERNED = 4096;

function interner(): (text: string) => string {
  let interned = new Map<string, string>();
  return (text) => {
    let ref = interned.get(text);
    if (ref === undefined) {
      if (interned.size >= MAX_INTERNED) interned = new Map();
      ref = nextRef();
      interned.set(text, ref);
    }
    return ref;
  };
}

/**
 * Connection texts by content, so that two sessions whose connections read the same (the
 * bundle leaves out `id` and `client_port`: input_options.connection_identity) share one number,
 * hence their decisions.
 */
const internedRef = interner();

/**
 * List texts by content too: the cut of two classifications that differ only in what the bundle
 * does not read (the SQL text of `SELECT … WHERE aid = 1` and `… = 2`) is the same text, so the
 * same number and the same decision. Its own bound, so that churning lists never renumber
 * connections.
 */
const internedListRef = interner();

const quotedKeys = new Map<string, string>();

function quoted(key: string): string {
  let q = quotedKeys.get(key);
  if (q === undefined) {
    q = JSON.stringify(key);
    if (quotedKeys.size < 256) quotedKeys.set(key, q);
  }
  return q;
}

function unchanged(c: ConnectionInfo, kept: ConnectionText): boolean {
  const rec = c as unknown as Record<string, unknown>;
  const { keys, values } = kept;
  let i = 0;
  for (const k in rec) {
    if (i >= keys.length || k !== keys[i] || rec[k] !== values[i]) return false;
    i++;
  }
  return i === keys.length;
}

/** Frozen, and so is every object inside it. */
function deeplyFrozen(v: object): boolean {
  if (!Object.isFrozen(v)) return false;
  for (const x of Object.values(v)) if (x !== null && typeof x === 'object' && !deeplyFrozen(x)) return false;
  return true;
}

/** The connection's kept text, or null when it cannot be kept (see the module comment). */
function keptConnection(c: ConnectionInfo): ConnectionText | null {
  const kept = connectionTexts.get(c);
  if (kept !== undefined && unchanged(c, kept)) return kept;
  const rec = c as unknown as Record<string, unknown>;
  const keys: string[] = [];
  const values: unknown[] = [];
  for (const k in rec) {
    const v = rec[k];
    if (v !== null && typeof v === 'object' && !deeplyFrozen(v)) return null;
    keys.push(k);
    values.push(v);
  }
  const text = JSON.stringify(c);
  const made: ConnectionText = { keys, values, text, ref: internedRef(text) };
  connectionTexts.set(c, made);
  return made;
}

/** The connection's JSON text; kept while none of its fields changes (see the module comment). */
export function connectionJson(c: ConnectionInfo): string {
  return keptConnection(c)?.text ?? JSON.stringify(c);
}

function keptList(list: readonly unknown[]): KeptText | null {
  if (!Object.isFrozen(list)) return null;
  let kept = listTexts.get(list);
  if (kept === undefined) {
    if (!deeplyFrozen(list)) return null;
    const text = JSON.stringify(list);
    kept = { text, ref: internedListRef(text) };
    listTexts.set(list, kept);
  }
  return kept;
}

/** A list's JSON text; kept per list when the list is deeply frozen. */
export function listJson(list: readonly unknown[]): string {
  return keptList(list)?.text ?? JSON.stringify(list);
}

type Part = (v: unknown, key: boolean) => string;

function connectionPart(v: unknown, key: boolean): string {
  const kept = keptConnection(v as ConnectionInfo);
  if (kept === null) return JSON.stringify(v);
  return key ? kept.ref : kept.text;
}

function listPart(v: unknown, key: boolean): string {
  const kept = Array.isArray(v) ? keptList(v) : null;
  if (kept === null) return JSON.stringify(v);
  return key ? kept.ref : kept.text;
}

function plain(v: unknown): string {
  return JSON.stringify(v);
}

/** An object's JSON text with the parts named in `parts` made by their function. */
function objectText(o: object, parts: ReadonlyMap<string, Part>, key: boolean): string {
  let s = '{';
  let sep = '';
  const rec = o as Record<string, unknown>;
  for (const k in rec) {
    const v = rec[k];
    if (v === undefined) continue;
    const part = parts.get(k);
    s += sep + quoted(k) + ':' + (part === undefined ? plain(v) : part(v, key));
    sep = ',';
  }
  return s + '}';
}

const PREPARED_PARTS = new Map<string, Part>([['statements', listPart]]);

function preparedPart(v: unknown, key: boolean): string {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return JSON.stringify(v);
  return objectText(v as PreparedRef, PREPARED_PARTS, key);
}

const MESSAGE_PARTS = new Map<string, Part>([['statement', preparedPart]]);

function messagePart(v: unknown, key: boolean): string {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return JSON.stringify(v);
  return objectText(v as MessageInfo, MESSAGE_PARTS, key);
}

const INPUT_PARTS = new Map<string, Part>([
  ['connection', connectionPart],
  ['message', messagePart],
  ['statements', listPart],
]);

/** `JSON.stringify(input)`, from kept texts where they are sound. */
export function inputJson(input: InputDocument): string {
  return objectText(input, INPUT_PARTS, false);
}

/**
 * The decision cache's key for `input`: equal keys mean equal JSON texts (kept texts appear as
 * their numbers, which JSON text cannot start with).
 */
export function inputKey(input: InputDocument): string {
  return objectText(input, INPUT_PARTS, true);
}
