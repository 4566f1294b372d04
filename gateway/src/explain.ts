/** `pgward explain`: the input document and decision for one SQL text and connection. */
import { createClassifier, initSqlParser } from './sql';
import { buildEngineFromSource } from './policy/opa-engine';
import { buildParseInput, buildQueryInput, buildStartupInput } from './policy/input';
import type { ConnectionInfo, Decision, InputDocument } from './policy/types';
import type { ExplainOptions } from './cli';

export async function explain(
  sql: string | undefined,
  o: ExplainOptions,
): Promise<{ input: InputDocument; decision: Decision }> {
  if (!o.startup && sql === undefined) throw new Error('explain: give a SQL text, or --startup');
  await initSqlParser();
  const engine = await buildEngineFromSource(o.bundle, { entrypoint: o.entrypoint });
  const params: Record<string, string> = { user: o.user, database: o.database ?? o.user };
  if (o.application) params.application_name = o.application;
  const conn: ConnectionInfo = {
    id: 'explain',
    client_addr: o.clientAddr,
    client_port: 0,
    tls: { enabled: o.tls, version: o.tls ? 'TLSv1.3' : null, cipher: null, client_cert_subject: null },
    user: o.user,
    database: o.database ?? o.user,
    application_name: o.application ?? null,
    parameters: params,
    options: {},
    protocol_version: '3.0',
    authenticated: !o.startup,
    transaction_status: 'I',
  };
  let input: InputDocument;
  if (o.startup) input = buildStartupInput(conn);
  else {
    const c = createClassifier({ maxEntries: 16 }).classify(sql as string);
    input =
      o.message === 'Parse'
        ? buildParseInput(conn, { statementName: '', sql: sql as string, paramTypes: [] }, c, {
            maxSqlBytes: 65536,
          })
        : buildQueryInput(conn, sql as string, c, { maxSqlBytes: 65536 });
  }
  return { input, decision: engine.evaluate(input) };
}
