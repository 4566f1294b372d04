/**
 * The one boundary where whatever the policy returned becomes a Decision. The shape is closed:
 * unknown keys, wrong types, or strings that could not travel safely in a protocol message (NUL)
 * turn the result into a deny with a stage code.
 */
import { ErrorCodes, type ErrorCode } from '../errors';
import type { Alert, Decision, Denial } from './types';

/** A decision before the engine stamps it with an id, the bundle revision and the evaluation time. */
export type DecisionBody = Omit<Decision, 'id' | 'revision' | 'eval_seconds'>;

export interface ParsedDecision {
  body: DecisionBody;
  /** Why the result was refused (for logs only); null when it was valid. */
  error: string | null;
}

const DECISION_KEYS = new Set(['allow', 'denials', 'reasons', 'alerts', 'sqlstate', 'session_parameters']);
const ALERT_KEYS = ['rule', 'severity', 'message'] as const;
const DENIAL_KEYS = new Set(['rule', 'message', 'priority']);
/** A rule id: lower-case words of [a-z0-9_] joined by dots, at most 64 characters. */
export const RULE_ID = /^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*$/;
const MAX_RULE_ID = 64;
/** The rule id of each string of a version 1 `reasons` list (policies written before denials). */
export const UNNAMED_RULE = 'unnamed';
/** The rule id of a deny pgward decides itself (a stage code): `pgward.` and the code's name. */
export function gatewayRuleId(code: ErrorCode): string {
  return `pgward.${code.replace(/^PGWARD_ERR_/, '').toLowerCase()}`;
}

/** A denial pgward makes itself, named after its stage code. */
export function gatewayDenial(code: ErrorCode | null, message: string): Denial {
  return { rule: code === null ? 'pgward.deny' : gatewayRuleId(code), message, priority: 0 };
}
const SQLSTATE = /^[0-9A-Z]{5}$/;
const SESSION_PARAMETER_NAME = /^[a-z_][a-z0-9_.]*$/;
const MAX_LIST = 1000;
const MAX_SESSION_PARAMETERS = 64;
const MAX_STRING = 8192;

/** A deny carrying a stage code; `error` keeps the detail for the logs. */
export function denyBody(code: ErrorCode, error: string): ParsedDecision {
  return {
    body: {
      allow: false,
      denials: [],
      reasons: [],
      alerts: [],
      sqlstate: null,
      session_parameters: {},
      error_code: code,
    },
    error,
  };
}

