/**
 * Decode once: outside protocol/, no production code calls a per-message reader. Client frames are
 * read by readFrontendMessage (session/requests.ts, session/startup.ts, replay) and backend messages
 * by readBackendMessage (session/core.ts, replay); everything else (judge, enforcer, audit, capture)
 * takes the typed message. A second decode of the same frame would need one of these calls.
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.join(__dirname, '..');

/** Per-message readers (the unions' building blocks) and the legacy ones. */
const READERS =
  /\b(readQuery|readParse|readBind|readFunctionCall|readExecute|readDescribe|readClose|readSync|readFlush|readTerminate|readCopyFail|readEmpty|readStartupPacket|readSASLInitialResponse|readPasswordMessage|readReadyForQuery|readReadyForQueryMessage|readErrorFields|readErrorResponse|readParameterStatus|readBackendKeyData|readNegotiateProtocolVersion|readAuthentication|readAuthenticationMessage|readCommandComplete)\s*\(/;

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return p === path.join(ROOT, 'protocol') ? [] : sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.includes('.test-') ? [p] : [];
  });
}

test('no code outside protocol/ calls a per-message reader', () => {
  const offenders: string[] = [];
  for (const file of sources(ROOT)) {
    fs.readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (READERS.test(line) && !line.trim().startsWith('*') && !line.trim().startsWith('//'))
          offenders.push(`${path.relative(ROOT, file)}:${i + 1}: ${line.trim()}`);
      });
  }
  expect(offenders).toEqual([]);
});
