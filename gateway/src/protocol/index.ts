/**
 * The pure PostgreSQL wire codec: framing, decoders by direction, builders. No I/O in here.
 * Decode once: FrontendFramer → readFrontendMessage (FrontendMessage union), BackendScanner →
 * readBackendMessage (BackendMessage union; DataRow is skipped by type byte, never decoded). The
 * per-message read* functions are the unions' building blocks: nothing outside protocol/ calls
 * them (decode-once.test.ts), and Query/Parse carry their SQL as bytes, decoded once by the session.
 */
export * from './errors';
export * from './limits';
export * from './message-types';
export * from './framing';
export * from './reader';
export * from './writer';
export * from './frontend/startup';
export * from './frontend/query';
export * from './frontend/parse';
export * from './frontend/bind';
export * from './frontend/function-call';
export * from './frontend/portal-messages';
export * from './frontend/simple-messages';
export * from './frontend/sasl-initial-response';
export * from './backend/authentication';
export * from './backend/backend-key-data';
export * from './backend/ready-for-query';
export * from './backend/error-response';
export * from './backend/parameter-status';
export * from './backend/negotiate-protocol-version';
export * from './backend/copy-response';
export * from './frontend/frontend-message';
export * from './backend/empty-messages';
export * from './backend/command-complete';
export * from './backend/row-description';
export * from './backend/parameter-description';
export * from './backend/other-messages';
export * from './backend/backend-message';
