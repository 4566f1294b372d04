/**
 * Shadow mode: a candidate bundle evaluated beside the active one on the same input documents.
 * The candidate never enforces; a disagreement (allow differs, or the alerts differ) becomes an
 * audit event of kind 'shadow' and counts in pgward_shadow_disagreements_total. Messages the
 * gateway denies whatever the policy says (DecisionEvent.gatewayDenied) are not compared.
 */
import { ErrorCodes } from '../errors';
import { auditEventFrom, type AuditLog } from '../audit';
import type { Alert, Decision, PolicyEngine } from '../policy/types';
import type { DecisionEvent, SessionObserver } from '../session/types';

const alertKey = (a: Alert): string => `${a.rule}\u0000${a.severity}\u0000${a.message}`;

/** True when two decisions differ in outcome or in their alerts (order ignored). */
export function decisionsDisagree(
  a: Pick<Decision, 'allow' | 'alerts'>,
  b: Pick<Decision, 'allow' | 'alerts'>,
): boolean {
  if (a.allow !== b.allow) return true;
  if (a.alerts.length !== b.alerts.length) return true;
  const x = a.alerts.map(alertKey).sort();
  const y = b.alerts.map(alertKey).sort();
  return x.some((k, i) => k !== y[i]);
}

export interface ShadowDeps {
  engine: PolicyEngine;
  audit: Pick<AuditLog, 'record'>;
  onDisagreement(): void;
}

/** Wraps observer.onDecision so that every decision is also evaluated by the shadow engine. */
export function attachShadow(observer: SessionObserver, deps: ShadowDeps): void {
  const decide = observer.onDecision;
  observer.onDecision = (ev: DecisionEvent): boolean => {
    const recorded = decide(ev);
    // The audit fail-closed re-decision of an already compared message is not compared again;
    // a message the gateway denied whatever the policy said is denied whatever the candidate says.
    if (ev.decision.error_code !== ErrorCodes.AUDIT_SINK && ev.gatewayDenied !== true)
      compareShadow(ev, deps);
    return recorded;
  };
}

export function compareShadow(ev: DecisionEvent, deps: ShadowDeps): boolean {
  const shadow = deps.engine.evaluate(ev.input);
  if (!decisionsDisagree(ev.decision, shadow)) return false;
  deps.onDisagreement();
  // decision_id: the active decision's id, so the event joins the decision log; revision, reasons
  // and alerts: the shadow bundle's.
  deps.audit.record({
    ...auditEventFrom('shadow', ev.input, shadow, ev.frame, ev),
    decision_id: ev.decision.id,
  });
  return true;
}
