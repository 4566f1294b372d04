export * from './audit-log';
export * from './decision-log';
export * from './decision-log-upload';
export * from './events';
export * from './statement-log';
export { loadSqlNormalizer, normalizeSql, REDACTED, type RedactOptions } from './redact';
export type { FileSinkOptions, SinkOptions } from './sink';
