/**
 * Decode once, server side: every backend message the session inspects becomes one
 * `BackendMessage`, a closed union named as in the PostgreSQL documentation
 * (https://www.postgresql.org/docs/current/protocol-message-formats.html), discriminated by `name`,
 * each with `bytes`, the original message (a view, no copy). DataRow is part of the union but never
 * decoded: on the hot path BackendScanner skips it by its type byte and never calls this.
 */
import { ErrorCodes } from '../../errors';
import { ProtocolError } from '../errors';
import { BackendType } from '../message-types';
import { readAuthenticationMessage, type AuthenticationMessage } from './authentication';
import { readBackendKeyData, type BackendKeyData } from './backend-key-data';
import { readCommandComplete, type CommandComplete } from './command-complete';
import {
  readCopyBothResponse,
  readCopyInResponse,
  readCopyOutResponse,
  type CopyBothResponse,
  type CopyInResponse,
  type CopyOutResponse,
} from './copy-response';
import {
  readEmptyBackendMessage,
  type BackendCopyDone,
  type BindComplete,
  type CloseComplete,
  type EmptyQueryResponse,
  type NoData,
  type ParseComplete,
  type PortalSuspended,
} from './empty-messages';
import {
  readErrorResponse,
  readNoticeResponse,
  type ErrorResponse,
  type NoticeResponse,
} from './error-response';
import { readNegotiateProtocolVersion, type NegotiateProtocolVersion } from './negotiate-protocol-version';
import {
  readBackendCopyData,
  readDataRow,
  readFunctionCallResponse,
  readNotificationResponse,
  type BackendCopyData,
  type DataRow,
  type FunctionCallResponse,
  type NotificationResponse,
} from './other-messages';
import { readParameterDescription, type ParameterDescription } from './parameter-description';
import { readParameterStatusMessage, type ParameterStatus } from './parameter-status';
import { readReadyForQueryMessage, type ReadyForQuery } from './ready-for-query';
import { readRowDescription, type RowDescription } from './row-description';

export type BackendMessage =
  | AuthenticationMessage
  | BackendKeyData
  | BindComplete
  | CloseComplete
  | CommandComplete
  | BackendCopyData
  | BackendCopyDone
  | CopyInResponse
  | CopyOutResponse
  | CopyBothResponse
  | DataRow
  | EmptyQueryResponse
  | ErrorResponse
  | FunctionCallResponse
  | NegotiateProtocolVersion
  | NoData
  | NoticeResponse
  | NotificationResponse
  | ParameterDescription
  | ParameterStatus
  | ParseComplete
  | PortalSuspended
  | ReadyForQuery
  | RowDescription;

export type BackendMessageName = BackendMessage['name'];

/**
 * Decodes one whole backend message (type byte, length word, body; `msg.length` must equal
 * length + 1, as BackendScanner hands them over). Throws ProtocolError: PROTOCOL_MALFORMED for a
 * body that does not read exactly, UPSTREAM_PROTOCOL for an unknown type byte or a bad length word.
 */
export interface ReadBackendOptions {
  /** The negotiated protocol minor version (0 for 3.0, 2 for 3.2), when known: fixes BackendKeyData's key length. */
  readonly protocolMinor?: number;
}

export function readBackendMessage(msg: Buffer, options?: ReadBackendOptions): BackendMessage {
  if (msg.length < 5 || msg.readInt32BE(1) !== msg.length - 1) {
    throw new ProtocolError(ErrorCodes.UPSTREAM_PROTOCOL, 'backend message length does not match its bytes');
  }
  const type = msg[0] as number;
  switch (type) {
    case BackendType.Authentication:
      return readAuthenticationMessage(msg);
    case BackendType.BackendKeyData:
      return readBackendKeyData(msg, options?.protocolMinor);
    case BackendType.BindComplete:
      return readEmptyBackendMessage(msg, 'BindComplete');
    case BackendType.CloseComplete:
      return readEmptyBackendMessage(msg, 'CloseComplete');
    case BackendType.CommandComplete:
      return readCommandComplete(msg);
    case BackendType.CopyData:
      return readBackendCopyData(msg);
    case BackendType.CopyDone:
      return readEmptyBackendMessage(msg, 'CopyDone');
    case BackendType.CopyInResponse:
      return readCopyInResponse(msg);
    case BackendType.CopyOutResponse:
      return readCopyOutResponse(msg);
    case BackendType.CopyBothResponse:
      return readCopyBothResponse(msg);
    case BackendType.DataRow:
      return readDataRow(msg);
    case BackendType.EmptyQueryResponse:
      return readEmptyBackendMessage(msg, 'EmptyQueryResponse');
    case BackendType.ErrorResponse:
      return readErrorResponse(msg);
    case BackendType.FunctionCallResponse:
      return readFunctionCallResponse(msg);
    case BackendType.NegotiateProtocolVersion:
      return readNegotiateProtocolVersion(msg);
    case BackendType.NoData:
      return readEmptyBackendMessage(msg, 'NoData');
    case BackendType.NoticeResponse:
      return readNoticeResponse(msg);
    case BackendType.NotificationResponse:
      return readNotificationResponse(msg);
    case BackendType.ParameterDescription:
      return readParameterDescription(msg);
    case BackendType.ParameterStatus:
      return readParameterStatusMessage(msg);
    case BackendType.ParseComplete:
      return readEmptyBackendMessage(msg, 'ParseComplete');
    case BackendType.PortalSuspended:
      return readEmptyBackendMessage(msg, 'PortalSuspended');
    case BackendType.ReadyForQuery:
      return readReadyForQueryMessage(msg);
    case BackendType.RowDescription:
      return readRowDescription(msg);
    default:
      throw new ProtocolError(ErrorCodes.UPSTREAM_PROTOCOL, `unknown backend message type ${type}`);
  }
}
