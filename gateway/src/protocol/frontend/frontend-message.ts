/**
 * Decode once: every client frame becomes one `FrontendMessage`, a closed union named as in the
 * PostgreSQL documentation (https://www.postgresql.org/docs/current/protocol-message-formats.html),
 * discriminated by `name`. Each message keeps `bytes`, its original frame (a view of what the framer
 * returned, no copy), for forwarding byte for byte, audit and capture.
 *
 * Each reader accepts what PostgreSQL accepts and refuses what it refuses (see each file).
 */
import { assertNever, ErrorCodes } from '../../errors';
import { ProtocolError } from '../errors';
import type { FrontendFrame } from '../framing';
import { FrontendType } from '../message-types';
import { readBind, type Bind } from './bind';
import { readFunctionCall, type FunctionCall } from './function-call';
import { readParse, type Parse } from './parse';
import {
  readClose,
  readDescribe,
  readExecute,
  type Close,
  type Describe,
  type Execute,
} from './portal-messages';
import { readQuery, type Query } from './query';
import { readSASLInitialResponse, type SASLInitialResponse } from './sasl-initial-response';
import {
  readCopyData,
  readCopyDone,
  readCopyFail,
  readFlush,
  readGSSResponse,
  readPasswordMessage,
  readSASLResponse,
  readSync,
  readTerminate,
  type CopyData,
  type CopyDone,
  type CopyFail,
  type Flush,
  type GSSResponse,
  type PasswordMessage,
  type SASLResponse,
  type Sync,
  type Terminate,
} from './simple-messages';
import { readStartupPacket, type StartupPacket } from './startup';

/** The four messages that share type byte 'p'; which one it is depends on the authentication exchange. */
export type AuthenticationResponseName =
  'PasswordMessage' | 'SASLInitialResponse' | 'SASLResponse' | 'GSSResponse';

export type AuthenticationResponse = PasswordMessage | SASLInitialResponse | SASLResponse | GSSResponse;

/** Every message a client sends, startup-phase packets included. */
export type FrontendMessage =
  | StartupPacket
  | Query
  | Parse
  | Bind
  | Execute
  | Describe
  | Close
  | Sync
  | Flush
  | Terminate
  | CopyData
  | CopyDone
  | CopyFail
  | FunctionCall
  | AuthenticationResponse;

export type FrontendMessageName = FrontendMessage['name'];

/** The messages that carry SQL or a call, and so get a policy decision (policy/frame-judge.ts). */
export type JudgedMessage = Query | Parse | Bind | FunctionCall;

export interface ReadFrontendOptions {
  /**
   * How to read a 'p' frame: the session knows from the server's last Authentication request
   * (cleartext/MD5 → PasswordMessage, AuthenticationSASL → SASLInitialResponse, SASLContinue →
   * SASLResponse, GSS/SSPI → GSSResponse). Default: PasswordMessage.
   */
  readonly authentication?: AuthenticationResponseName;
}

function readAuthenticationResponse(bytes: Buffer, kind: AuthenticationResponseName): AuthenticationResponse {
  switch (kind) {
    case 'PasswordMessage':
      return readPasswordMessage(bytes);
    case 'SASLInitialResponse':
      return readSASLInitialResponse(bytes);
    case 'SASLResponse':
      return readSASLResponse(bytes);
    case 'GSSResponse':
      return readGSSResponse(bytes);
    default:
      return assertNever(kind, 'authentication response');
  }
}

/**
 * Decodes one client frame as returned by FrontendFramer (type 0: an untyped startup-phase
 * packet). Throws ProtocolError for anything PostgreSQL would refuse to read.
 */
export function readFrontendMessage(frame: FrontendFrame, options?: ReadFrontendOptions): FrontendMessage {
  const bytes = frame.bytes;
  switch (frame.type) {
    case 0:
      return readStartupPacket(bytes);
    case FrontendType.Query:
      return readQuery(bytes, 5, frame.ab ?? null, frame.at ?? 0);
    case FrontendType.Parse:
      return readParse(bytes, 5, frame.ab ?? null, frame.at ?? 0);
    case FrontendType.Bind:
      return readBind(bytes, 5, frame.ab ?? null, frame.at ?? 0);
    case FrontendType.Execute:
      return readExecute(bytes);
    case FrontendType.Describe:
      return readDescribe(bytes);
    case FrontendType.Close:
      return readClose(bytes);
    case FrontendType.Sync:
      return readSync(bytes);
    case FrontendType.Flush:
      return readFlush(bytes);
    case FrontendType.Terminate:
      return readTerminate(bytes);
    case FrontendType.CopyData:
      return readCopyData(bytes);
    case FrontendType.CopyDone:
      return readCopyDone(bytes);
    case FrontendType.CopyFail:
      return readCopyFail(bytes);
    case FrontendType.FunctionCall:
      return readFunctionCall(bytes);
    case FrontendType.PasswordMessage:
      return readAuthenticationResponse(bytes, options?.authentication ?? 'PasswordMessage');
    default:
      throw new ProtocolError(
        ErrorCodes.PROTOCOL_UNKNOWN_MESSAGE,
        `invalid frontend message type ${frame.type}`,
      );
  }
}
