/**
 * Message type bytes by direction, named as in the PostgreSQL documentation
 * (https://www.postgresql.org/docs/current/protocol-message-formats.html). The same byte means
 * different things from the client and from the server, so the two tables are separate.
 */
export const FrontendType = {
  Bind: 0x42, // 'B'
  Close: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyFail: 0x66, // 'f'
  Describe: 0x44, // 'D'
  Execute: 0x45, // 'E'
  Flush: 0x48, // 'H'
  FunctionCall: 0x46, // 'F'
  /** PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse all use 'p'. */
  PasswordMessage: 0x70, // 'p'
  Parse: 0x50, // 'P'
  Query: 0x51, // 'Q'
  Sync: 0x53, // 'S'
  Terminate: 0x58, // 'X'
} as const;

export const BackendType = {
  Authentication: 0x52, // 'R'
  BackendKeyData: 0x4b, // 'K'
  BindComplete: 0x32, // '2'
  CloseComplete: 0x33, // '3'
  CommandComplete: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyInResponse: 0x47, // 'G'
  CopyOutResponse: 0x48, // 'H'
  CopyBothResponse: 0x57, // 'W'
  DataRow: 0x44, // 'D'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  FunctionCallResponse: 0x56, // 'V'
  NegotiateProtocolVersion: 0x76, // 'v'
  NoData: 0x6e, // 'n'
  NoticeResponse: 0x4e, // 'N'
  NotificationResponse: 0x41, // 'A'
  ParameterDescription: 0x74, // 't'
  ParameterStatus: 0x53, // 'S'
  ParseComplete: 0x31, // '1'
  PortalSuspended: 0x73, // 's'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
} as const;

function invert(table: Record<string, number>): Array<string | undefined> {
  const out: Array<string | undefined> = new Array(256).fill(undefined);
  for (const [name, code] of Object.entries(table)) out[code] = name;
  return out;
}

const frontendNames = invert(FrontendType);
const backendNames = invert(BackendType);

/** Documentation name of a frontend message type byte, or undefined when unknown. */
export function frontendTypeName(code: number): string | undefined {
  return frontendNames[code];
}

export function backendTypeName(code: number): string | undefined {
  return backendNames[code];
}

/** Untyped startup-phase request codes (the int32 after the length). */
export const StartupCode = {
  /** 1234.5678 */
  CancelRequest: 80877102,
  /** 1234.5679 */
  SSLRequest: 80877103,
  /** 1234.5680 */
  GSSENCRequest: 80877104,
} as const;

export const PROTOCOL_3_0 = 0x00030000;
export const PROTOCOL_3_2 = 0x00030002;

/**
 * Backend messages a pgward session reads whole, because they change its state or may be
 * rewritten: Authentication (SASL mechanisms), BackendKeyData (replaced by pgward's key),
 * ReadyForQuery (transaction status), ErrorResponse (denials in position), COPY responses
 * (COPY IN mode), NegotiateProtocolVersion. Everything else (DataRow above all) is skipped by length.
 */
export const SESSION_INSPECTED_BACKEND_TYPES: readonly number[] = [
  BackendType.Authentication,
  BackendType.BackendKeyData,
  BackendType.ReadyForQuery,
  BackendType.ErrorResponse,
  BackendType.CopyInResponse,
  BackendType.CopyBothResponse,
  BackendType.NegotiateProtocolVersion,
];

/** A 256-entry flag table (index = type byte) for BackendScanner. */
export function typeTable(types: readonly number[]): Uint8Array {
  const t = new Uint8Array(256);
  for (const x of types) t[x] = 1;
  return t;
}
