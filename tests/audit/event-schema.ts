/** Validates records against docs/audit-events.schema.json (audit events, statement log, decision log). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';

const schema = JSON.parse(
  fs.readFileSync(path.resolve(__dirname, '../../docs/audit-events.schema.json'), 'utf8'),
) as Record<string, unknown>;
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
const validate = ajv.compile(schema);

/** Throws with ajv's errors and the record when it does not match the schema. */
export function validateEvent(record: unknown): void {
  const copy: unknown = JSON.parse(JSON.stringify(record));
  if (!validate(copy)) {
    throw new Error(`${JSON.stringify(validate.errors, null, 2)}\n${JSON.stringify(copy, null, 2)}`);
  }
}
