import type { BundleInfo, PolicyEngine } from '../policy/types';
import { GatedEngine, readyToCommit } from './gated-engine';

function fake(revision: string): PolicyEngine {
  const info = { revision } as BundleInfo;
  return {
    evaluate: () => {
      throw new Error('not used');
    },
    bundle: () => info,
  };
}

describe('gated engine', () => {
  test('the first bundle goes live at once; a new one only at the commit of its revision', () => {
    const prepared: string[] = [];
    const g = new GatedEngine((r) => prepared.push(r));
    g.swap(fake('a'));
    expect(g.bundle()?.revision).toBe('a');
    g.swap(fake('b'));
    expect(prepared).toEqual(['b']);
    expect(g.bundle()?.revision).toBe('a');
    expect(g.commit('c')).toBe(false);
    expect(g.bundle()?.revision).toBe('a');
    expect(g.commit('b')).toBe(true);
    expect(g.bundle()?.revision).toBe('b');
    expect(g.commit('b')).toBe(false);
  });

  test('a newer prepared bundle replaces the pending one; the same revision swaps at once', () => {
    const g = new GatedEngine(() => undefined);
    g.swap(fake('a'));
    g.swap(fake('b'));
    g.swap(fake('c'));
    expect(g.commit('b')).toBe(false);
    expect(g.commit('c')).toBe(true);
    const again = fake('c');
    g.swap(again);
    expect(g.bundle()).toBe(again.bundle());
  });

  test('commit when every worker runs or has prepared the revision', () => {
    expect(readyToCommit('b', ['a', 'a'], ['b', null])).toBe(false);
    expect(readyToCommit('b', ['a', 'a'], ['b', 'b'])).toBe(true);
    expect(readyToCommit('b', ['a', 'b'], ['b', null])).toBe(true);
    expect(readyToCommit('b', ['b', 'b'], [null, null])).toBe(false);
    expect(readyToCommit('b', ['a', null], ['b', null])).toBe(false);
  });
});
