import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { ErrorCodes, PgwardError } from '../errors';
import { loadBundle, loadBundleFromBuffer } from './bundle';

interface Entry {
  name: string;
  body?: Buffer | string;
  type?: string;
  linkname?: string;
}

/** A ustar writer good enough to craft hostile archives. */
function tarEntry(e: Entry): Buffer {
  const body = typeof e.body === 'string' ? Buffer.from(e.body) : (e.body ?? Buffer.alloc(0));
  const h = Buffer.alloc(512);
  h.write(e.name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(body.length.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(e.type ?? '0', 156);
  if (e.linkname !== undefined) h.write(e.linkname, 157, 100);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const pad = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([h, body, pad]);
}

function pax(records: Record<string, string>): Buffer {
  let text = '';
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    let len = rest.length + 1;
    while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
    text += `${len}${rest}`;
  }
  return Buffer.from(text);
}

function tgz(entries: Entry[]): Buffer {
  return zlib.gzipSync(Buffer.concat([...entries.map(tarEntry), Buffer.alloc(1024)]));
}

const WASM = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
const good: Entry[] = [
  { name: '/data.json', body: '{"pgward":{"readers":["alice"]}}' },
  { name: '/policy.wasm', body: WASM },
  { name: '/.manifest', body: '{"revision":"r42","roots":[""],"metadata":{"opa_version":"1.22.3"}}' },
];

function loadErr(fn: () => unknown): PgwardError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PgwardError);
    expect((err as PgwardError).code).toBe(ErrorCodes.BUNDLE_LOAD);
    return err as PgwardError;
  }
  throw new Error('expected a PgwardError');
}

describe('loadBundleFromBuffer', () => {
  it('reads an opa build -t wasm style archive', () => {
    const b = loadBundleFromBuffer(tgz(good), 'mem');
    expect(b.wasm.equals(WASM)).toBe(true);
    expect(b.data).toEqual({ pgward: { readers: ['alice'] } });
    expect(b.manifest).toEqual({ revision: 'r42', roots: [''], metadata: { opa_version: '1.22.3' } });
    expect([...b.files.keys()].sort()).toEqual(['.manifest', 'data.json', 'policy.wasm']);
    expect(b.source).toBe('mem');
  });

  it('defaults revision and data when manifest and data.json are absent; accepts ./ and directories', () => {
    const b = loadBundleFromBuffer(
      tgz([
        { name: './', type: '5' },
        { name: 'src/', type: '5' },
        { name: './policy.wasm', body: WASM },
      ]),
      'mem',
    );
    expect(b.manifest).toEqual({ revision: '' });
    expect(b.data).toEqual({});
  });

  it('honours PAX and GNU long names', () => {
    const long = 'a/'.repeat(80) + 'x.rego';
    const b = loadBundleFromBuffer(
      tgz([
        { name: 'PaxHeader', type: 'x', body: pax({ path: long }) },
        { name: 'short', body: 'package x' },
        { name: '././@LongLink', type: 'L', body: 'b/'.repeat(70) + 'y.rego\0' },
        { name: 'short2', body: 'package y' },
        ...good,
      ]),
      'mem',
    );
    expect(b.files.get(long)?.toString()).toBe('package x');
    expect(b.files.has('b/'.repeat(70) + 'y.rego')).toBe(true);
  });

  const refused: [string, Entry[], RegExp][] = [
    ['.. in a file path', [...good, { name: '../evil.rego', body: 'x' }], /path traversal/],
    ['.. deep in a path', [...good, { name: '/a/../../etc/passwd', body: 'x' }], /path traversal/],
    ['.. in a directory', [...good, { name: 'a/../../', type: '5' }], /path traversal/],
    [
      '.. through a PAX path',
      [
        { name: 'p', type: 'x', body: pax({ path: '../../x' }) },
        { name: 'ok', body: 'x' },
      ],
      /path traversal/,
    ],
    ['a symlink', [...good, { name: 'link', type: '2', linkname: '/etc/passwd' }], /unsupported type/],
    ['a hard link', [...good, { name: 'link', type: '1', linkname: 'policy.wasm' }], /unsupported type/],
    ['a device', [...good, { name: 'dev', type: '3' }], /unsupported type/],
    ['a duplicate entry', [...good, { name: 'policy.wasm', body: 'other' }], /duplicate/],
    ['no policy.wasm', [good[0]!, good[2]!], /no \/policy.wasm/],
    ['bad data.json', [good[1]!, { name: 'data.json', body: '{' }], /data.json is not valid JSON/],
    ['data.json not an object', [good[1]!, { name: 'data.json', body: '[1]' }], /data.json is not an object/],
    ['nested data.json', [...good, { name: 'x/data.json', body: '{}' }], /nested data file/],
    ['extra wasm', [...good, { name: 'x/other.wasm', body: WASM }], /extra wasm/],
    ['bad manifest', [good[1]!, { name: '.manifest', body: '{"revision":7}' }], /revision is not a string/],
    ['manifest roots', [good[1]!, { name: '.manifest', body: '{"roots":"x"}' }], /roots/],
  ];
  it.each(refused)('refuses %s', (_name, entries, message) => {
    expect(loadErr(() => loadBundleFromBuffer(tgz(entries), 'mem')).message).toMatch(message);
  });

  it('refuses a corrupt header checksum', () => {
    const tar = Buffer.concat([...good.map(tarEntry), Buffer.alloc(1024)]);
    tar[0] = 'X'.charCodeAt(0);
    expect(loadErr(() => loadBundleFromBuffer(zlib.gzipSync(tar), 'mem')).message).toMatch(/checksum/);
  });

  it('refuses a truncated archive and non-gzip bytes', () => {
    const tar = Buffer.concat(good.map(tarEntry));
    expect(loadErr(() => loadBundleFromBuffer(zlib.gzipSync(tar.subarray(0, 700)), 'mem')).message).toMatch(
      /truncated/,
    );
    expect(loadErr(() => loadBundleFromBuffer(Buffer.from('PK\x03\x04'), 'mem')).message).toMatch(
      /not a gzip/,
    );
    expect(loadErr(() => loadBundleFromBuffer(tgz(good).subarray(0, 30), 'mem')).message).toMatch(/gzip/);
  });

  it('bounds the unpacked size (a gzip bomb stops early) and the file count', () => {
    const bomb = tgz([...good, { name: 'zeros', body: Buffer.alloc(8 * 1024 * 1024) }]);
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect(loadErr(() => loadBundleFromBuffer(bomb, 'mem', { maxBytes: 1024 * 1024 })).message).toMatch(
      /exceeds|gzip/,
    );
    const many = tgz([...good, ...Array.from({ length: 20 }, (_, i) => ({ name: `f${i}.rego`, body: 'x' }))]);
    expect(loadErr(() => loadBundleFromBuffer(many, 'mem', { maxFiles: 10 })).message).toMatch(
      /more than 10 files/,
    );
  });
});

