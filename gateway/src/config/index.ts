export { ConfigError } from './config-error';
export { ANY_HOST, parseHostPort, tryParseHostPort } from './host-port';
export type { HostPort, HostPortResult } from './host-port';
export { checkConfigFile, CONFIG_FILE_ENV, loadConfig } from './load-config';
export type { CheckConfigResult, FlagOverrides, LoadConfigOptions } from './load-config';
export { LOG_LEVELS, SIGNING_ALGORITHMS, UPSTREAM_TLS_MODES } from './schema';
export type { Config } from './schema';
