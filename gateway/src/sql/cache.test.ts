import { ClassificationCache, createClassifier } from './cache';
import { classify, initSqlParser } from './classify';

beforeAll(async () => {
  await initSqlParser();
});

describe('ClassificationCache', () => {
  test('evicts the least recently used entry', () => {
    const cache = new ClassificationCache({ maxEntries: 2 });
    cache.set('SELECT 1', classify('SELECT 1'));
    cache.set('SELECT 2', classify('SELECT 2'));
    expect(cache.get('SELECT 1')).toBeDefined(); // SELECT 2 is now the oldest
    cache.set('SELECT 3', classify('SELECT 3'));
    expect(cache.has('SELECT 1')).toBe(true);
    expect(cache.has('SELECT 2')).toBe(false);
    expect(cache.has('SELECT 3')).toBe(true);
    expect(cache.get('SELECT 2')).toBeUndefined();
    expect(cache.stats()).toEqual({
      entries: 2,
      maxEntries: 2,
      hits: 1,
      misses: 1,
      evictions: 1,
      uncacheable: 0,
    });
  });

  test('re-setting an entry refreshes it instead of growing', () => {
    const cache = new ClassificationCache({ maxEntries: 2 });
    cache.set('a', classify('SELECT 1'));
    cache.set('b', classify('SELECT 2'));
    cache.set('a', classify('SELECT 1'));
    cache.set('c', classify('SELECT 3'));
    expect(cache.size).toBe(2);
    expect(cache.has('a')).toBe(true);
    expect(cache.has('b')).toBe(false);
  });

  test('texts longer than maxSqlLength are never stored', () => {
    const cache = new ClassificationCache({ maxEntries: 10, maxSqlLength: 10 });
    const long = 'SELECT 1234567';
    expect(cache.get(long)).toBeUndefined();
    cache.set(long, classify(long));
    expect(cache.size).toBe(0);
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 0, uncacheable: 1 });
  });

  test('maxEntries 0 disables caching', () => {
    const cache = new ClassificationCache({ maxEntries: 0 });
    cache.set('SELECT 1', classify('SELECT 1'));
    expect(cache.size).toBe(0);
  });

  test('rejects invalid bounds', () => {
    expect(() => new ClassificationCache({ maxEntries: -1 })).toThrow(RangeError);
    expect(() => new ClassificationCache({ maxEntries: 1.5 })).toThrow(RangeError);
    expect(() => new ClassificationCache({ maxEntries: 1, maxSqlLength: Number.NaN })).toThrow(RangeError);
  });
});

describe('createClassifier', () => {
  test('counts misses then hits and returns the same frozen object', () => {
    const classifier = createClassifier({ maxEntries: 100 });
    const first = classifier.classify('DELETE FROM t');
    const second = classifier.classify('DELETE FROM t');
    expect(second).toBe(first);
    expect(classifier.stats()).toMatchObject({ entries: 1, hits: 1, misses: 1 });
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.statements[0]?.relations[0])).toBe(true);
    expect(() => {
      (first.statements[0] as { read_only: boolean }).read_only = true;
    }).toThrow(TypeError);
    expect(classifier.classify('DELETE FROM t').statements[0]?.read_only).toBe(false);
  });

  test('caches parse errors too and keeps texts distinct', () => {
    const classifier = createClassifier({ maxEntries: 100 });
    expect(classifier.classify('SELEC 1').parse_error).not.toBeNull();
    expect(classifier.classify('SELEC 1').parse_error).not.toBeNull();
    expect(classifier.classify('SELECT 1 ').parse_error).toBeNull();
    expect(classifier.stats()).toMatchObject({ entries: 2, hits: 1, misses: 2 });
  });

  test('stays bounded under many distinct texts', () => {
    const classifier = createClassifier({ maxEntries: 50 });
    for (let i = 0; i < 500; i++) classifier.classify(`SELECT ${i} FROM t${i % 7}`);
    expect(classifier.stats()).toMatchObject({ entries: 50, misses: 500, evictions: 450 });
    expect(classifier.classify('SELECT 499 FROM t2').statements[0]?.relations).toEqual([
      { schema: null, name: 't2', access: 'read' },
    ]);
    expect(classifier.stats().hits).toBe(1);
  });
});
