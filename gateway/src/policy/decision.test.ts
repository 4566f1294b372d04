import { ErrorCodes } from '../errors';
import { gatewayDenial, gatewayRuleId, parseDecision, RULE_ID, UNNAMED_RULE } from './decision';

const rs = (result: unknown) => [{ result }];

describe('parseDecision', () => {
  it('accepts a full decision', () => {
    const p = parseDecision(
      rs({
        allow: true,
        denials: [],
        alerts: [{ rule: 'r1', severity: 'low', message: 'm' }],
        sqlstate: '42501',
        session_parameters: { statement_timeout: '5s', 'pgward.tag': 'x' },
      }),
    );
    expect(p.error).toBeNull();
    expect(p.body).toEqual({
      allow: true,
      denials: [],
      reasons: [],
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
      denials: [],
      reasons: [],
      alerts: [],
      sqlstate: null,
      session_parameters: {},
      error_code: null,
    });
    expect(parseDecision(rs({ allow: true, sqlstate: null })).body.sqlstate).toBeNull();
  });

  it("reads denials in the policy's order; reasons are their messages", () => {
    const denials = [
      { rule: 'unbounded_write', message: 'DELETE without WHERE on public.orders', priority: 40 },
      { rule: 'custom.payroll_hours', message: 'payroll is closed', priority: 60 },
    ];
    const p = parseDecision(rs({ allow: false, denials, alerts: [], sqlstate: '42501' }));
    expect(p.error).toBeNull();
    expect(p.body.denials).toEqual(denials);
    expect(p.body.reasons).toEqual(['DELETE without WHERE on public.orders', 'payroll is closed']);
  });

  it('reads a version 1 reasons list as denials of the rule "unnamed"', () => {
    const p = parseDecision(rs({ allow: false, reasons: ['no', 'never'] }));
    expect(p.error).toBeNull();
    expect(p.body.denials).toEqual([
      { rule: UNNAMED_RULE, message: 'no', priority: 0 },
      { rule: UNNAMED_RULE, message: 'never', priority: 0 },
    ]);
    expect(p.body.reasons).toEqual(['no', 'never']);
  });

  it('keeps a version 1 reasons list that accompanies an allow', () => {
    const p = parseDecision(rs({ allow: true, reasons: ['ok'] }));
    expect(p.error).toBeNull();
    expect(p.body.reasons).toEqual(['ok']);
  });

  it('names the denials pgward makes itself after their stage code', () => {
    expect(gatewayDenial(ErrorCodes.AUDIT_SINK, 'x')).toEqual({
      rule: 'pgward.audit_sink',
      message: 'x',
      priority: 0,
    });
    expect(gatewayRuleId(ErrorCodes.POLICY_UNDEFINED)).toBe('pgward.policy_undefined');
    for (const code of Object.values(ErrorCodes)) expect(gatewayRuleId(code)).toMatch(RULE_ID);
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
    ['denials not an array', rs({ allow: false, denials: 'no' })],
    ['denials and reasons', rs({ allow: false, denials: [], reasons: [] })],
    ['denial a string', rs({ allow: false, denials: ['r'] })],
    ['denial missing priority', rs({ allow: false, denials: [{ rule: 'r', message: 'm' }] })],
    ['denial extra key', rs({ allow: false, denials: [{ rule: 'r', message: 'm', priority: 1, x: 1 }] })],
    [
      'denial rule upper case',
      rs({ allow: false, denials: [{ rule: 'Read_only', message: 'm', priority: 1 }] }),
    ],
    [
      'denial rule with a dash',
      rs({ allow: false, denials: [{ rule: 'read-only', message: 'm', priority: 1 }] }),
    ],
    ['denial rule empty', rs({ allow: false, denials: [{ rule: '', message: 'm', priority: 1 }] })],
    [
      'denial rule too long',
      rs({ allow: false, denials: [{ rule: 'r'.repeat(65), message: 'm', priority: 1 }] }),
    ],
    ['denial empty message', rs({ allow: false, denials: [{ rule: 'r', message: '', priority: 1 }] })],
    ['denial message NUL', rs({ allow: false, denials: [{ rule: 'r', message: 'a\0b', priority: 1 }] })],
    ['denial priority a string', rs({ allow: false, denials: [{ rule: 'r', message: 'm', priority: '1' }] })],
    [
      'denial priority fractional',
      rs({ allow: false, denials: [{ rule: 'r', message: 'm', priority: 1.5 }] }),
    ],
    ['allowed with denials', rs({ allow: true, denials: [{ rule: 'r', message: 'm', priority: 1 }] })],
    ['session parameter value NUL', rs({ allow: true, session_parameters: { role: 'a\0user\0x' } })],
  ];
  it.each(badCases)('%s → deny POLICY_BAD_DECISION', (_name, raw) => {
    const p = parseDecision(raw);
    expect(p.body.allow).toBe(false);
    expect(p.body.error_code).toBe(ErrorCodes.POLICY_BAD_DECISION);
    expect(p.body.reasons).toEqual([]);
    expect(p.body.denials).toEqual([]);
    expect(p.body.session_parameters).toEqual({});
    expect(p.error).toMatch(/^bad decision: /);
  });

  it('refuses too many denials', () => {
    const d = { rule: 'r', message: 'm', priority: 1 };
    const p = parseDecision(rs({ allow: false, denials: new Array(1001).fill(d) }));
    expect(p.body.error_code).toBe(ErrorCodes.POLICY_BAD_DECISION);
  });

  it('refuses too many reasons', () => {
    const p = parseDecision(rs({ allow: false, reasons: new Array(1001).fill('r') }));
    expect(p.body.error_code).toBe(ErrorCodes.POLICY_BAD_DECISION);
  });
});
