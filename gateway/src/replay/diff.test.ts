import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { diffDecisions, groupChanges, readExpectFile, writeExpectFile, type ExpectEntry } from './diff';

const entry = (over: Partial<ExpectEntry>): ExpectEntry => ({
  key: 'aaaa#0',
  type: 'Query',
  user: 'app',
  database: 'db',
  sql: 'DELETE FROM orders',
  fingerprint: 'f1',
  allow: false,
  denials: [{ rule: 'unbounded_write', message: 'DELETE without WHERE on public.orders' }],
  alerts: [],
  ...over,
});

describe('replay diff by denials', () => {
  it('reports a denial that changed rule id with the same message as a denials change, grouped by rule ids', () => {
    const before = [entry({}), entry({ key: 'aaaa#1' })];
    const after = [
      entry({ denials: [{ rule: 'custom.no_deletes', message: 'DELETE without WHERE on public.orders' }] }),
      entry({
        key: 'aaaa#1',
        denials: [{ rule: 'custom.no_deletes', message: 'DELETE without WHERE on public.orders' }],
      }),
    ];
    const changes = diffDecisions(before, after);
    expect(changes.map((c) => c.kind)).toEqual(['denials', 'denials']);
    const groups = groupChanges(changes);
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({
      kind: 'denials',
      count: 2,
      rule_ids: ['custom.no_deletes', 'unbounded_write'],
    });
  });

  it('sees no change when outcome, denials and alerts are the same', () => {
    expect(diffDecisions([entry({})], [entry({})])).toEqual([]);
  });

  it('writes and reads version 3 expectations, and refuses version 2 (reasons) with a hint', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgward-expect-'));
    const file = path.join(dir, 'expect.jsonl');
    writeExpectFile(file, [entry({})]);
    expect(readExpectFile(file)).toEqual([entry({})]);
    fs.writeFileSync(
      file,
      '{"format":"pgward-replay-expect","version":2}\n{"key":"a#0","allow":false,"reasons":["x"],"alerts":[]}\n',
    );
    expect(() => readExpectFile(file)).toThrow(/unsupported expectations version 2 .*--update-expect/);
    fs.writeFileSync(
      file,
      '{"format":"pgward-replay-expect","version":3}\n{"key":"a#0","allow":false,"denials":["x"],"alerts":[]}\n',
    );
    expect(() => readExpectFile(file)).toThrow(
      /expected \{"key", "allow", "denials": \[\{"rule", "message"\}\]/,
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
