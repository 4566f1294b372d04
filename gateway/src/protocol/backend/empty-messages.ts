/**
 * Backend messages with an empty body: ParseComplete ('1'), BindComplete ('2'), CloseComplete ('3'),
 * NoData ('n'), PortalSuspended ('s'), EmptyQueryResponse ('I'), CopyDone ('c'). A body is refused
 * (libpq checks that every message it reads is consumed exactly to its length).
 */
import { BodyReader } from '../reader';
import { MessageWriter } from '../writer';

export type EmptyBackendMessageName =
  | 'ParseComplete'
  | 'BindComplete'
  | 'CloseComplete'
  | 'NoData'
  | 'PortalSuspended'
  | 'EmptyQueryResponse'
  | 'CopyDone';

export interface EmptyBackendMessage<N extends EmptyBackendMessageName> {
  readonly name: N;
  /** The original message (a view). */
  readonly bytes: Buffer;
}

export type ParseComplete = EmptyBackendMessage<'ParseComplete'>;
export type BindComplete = EmptyBackendMessage<'BindComplete'>;
export type CloseComplete = EmptyBackendMessage<'CloseComplete'>;
export type NoData = EmptyBackendMessage<'NoData'>;
export type PortalSuspended = EmptyBackendMessage<'PortalSuspended'>;
export type EmptyQueryResponse = EmptyBackendMessage<'EmptyQueryResponse'>;
export type BackendCopyDone = EmptyBackendMessage<'CopyDone'>;

export function readEmptyBackendMessage<N extends EmptyBackendMessageName>(
  msg: Buffer,
  name: N,
): EmptyBackendMessage<N> {
  new BodyReader(msg, 5).done(name);
  return { name, bytes: msg };
}

export const encodeParseComplete = (): Buffer => new MessageWriter(0).message('1');
export const encodeBindComplete = (): Buffer => new MessageWriter(0).message('2');
export const encodeCloseComplete = (): Buffer => new MessageWriter(0).message('3');
export const encodeNoData = (): Buffer => new MessageWriter(0).message('n');
export const encodePortalSuspended = (): Buffer => new MessageWriter(0).message('s');
export const encodeEmptyQueryResponse = (): Buffer => new MessageWriter(0).message('I');
