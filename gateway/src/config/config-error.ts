import { ErrorCodes, PgwardError } from '../errors';

/**
 * A configuration problem. `key` is the dotted path of the bad key ('' when the problem is not about
 * one key, e.g. a YAML syntax error); `message` is always one line starting with `config: `.
 */
export class ConfigError extends PgwardError {
  constructor(
    readonly key: string,
    reason: string,
    readonly source?: string,
  ) {
    const where = key === '' ? '' : `${key}: `;
    const from = source === undefined ? '' : ` (${source === 'default' ? 'default' : `from ${source}`})`;
    super(ErrorCodes.CONFIG_INVALID, `config: ${where}${reason}${from}`.replace(/[\r\n]+/g, ' '));
    this.name = 'ConfigError';
  }
}
