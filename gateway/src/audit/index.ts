export * from './audit-log';
export * from './decision-log';
export { loadSqlNormalizer, normalizeSql, REDACTED, type RedactOptions } from './redact';
export type { FileSinkOptions, SinkOptions } from './sink';
