/** Builders for audit and decision log tests. */
import type { ConnectionInfo, Decision, InputDocument } from '../policy/types';
import type { StatementInfo } from '../sql/types';
import { stmt } from '../sql/test-fixtures';

export function sampleConnection(): ConnectionInfo {
  return {
    id: 'c-1',
    client_addr: '10.1.2.3',
    client_port: 51514,
    tls: { enabled: true, version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', client_cert_subject: null },
    user: 'alice',
    database: 'app',
    application_name: 'psql',
    parameters: { user: 'alice', database: 'app', application_name: 'psql' },
    options: {},
    protocol_version: '3.0',
    authenticated: true,
    transaction_status: 'I',
  };
}

export function sampleStatement(over: Partial<StatementInfo> = {}): StatementInfo {
  return stmt('DELETE', "DELETE FROM orders WHERE note = 'secret' AND id = 42", {
    fingerprint: 'a1b2c3',
    relations: [{ schema: 'public', name: 'orders', access: 'write' }],
    has_where: true,
    ...over,
  });
}

export function sampleInput(over: Partial<InputDocument> = {}): InputDocument {
  return {
    version: 1,
    phase: 'message',
    connection: sampleConnection(),
    message: { type: 'Query', sql: "DELETE FROM orders WHERE note = 'secret' AND id = 42", truncated: false },
    statements: [sampleStatement()],
    parse_error: null,
    ...over,
  };
}

export function sampleDecision(over: Partial<Decision> = {}): Decision {
  const reasons = over.reasons ?? ['writes to orders are not allowed'];
  return {
    id: 'd-1',
    allow: false,
    denials: reasons.map((message) => ({ rule: 'no_writes', message, priority: 10 })),
    reasons,
    alerts: [{ rule: 'bulk_delete', severity: 'high', message: 'delete on orders' }],
    sqlstate: null,
    session_parameters: {},
    revision: 'rev-7',
    error_code: null,
    eval_seconds: 0.000123,
    ...over,
  };
}

/** A simple-protocol Query frame: 'Q', int32 length, the SQL, NUL. */
export function queryFrame(sql: string): Buffer {
  const body = Buffer.from(sql + '\0', 'utf8');
  const head = Buffer.alloc(5);
  head.write('Q', 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
