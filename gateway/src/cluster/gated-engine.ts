/**
 * With workers, a new bundle goes live in every worker at once, or in none: each worker builds and
 * smoke-tests it as one process does (policy/bundle-manager.ts), but the swap only prepares it; the
 * primary sends `commit` when every worker has prepared (or already runs) that revision, and each
 * worker then swaps the reference. Until then the previous revision keeps serving everywhere, so a
 * bundle that one worker cannot load leaves the whole instance on the previous one.
 */
import { ActiveEngine } from '../policy/opa-engine';
import type { PolicyEngine } from '../policy/types';

export class GatedEngine extends ActiveEngine {
  private pending: PolicyEngine | null = null;

  constructor(private readonly onPrepared: (revision: string) => void) {
    super();
  }

  /** Called by the bundle manager: the first bundle (nothing serves yet) goes live at once. */
  override swap(next: PolicyEngine | null): PolicyEngine | null {
    const revision = next?.bundle()?.revision;
    const current = this.bundle();
    if (current === null || next === null || revision === undefined || revision === current.revision) {
      this.pending = null;
      return super.swap(next);
    }
    this.pending = next;
    this.onPrepared(revision);
    return null;
  }

  /** The primary's go: swaps in the prepared engine if it is `revision`. */
  commit(revision: string): boolean {
    const p = this.pending;
    if (p === null || p.bundle()?.revision !== revision) return false;
    this.pending = null;
    super.swap(p);
    return true;
  }
}

/** Every worker runs or has prepared `revision`, and one has prepared it: time to commit. */
export function readyToCommit(
  revision: string,
  running: ReadonlyArray<string | null>,
  prepared: ReadonlyArray<string | null>,
): boolean {
  return (
    prepared.some((p) => p === revision) &&
    running.every((r, i) => r === revision || prepared[i] === revision)
  );
}
