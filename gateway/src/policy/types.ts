/**
 * Contract: policy input document version 1 and the decision. Documented field by field in
 * docs/policy-input.md, with the JSON Schema in docs/policy-input.schema.json.
 */
import type { StatementInfo } from '../sql/types';
import type { ErrorCode } from '../errors';

export interface TlsInfo {
  enabled: boolean;
  version: string | null;
  cipher: string | null;
  client_cert_subject: string | null;
}

/**
 * The session's state as the server reported it (ParameterStatus; GUC_REPORT settings), for
 * policies and for the tripwires (gateway/src/policy/tripwires.ts). Every field is null until the
 * server reported it; booleans are the server's `on`/`off`.
 */
export interface ServerState {
  session_authorization: string | null;
  is_superuser: boolean | null;
  default_transaction_read_only: boolean | null;
  in_hot_standby: boolean | null;
  client_encoding: string | null;
  standard_conforming_strings: boolean | null;
  server_encoding: string | null;
  server_version: string | null;
}

export interface ConnectionInfo {
  id: string;
  client_addr: string;
  client_port: number;
  tls: TlsInfo;
  user: string;
  database: string;
  application_name: string | null;
  /** Every startup parameter, as sent (including `options`, `replication`). */
  parameters: Record<string, string>;
  /** `-c name=value` / `--name=value` settings parsed out of the `options` startup parameter. */
  options: Record<string, string>;
  protocol_version: string;
  authenticated: boolean;
  transaction_status: 'I' | 'T' | 'E';
  /**
   * What the server reported (see ServerState). Optional in this type until the session core
   * fills it; in the input document it is present from the first message after authentication.
   */
  server?: ServerState;
}

export interface BindParameter {
  type_oid: number;
  format: 'text' | 'binary';
  /** Decoded value for common types; base64 of the bytes otherwise; null for SQL NULL. */
  value: string | number | boolean | null;
  /** 'decoded' when value is the typed value, 'base64' when it is raw bytes. */
  /**
   * 'decoded' when value is the typed value, 'base64' when it is raw bytes, 'null' for SQL NULL,
   * 'omitted' when the active bundle declared that it does not read Bind values
   * (data.pgward.input_options.bind_parameter_values: false).
   */
  encoding: 'decoded' | 'base64' | 'null' | 'omitted';
}

export interface PreparedRef {
  name: string;
  sql: string;
  statements: StatementInfo[];
  parse_error: string | null;
}

export type MessageType = 'StartupMessage' | 'Query' | 'Parse' | 'Bind' | 'FunctionCall' | 'CopyData';

export interface MessageInfo {
  type: MessageType;
  /** SQL text for Query and Parse (bounded; see truncated). */
  sql?: string;
  truncated?: boolean;
  /** Parse: statement name ('' = unnamed) and declared parameter type OIDs. */
  statement_name?: string;
  param_types?: readonly number[];
  /** Bind: portal name, the statement it binds, its decoded parameters. */
  portal_name?: string;
  statement?: PreparedRef | null;
  parameters?: BindParameter[];
  /** FunctionCall: function OID and arguments. */
  function_oid?: number;
  arguments?: BindParameter[];
}

export interface InputDocument {
  version: 1;
  phase: 'startup' | 'message';
  connection: ConnectionInfo;
  message: MessageInfo;
  statements: StatementInfo[];
  parse_error: string | null;
  /**
   * The decision time (UTC), only in the document a bundle evaluates and only when its policy can
   * read `input.time` (policy/input-project.ts).
   */
  time?: { rfc3339: string; ns: number; weekday: number; hour: number; minute: number };
}

export interface Alert {
  rule: string;
  severity: string;
  message: string;
}

/** Why a decision denies: the rule that fired, its message, and its priority (lower first). */
export interface Denial {
  /** Rule id: lower-case `[a-z0-9_]` words joined by dots, at most 64 characters. */
  rule: string;
  message: string;
  priority: number;
}

/** The validated decision. Anything that fails validation becomes a deny with a stage code. */
export interface Decision {
  id: string;
  allow: boolean;
  /** Ordered as the policy returned them; empty when allowed by the policy. */
  denials: Denial[];
  /** The denials' messages, in the same order (the first one reaches the client). */
  reasons: string[];
  alerts: Alert[];
  sqlstate: string | null;
  /** Startup only: parameters pgward sets on the upstream session, overriding the client's. */
  session_parameters: Record<string, string>;
  /** Bundle revision that made the decision ('' when none was loaded). */
  revision: string;
  /** Set when the decision is a fail-closed deny caused by an error. */
  error_code: ErrorCode | null;
  /** Evaluation time in seconds. */
  eval_seconds: number;
}

export interface BundleInfo {
  revision: string;
  entrypoint: string;
  source: string;
  loaded_at: string;
  opa_version: string | null;
  /**
   * The input paths the bundle's policy can read (manifest `metadata.pgward.input_paths`, derived
   * at build time from the Rego AST: policy/input-paths.ts); null when the bundle does not say, and
   * then it gets the whole input document. The document a bundle evaluates holds only these paths.
   */
  input_paths?: string[][] | null;
}

/** What the session and the sidecar need from a policy engine. */
export interface PolicyEngine {
  /** Synchronous: evaluates with the active bundle. Never throws; failures come back as deny decisions. */
  evaluate(input: InputDocument): Decision;
  /** null when no bundle is active (then evaluate denies with PGWARD_ERR_POLICY_NO_BUNDLE). */
  bundle(): BundleInfo | null;
  /**
   * `d`, a decision this engine made, made again for a document equal to the one it judged: a new
   * id and time, counted as a decision-cache hit, without evaluating. null when this engine's
   * decisions may not be reused that way (they depend on more than the document: `time`,
   * `rand.intn`, a bundle without input paths). Absent: never (FrameJudge then always evaluates).
   */
  again?(d: Decision): Decision | null;
}
