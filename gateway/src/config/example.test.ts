import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { checkConfigFile, loadConfig } from './index';

const example = join(__dirname, '..', '..', '..', 'examples', 'pgward.yaml');
const docs = join(__dirname, '..', '..', '..', 'docs', 'configuration.md');

/** Dotted paths of every leaf of a plain object tree. */
function leaves(o: unknown, prefix = ''): string[] {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return [prefix];
  const keys = Object.keys(o);
  if (keys.length === 0) return [];
  return keys.flatMap((k) => leaves((o as Record<string, unknown>)[k], prefix ? `${prefix}.${k}` : k));
}

describe('examples/pgward.yaml', () => {
  test('validates', () => {
    const r = checkConfigFile(example);
    if (!r.ok) throw r.error;
    expect(r.ok).toBe(true);
  });

  test('states exactly the defaults', () => {
    expect(loadConfig({ env: {}, file: example })).toEqual(loadConfig({ env: {} }));
  });

  test('mentions every key, set or commented out', () => {
    const text = readFileSync(example, 'utf8');
    const uncommented = YAML.parse(text.replace(/^(\s*)# ([a-z_]+:)/gm, '$1$2')) as unknown;
    // Uncommenting the optional keys gives a mapping; every leaf of the defaults must appear in it.
    const present = new Set(leaves(uncommented));
    for (const key of leaves(loadConfig({ env: {} }))) expect(present).toContain(key);
  });
});

describe('docs/configuration.md', () => {
  test('documents every key of the defaults and every optional key of the example', () => {
    const md = readFileSync(docs, 'utf8');
    const text = readFileSync(example, 'utf8');
    const uncommented = YAML.parse(text.replace(/^(\s*)# ([a-z_]+:)/gm, '$1$2')) as unknown;
    for (const key of new Set([...leaves(loadConfig({ env: {} })), ...leaves(uncommented)])) {
      expect(md).toContain(`\`${key}\``);
    }
  });
});