describe('loadBundle', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgward-bundle-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function rejects(p: Promise<unknown>): Promise<PgwardError> {
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PgwardError);
    expect((err as PgwardError).code).toBe(ErrorCodes.BUNDLE_LOAD);
    return err as PgwardError;
  }

  it('reads a .tar.gz file', async () => {
    const file = path.join(dir, 'bundle.tar.gz');
    await fs.writeFile(file, tgz(good));
    const b = await loadBundle(file);
    expect(b.manifest.revision).toBe('r42');
    expect(b.source).toBe(file);
  });

  it('reads a directory, following links only inside it (ConfigMap layout)', async () => {
    const real = path.join(dir, '..2024_01_01');
    await fs.mkdir(real);
    await fs.writeFile(path.join(real, 'policy.wasm'), WASM);
    await fs.writeFile(path.join(real, 'data.json'), '{"a":1}');
    await fs.writeFile(path.join(real, '.manifest'), '{"revision":"dir-1"}');
    await fs.symlink('..2024_01_01', path.join(dir, '..data'));
    for (const f of ['policy.wasm', 'data.json', '.manifest'])
      await fs.symlink(`..data/${f}`, path.join(dir, f));
    const b = await loadBundle(dir);
    expect(b.manifest.revision).toBe('dir-1');
    expect(b.data).toEqual({ a: 1 });
    expect([...b.files.keys()].sort()).toEqual(['.manifest', 'data.json', 'policy.wasm']);
  });

  it('refuses a directory link that leaves the bundle', async () => {
    await fs.writeFile(path.join(dir, 'policy.wasm'), WASM);
    const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'pgward-outside-'));
    try {
      await fs.writeFile(path.join(outside, 'secret'), 'x');
      await fs.symlink(path.join(outside, 'secret'), path.join(dir, 'secret'));
      expect((await rejects(loadBundle(dir))).message).toMatch(/outside the bundle/);
    } finally {
      await fs.rm(outside, { recursive: true, force: true });
    }
  });

  it('bounds a directory bundle', async () => {
    await fs.writeFile(path.join(dir, 'policy.wasm'), WASM);
    await fs.writeFile(path.join(dir, 'big.rego'), Buffer.alloc(4096));
    expect((await rejects(loadBundle(dir, { maxBytes: 1024 }))).message).toMatch(/exceeds 1024/);
  });

  it('refuses a missing source and an oversize file', async () => {
    expect((await rejects(loadBundle(path.join(dir, 'nope.tar.gz')))).message).toMatch(/ENOENT/);
    const file = path.join(dir, 'b.tar.gz');
    await fs.writeFile(file, tgz(good));
    expect((await rejects(loadBundle(file, { maxBytes: 10 }))).message).toMatch(/larger than 10/);
  });
});
