import type { PolicyEngine } from '../policy/types';
import type { DecisionEvent, SessionObserver } from '../session/types';
import { queryFrame, sampleConnection, sampleDecision, sampleInput } from '../audit/test-fixtures';
import { attachShadow } from './shadow';

/** A candidate that allows everything, and counts what it was asked. */
function allowAll(): PolicyEngine & { asked: number } {
  const e = {
    asked: 0,
    evaluate: () => {
      e.asked++;
      return sampleDecision({ id: 's', allow: true, reasons: [], alerts: [] });
    },
    bundle: () => null,
  };
  return e;
}

function setup(): {
  observer: SessionObserver;
  engine: ReturnType<typeof allowAll>;
  counts: { n: number; audited: number };
} {
  const counts = { n: 0, audited: 0 };
  const observer = { onDecision: () => true } as unknown as SessionObserver;
  const engine = allowAll();
  attachShadow(observer, {
    engine,
    audit: {
      record: () => {
        counts.audited++;
        return true;
      },
    },
    onDisagreement: () => {
      counts.n++;
    },
  });
  return { observer, engine, counts };
}

function event(gatewayDenied: boolean | null): DecisionEvent {
  const ev: DecisionEvent = {
    decision: sampleDecision({ alerts: [] }),
    input: sampleInput(),
    frame: queryFrame('SELECT 1'),
    connection: sampleConnection(),
  };
  if (gatewayDenied !== null) ev.gatewayDenied = gatewayDenied;
  return ev;
}

test('a denial the candidate would not make is a disagreement, audited and counted', () => {
  const { observer, engine, counts } = setup();
  observer.onDecision(event(null));
  expect([engine.asked, counts.n, counts.audited]).toEqual([1, 1, 1]);
});

test('a message the gateway denied whatever the policy said is not compared (no false disagreement)', () => {
  const { observer, engine, counts } = setup();
  observer.onDecision(event(true));
  expect([engine.asked, counts.n, counts.audited]).toEqual([0, 0, 0]);
});
