import { ErrorCodes } from '../errors';
import { parseDecision } from './decision';

const rs = (result: unknown) => [{ result }];

describe('parseDecision', () => {
  it('accepts a full decision', () => {
    const p = parseDecision(
      rs({
        allow: true,
        reasons: ['ok'],
        alerts: [{ rule: 'r1', severity: 'low', message: 'm' }],
        sqlstate: '42501',
        session_parameters: { statement_timeout: '5s', 'pgward.tag': 'x' },
      }),
    );
    expect(p.error).toBeNull();
    expect(p.body).toEqual({
      allow: true,
      reasons: ['ok'],
      alerts: [{ rule: 'r1', severity: 'low', message: 'm' }],
      sqlstate: '42501',
      session_parameters: { statement_timeout: '5s', 'pgward.tag': 'x' },
      error_code: null,
    });
  });

  it('defaults reasons, alerts, sqlstate, session_parameters', () => {
    const p = parseDecision(rs({ allow: false }));
    expect(p.body).toEqual({
      allow: false,
      reasons: [],
      alerts: [],
      sqlstate: null,
      session_parameters: {},
      error_code: null,
    });
    expect(parseDecision(rs({ allow: true, sqlstate: null })).body.sqlstate).toBeNull();
  });

  const undefinedCases: [string, unknown][] = [
    ['empty result set', []],
    ['entry without result', [{}]],
    ['entry with undefined result', [{ result: undefined }]],
  ];
  it.each(undefinedCases)('%s → deny POLICY_UNDEFINED', (_name, raw) => {
    const p = parseDecision(raw);
    expect(p.body.allow).toBe(false);
    expect(p.body.error_code).toBe(ErrorCodes.POLICY_UNDEFINED);
    expect(p.error).toEqual(expect.any(String));
  });

  const badCases: [string, unknown][] = [
    ['result set not an array', { result: { allow: true } }],
    ['null result set', null],
    ['two results', [{ result: { allow: true } }, { result: { allow: true } }]],
    ['result null', rs(null)],
    ['result a string', rs('allow')],
    ['result true', rs(true)],
    ['result an array', rs([{ allow: true }])],
    ['allow missing', rs({ reasons: [] })],
    ['allow a string', rs({ allow: 'true' })],
    ['allow a number', rs({ allow: 1 })],
    ['allow null', rs({ allow: null })],
    ['unknown key', rs({ allow: true, reason: ['typo'] })],
    ['reasons not an array', rs({ allow: false, reasons: 'no' })],
    ['reasons with a number', rs({ allow: false, reasons: ['a', 2] })],
    ['reason with NUL', rs({ allow: false, reasons: ['a\0b'] })],
    ['alerts not an array', rs({ allow: true, alerts: {} })],
    ['alert missing message', rs({ allow: true, alerts: [{ rule: 'r', severity: 's' }] })],
    ['alert extra key', rs({ allow: true, alerts: [{ rule: 'r', severity: 's', message: 'm', x: 1 }] })],
    ['alert non-string', rs({ allow: true, alerts: [{ rule: 'r', severity: 1, message: 'm' }] })],
    ['alert a string', rs({ allow: true, alerts: ['r'] })],
    ['sqlstate too short', rs({ allow: false, sqlstate: '4250' })],
    ['sqlstate lower case', rs({ allow: false, sqlstate: '42p01' })],
    ['sqlstate a number', rs({ allow: false, sqlstate: 42501 })],
    ['session_parameters an array', rs({ allow: true, session_parameters: [] })],
    ['session parameter bad name', rs({ allow: true, session_parameters: { 'Role;': 'x' } })],
    ['session parameter upper case', rs({ allow: true, session_parameters: { Role: 'x' } })],
    ['session parameter with space', rs({ allow: true, session_parameters: { 'a b': 'x' } })],
    ['session parameter non-string', rs({ allow: true, session_parameters: { work_mem: 64 } })],
    ['session parameter value NUL', rs({ allow: true, session_parameters: { role: 'a\0user\0x' } })],
  ];
  it.each(badCases)('%s → deny POLICY_BAD_DECISION', (_name, raw) => {
    const p = parseDecision(raw);
    expect(p.body.allow).toBe(false);
    expect(p.body.error_code).toBe(ErrorCodes.POLICY_BAD_DECISION);
    expect(p.body.reasons).toEqual([]);
    expect(p.body.session_parameters).toEqual({});
    expect(p.error).toMatch(/^bad decision: /);
  });

  it('refuses too many reasons', () => {
    const p = parseDecision(rs({ allow: false, reasons: new Array(1001).fill('r') }));
    expect(p.body.error_code).toBe(ErrorCodes.POLICY_BAD_DECISION);
  });
});
