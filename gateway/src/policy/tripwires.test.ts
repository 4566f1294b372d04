import { ErrorCodes } from '../errors';
import { DEFAULT_LEXICAL_STATE } from '../sql/lexical';
import { checkTripwires, emptyServerState, updateServerState } from './tripwires';
import type { JudgedAtStartup } from './tripwires';

const alice: JudgedAtStartup = { user: 'alice', readOnly: false, superuser: false };
const reader: JudgedAtStartup = { user: 'readonly', readOnly: true, superuser: false };
const lex = DEFAULT_LEXICAL_STATE;

describe('checkTripwires', () => {
  it.each([
    ['session_authorization', 'alice'],
    ['is_superuser', 'off'],
    ['default_transaction_read_only', 'off'],
    ['client_encoding', 'UTF8'],
    ['client_encoding', 'SJIS'],
    ['standard_conforming_strings', 'on'],
    // a state pgward reproduces; an unjudged change is caught by the session (core-lexical.test.ts)
    ['standard_conforming_strings', 'off'],
    ['TimeZone', 'UTC'],
    ['application_name', 'x'],
  ])('%s=%s agrees with what was judged', (name, value) => {
    expect(checkTripwires(alice, name, value, lex)).toBeNull();
  });

  it.each([
    [alice, 'session_authorization', 'postgres', ErrorCodes.SERVER_STATE_IDENTITY],
    [alice, 'is_superuser', 'on', ErrorCodes.SERVER_STATE_IDENTITY],
    [alice, 'is_superuser', 'maybe', ErrorCodes.SERVER_STATE_IDENTITY],
    [reader, 'default_transaction_read_only', 'off', ErrorCodes.SERVER_STATE_READ_ONLY],
    [alice, 'client_encoding', 'JOHAB', ErrorCodes.SERVER_STATE_LEXICAL],
    [alice, 'standard_conforming_strings', 'unknown', ErrorCodes.SERVER_STATE_LEXICAL],
  ] as const)('%j: %s=%s diverges', (judged, name, value, code) => {
    const t = checkTripwires(judged, name, value, lex);
    expect(t?.code).toBe(code);
    expect(t?.reason).toMatch(/^server state diverged: /);
  });

  it('is_superuser before the baseline is known is the baseline, not a change', () => {
    expect(checkTripwires({ ...alice, superuser: null }, 'is_superuser', 'on', lex)).toBeNull();
  });

  it('a superuser session dropping to a plain role (SET ROLE) diverges too', () => {
    expect(checkTripwires({ ...alice, superuser: true }, 'is_superuser', 'off', lex)?.code).toBe(
      ErrorCodes.SERVER_STATE_IDENTITY,
    );
  });

  it('a read-only session keeping the default on is fine', () => {
    expect(checkTripwires(reader, 'default_transaction_read_only', 'on', lex)).toBeNull();
  });

  it('compares the user name as the server truncates it (63 bytes)', () => {
    const long = 'ä'.repeat(40); // 80 bytes → 31 characters (62 bytes)
    expect(checkTripwires({ ...alice, user: long }, 'session_authorization', 'ä'.repeat(31), lex)).toBeNull();
  });
});

describe('updateServerState', () => {
  it('starts with every field null and records reports', () => {
    let s = emptyServerState();
    expect(Object.values(s).every((v) => v === null)).toBe(true);
    s = updateServerState(s, 'is_superuser', 'off');
    s = updateServerState(s, 'session_authorization', 'alice');
    s = updateServerState(s, 'standard_conforming_strings', 'on');
    s = updateServerState(s, 'client_encoding', 'UTF8');
    s = updateServerState(s, 'TimeZone', 'UTC');
    expect(s).toMatchObject({
      is_superuser: false,
      session_authorization: 'alice',
      standard_conforming_strings: true,
      client_encoding: 'UTF8',
      default_transaction_read_only: null,
    });
    expect(Object.keys(s)).toHaveLength(8);
  });
});