function bad(detail: string): ParsedDecision {
  return denyBody(ErrorCodes.POLICY_BAD_DECISION, `bad decision: ${detail}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkString(v: unknown): v is string {
  return typeof v === 'string' && v.length <= MAX_STRING && !v.includes('\0');
}

/**
 * Validates an opa-wasm result set (`[{result: <decision>}]`; `[]` means undefined) or, when
 * `raw` is not an array, nothing else: every other shape is a deny.
 */
export function parseDecision(raw: unknown): ParsedDecision {
  if (!Array.isArray(raw)) return bad('result set is not an array');
  if (raw.length === 0) return denyBody(ErrorCodes.POLICY_UNDEFINED, 'decision is undefined');
  if (raw.length !== 1) return bad(`result set has ${raw.length} entries`);
  const entry: unknown = raw[0];
  if (!isPlainObject(entry) || !Object.prototype.hasOwnProperty.call(entry, 'result')) {
    return denyBody(ErrorCodes.POLICY_UNDEFINED, 'decision is undefined');
  }
  return parseDecisionValue(entry['result']);
}

/** Validates the decision object itself. */
export function parseDecisionValue(value: unknown): ParsedDecision {
  if (value === undefined) return denyBody(ErrorCodes.POLICY_UNDEFINED, 'decision is undefined');
  if (!isPlainObject(value)) return bad(`decision is ${describe(value)}, not an object`);
  for (const key of Object.keys(value)) {
    if (!DECISION_KEYS.has(key)) return bad(`unknown key ${JSON.stringify(key)}`);
  }

  const allow = value['allow'];
  if (typeof allow !== 'boolean') return bad(`allow is ${describe(allow)}, not a boolean`);

  const denials = parseDenials(value['denials'], value['reasons']);
  if (typeof denials === 'string') return bad(denials);
  // A version 1 `reasons` list may accompany an allow (it did before denials); `denials` may not.
  if (allow && value['denials'] !== undefined && denials.length > 0)
    return bad('an allowing decision has denials');

  const alerts: Alert[] = [];
  const rawAlerts = value['alerts'];
  if (rawAlerts !== undefined) {
    if (!Array.isArray(rawAlerts) || rawAlerts.length > MAX_LIST) return bad('alerts is not an array');
    for (const a of rawAlerts) {
      if (!isPlainObject(a) || Object.keys(a).length !== ALERT_KEYS.length) {
        return bad('alert is not an object {rule, severity, message}');
      }
      const [rule, severity, message] = ALERT_KEYS.map((k) => a[k]);
      if (!checkString(rule) || !checkString(severity) || !checkString(message)) {
        return bad('alert is not an object {rule, severity, message} of strings');
      }
      alerts.push({ rule, severity, message });
    }
  }

  let sqlstate: string | null = null;
  const rawSqlstate = value['sqlstate'];
  if (rawSqlstate !== undefined && rawSqlstate !== null) {
    if (typeof rawSqlstate !== 'string' || !SQLSTATE.test(rawSqlstate)) {
      return bad('sqlstate is not 5 characters [0-9A-Z]');
    }
    sqlstate = rawSqlstate;
  }

  const session_parameters: Record<string, string> = {};
  const rawParams = value['session_parameters'];
  if (rawParams !== undefined) {
    if (!isPlainObject(rawParams)) return bad('session_parameters is not an object');
    const names = Object.keys(rawParams);
    if (names.length > MAX_SESSION_PARAMETERS) return bad('too many session_parameters');
    for (const name of names) {
      if (name.length > 63 || !SESSION_PARAMETER_NAME.test(name)) {
        return bad(`session parameter name ${JSON.stringify(name)} is not allowed`);
      }
      const v = rawParams[name];
      if (!checkString(v)) return bad(`session parameter ${name} is not a string without NUL`);
      session_parameters[name] = v;
    }
  }

  const reasons = denials.map((d) => d.message);
  return {
    body: { allow, denials, reasons, alerts, sqlstate, session_parameters, error_code: null },
    error: null,
  };
}

function isRuleId(v: unknown): v is string {
  return typeof v === 'string' && v.length <= MAX_RULE_ID && RULE_ID.test(v);
}

/**
 * `denials` ([{rule, message, priority}]), or, for policies written against the first decision
 * shape, `reasons` ([string], each under the rule id `unnamed`); never both. Returns the denials
 * in the policy's order, or why they are malformed.
 */
function parseDenials(rawDenials: unknown, rawReasons: unknown): Denial[] | string {
  if (rawDenials !== undefined && rawReasons !== undefined) return 'both denials and reasons';
  const denials: Denial[] = [];
  if (rawReasons !== undefined) {
    if (!Array.isArray(rawReasons) || rawReasons.length > MAX_LIST)
      return 'reasons is not an array of strings';
    for (const r of rawReasons) {
      if (!checkString(r)) return 'reasons is not an array of strings';
      denials.push({ rule: UNNAMED_RULE, message: r, priority: 0 });
    }
    return denials;
  }
  if (rawDenials === undefined) return denials;
  if (!Array.isArray(rawDenials) || rawDenials.length > MAX_LIST) return 'denials is not an array';
  for (const d of rawDenials) {
    if (
      !isPlainObject(d) ||
      Object.keys(d).length !== DENIAL_KEYS.size ||
      !Object.keys(d).every((k) => DENIAL_KEYS.has(k))
    )
      return 'denial is not an object {rule, message, priority}';
    const { rule, message, priority } = d;
    if (!isRuleId(rule))
      return `denial rule ${JSON.stringify(rule)} is not a rule id (${RULE_ID.source}, at most ${MAX_RULE_ID})`;
    if (!checkString(message) || message === '') return `denial ${rule} has no message string without NUL`;
    if (typeof priority !== 'number' || !Number.isSafeInteger(priority))
      return `denial ${rule} has a priority that is not an integer`;
    denials.push({ rule, message, priority });
  }
  return denials;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}
