import { createHash, createHmac, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, PgwardError } from '../errors';
import {
  canonicalJson,
  createSignatureVerifier,
  encodeGoString,
  hashBundleFile,
  verifyBundleSignature,
  type SigningAlgorithm,
} from './bundle-signature';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsa2 = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ecOther = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
const pem = (k: KeyObject): string => k.export({ type: 'spki', format: 'pem' }).toString();
const SECRET = 'a shared secret of reasonable length!';

const b64 = (v: unknown): string =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

interface SignOpts {
  alg: SigningAlgorithm;
  key: KeyObject | string;
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  /** Files listed in the payload; defaults to the digests of `files`. */
  listed?: Array<{ name: string; hash: string; algorithm: string }>;
}

/** Signs like `opa build --signing-key`: a JWS over {files, keyid} with the kid header. */
function signToken(files: Map<string, Buffer>, o: SignOpts): string {
  const header = { alg: o.alg, kid: 'global', typ: 'JWT', ...o.header };
  const listed =
    o.listed ??
    [...files].map(([name, bytes]) => ({ name, hash: hashBundleFile(name, bytes), algorithm: 'SHA-256' }));
  const payload = { files: listed, keyid: 'global', ...o.claims };
  const input = `${b64(header)}.${b64(payload)}`;
  let sig: Buffer;
  if (o.alg === 'HS256')
    sig = createHmac('sha256', o.key as string)
      .update(input)
      .digest();
  else if (o.alg === 'RS256') sig = cryptoSign('sha256', Buffer.from(input), o.key as KeyObject);
  else sig = cryptoSign('sha256', Buffer.from(input), { key: o.key as KeyObject, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

function bundleFiles(): Map<string, Buffer> {
  return new Map<string, Buffer>([
    ['data.json', Buffer.from('{"pgward": {"admins": ["postgres"], "limit": 1.50}}')],
    ['policy.wasm', Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])],
    ['.manifest', Buffer.from('{"revision":"r1","roots":[""]}')],
    ['decision.rego', Buffer.from('package pgward\n')],
  ]);
}

function signed(o: SignOpts, files = bundleFiles()): Map<string, Buffer> {
  const token = signToken(files, o);
  const out = new Map(files);
  out.set('.signatures.json', Buffer.from(JSON.stringify({ signatures: [token], plugin: '_default' })));
  return out;
}

const rsVerifier = createSignatureVerifier({ algorithm: 'RS256', key: pem(rsa.publicKey), keyId: 'global' });
const esVerifier = createSignatureVerifier({ algorithm: 'ES256', key: pem(ec.publicKey), keyId: 'global' });
const hsVerifier = createSignatureVerifier({ algorithm: 'HS256', key: SECRET, keyId: 'global' });

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PgwardError);
    expect((err as PgwardError).code).toBe(ErrorCodes.BUNDLE_SIGNATURE);
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('canonicalJson (OPA bundle/hash.go)', () => {
  // Digest computed by `opa sign` (OPA 1.22.3) over this exact data.json.
  const vector =
    '{ "z": 1.50, "a": {"y": [1e3, -0, 2E-2, true, null, false], "x": "<tag> & \\u2028 \\u0001 \\b\\f\\n\\r\\t \\"q\\" \\\\ / \\u00e9 \\ud83d\\ude00"}, "\\u00e9": "k", "e": 1, "a2": {}, "arr": [], "dup": 1, "dup": 2, "\\uffff": 0, "\\ud800\\udc00": 1 }';

  it('matches the digest OPA signs for a data.json', () => {
    expect(hashBundleFile('data.json', Buffer.from(vector))).toBe(
      'f28292998f6997862cc2e8a349888127804241cf485764cc19c0708b6a1dba16',
    );
  });

  it('sorts keys bytewise, keeps number literals, drops whitespace, last duplicate wins', () => {
    expect(canonicalJson(vector)).toBe(
      '{"a":{"x":"<tag> & \\u2028 \\u0001 \\b\\f\\n\\r\\t \\"q\\" \\\\ / é 😀","y":[1e3,-0,2E-2,true,null,false]},"a2":{},"arr":[],"dup":2,"e":1,"z":1.50,"é":"k","\uffff":0,"𐀀":1}',
    );
  });

  it('hashes .manifest canonically and other files raw', () => {
    const a = Buffer.from('{"revision":"r1","roots":[""]}');
    const b = Buffer.from('{\n  "roots": [""],\n  "revision": "r1"\n}\n');
    expect(hashBundleFile('.manifest', a)).toBe(hashBundleFile('.manifest', b));
    expect(hashBundleFile('x.rego', a)).toBe(createHash('sha256').update(a).digest('hex'));
    expect(hashBundleFile('x.rego', a)).not.toBe(hashBundleFile('x.rego', b));
  });

  it('replaces lone surrogates with U+FFFD and escapes like Go', () => {
    expect(canonicalJson('"\\ud800x"')).toBe('"\ufffdx"');
    expect(encodeGoString('\u001f\u007f<>&\u2029')).toBe('"\\u001f\u007f<>&\\u2029"');
  });

  it.each(['', '{', '{"a":1,}', '[1 2]', '01', '1.', '-', '"\\x"', '"a\nb"', 'tru', '{} {}', '{"a"}'])(
    'refuses invalid JSON %j',
    (text) => {
      expect(() => canonicalJson(text)).toThrow(/invalid JSON/);
    },
  );

  it('refuses unsupported digest algorithms', () => {
    expect(refusal(() => hashBundleFile('x', Buffer.alloc(0), 'MD5'))).toMatch(/MD5/);
  });
});

describe('verifyBundleSignature', () => {
  it.each([
    ['RS256', rsa.privateKey, rsVerifier],
    ['ES256', ec.privateKey, esVerifier],
    ['HS256', SECRET, hsVerifier],
  ] as const)('accepts a valid %s signature', (alg, key, verifier) => {
    const files = signed({ alg, key });
    const r = verifyBundleSignature(files, verifier);
    expect(r.keyId).toBe('global');
    expect(r.files.sort()).toEqual(['.manifest', 'data.json', 'decision.rego', 'policy.wasm']);
  });

  it('accepts data.json reformatted without changing its meaning', () => {
    const files = signed({ alg: 'RS256', key: rsa.privateKey });
    files.set(
      'data.json',
      Buffer.from('{\n  "pgward": {\n    "limit": 1.50,\n    "admins": ["postgres"]\n  }\n}\n'),
    );
    expect(() => verifyBundleSignature(files, rsVerifier)).not.toThrow();
  });

  it('refuses an unsigned bundle', () => {
    expect(refusal(() => verifyBundleSignature(bundleFiles(), rsVerifier))).toMatch(/not signed/);
  });

  it('refuses a changed file, an added file and a removed file', () => {
    const changed = signed({ alg: 'RS256', key: rsa.privateKey });
    changed.set('data.json', Buffer.from('{"pgward": {"admins": ["mallory"], "limit": 1.50}}'));
    expect(refusal(() => verifyBundleSignature(changed, rsVerifier))).toMatch(/data.json does not match/);

    const changedNumber = signed({ alg: 'RS256', key: rsa.privateKey });
    changedNumber.set('data.json', Buffer.from('{"pgward": {"admins": ["postgres"], "limit": 1.5}}'));
    expect(refusal(() => verifyBundleSignature(changedNumber, rsVerifier))).toMatch(
      /data.json does not match/,
    );

    const wasm = signed({ alg: 'RS256', key: rsa.privateKey });
    wasm.set('policy.wasm', Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 1]));
    expect(refusal(() => verifyBundleSignature(wasm, rsVerifier))).toMatch(/policy.wasm does not match/);

    const added = signed({ alg: 'RS256', key: rsa.privateKey });
    added.set('extra.rego', Buffer.from('package extra\n'));
    expect(refusal(() => verifyBundleSignature(added, rsVerifier))).toMatch(
      /extra.rego is in the bundle but not/,
    );

    const removed = signed({ alg: 'RS256', key: rsa.privateKey });
    removed.delete('decision.rego');
    expect(refusal(() => verifyBundleSignature(removed, rsVerifier))).toMatch(
      /missing from the bundle: decision.rego/,
    );
  });

  it('refuses a signature made with another key', () => {
    expect(
      refusal(() => verifyBundleSignature(signed({ alg: 'RS256', key: rsa2.privateKey }), rsVerifier)),
    ).toMatch(/does not verify/);
    expect(
      refusal(() => verifyBundleSignature(signed({ alg: 'HS256', key: 'other secret' }), hsVerifier)),
    ).toMatch(/does not verify/);
    const otherEc = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(
      refusal(() => verifyBundleSignature(signed({ alg: 'ES256', key: otherEc.privateKey }), esVerifier)),
    ).toMatch(/does not verify/);
  });

  it('refuses another key id, in the header or in the keyid claim', () => {
    const h = signed({ alg: 'RS256', key: rsa.privateKey, header: { kid: 'other' } });
    expect(refusal(() => verifyBundleSignature(h, rsVerifier))).toMatch(/key id "other"/);
    const c = signed({
      alg: 'RS256',
      key: rsa.privateKey,
      header: { kid: undefined },
      claims: { keyid: 'other' },
    });
    expect(refusal(() => verifyBundleSignature(c, rsVerifier))).toMatch(/key id "other"/);
  });

  it('refuses an algorithm other than the configured one (no HS256 with the RSA public key)', () => {
    const confused = signed({ alg: 'HS256', key: pem(rsa.publicKey) });
    expect(refusal(() => verifyBundleSignature(confused, rsVerifier))).toMatch(/signed with "HS256"/);
    const none = signed({ alg: 'RS256', key: rsa.privateKey, header: { alg: 'none' } });
    expect(refusal(() => verifyBundleSignature(none, rsVerifier))).toMatch(/signed with "none"/);
  });

  it('checks the scope', () => {
    const scoped = createSignatureVerifier({
      algorithm: 'HS256',
      key: SECRET,
      keyId: 'global',
      scope: 'write',
    });
    expect(() =>
      verifyBundleSignature(signed({ alg: 'HS256', key: SECRET, claims: { scope: 'write' } }), scoped),
    ).not.toThrow();
    expect(refusal(() => verifyBundleSignature(signed({ alg: 'HS256', key: SECRET }), scoped))).toMatch(
      /scope/,
    );
    expect(
      refusal(() =>
        verifyBundleSignature(signed({ alg: 'HS256', key: SECRET, claims: { scope: 'read' } }), hsVerifier),
      ),
    ).toMatch(/scope/);
  });

  it('refuses malformed signature files', () => {
    const token = signToken(bundleFiles(), { alg: 'HS256', key: SECRET });
    const cases: Array<[string, RegExp]> = [
      ['not json', /not JSON/],
      [JSON.stringify({ signatures: [] }), /exactly one JWT/],
      [JSON.stringify({ signatures: [token, token] }), /exactly one JWT/],
      [JSON.stringify({ signatures: ['a.b'] }), /compact form/],
      [JSON.stringify({ signatures: [token], plugin: 'custom' }), /plugin/],
      [JSON.stringify({ signatures: [token.replace(/\.[^.]+$/, '.')] }), /does not verify/],
    ];
    for (const [text, re] of cases) {
      const files = bundleFiles();
      files.set('.signatures.json', Buffer.from(text));
      expect(refusal(() => verifyBundleSignature(files, hsVerifier))).toMatch(re);
    }
    const nested = signed({ alg: 'HS256', key: SECRET });
    nested.set('sub/.signatures.json', nested.get('.signatures.json')!);
    expect(refusal(() => verifyBundleSignature(nested, hsVerifier))).toMatch(/exactly one/);
  });

  it('refuses weak digest algorithms and duplicate entries in the files list', () => {
    const files = bundleFiles();
    const listed = [...files].map(([name, bytes]) => ({
      name,
      hash: createHash('md5').update(bytes).digest('hex'),
      algorithm: 'MD5',
    }));
    expect(
      refusal(() => verifyBundleSignature(signed({ alg: 'HS256', key: SECRET, listed }), hsVerifier)),
    ).toMatch(/MD5/);
    const dup = [...files].map(([name, bytes]) => ({
      name,
      hash: hashBundleFile(name, bytes),
      algorithm: 'SHA-256',
    }));
    dup.push(dup[0]!);
    expect(
      refusal(() => verifyBundleSignature(signed({ alg: 'HS256', key: SECRET, listed: dup }), hsVerifier)),
    ).toMatch(/listed twice/);
  });
});

describe('createSignatureVerifier', () => {
  const misconfig = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      expect((err as PgwardError).code).toBe(ErrorCodes.CONFIG_INVALID);
      return (err as Error).message;
    }
    throw new Error('expected a configuration error');
  };

  it('refuses keys that do not fit the algorithm', () => {
    expect(
      misconfig(() => createSignatureVerifier({ algorithm: 'RS256', key: pem(ec.publicKey), keyId: 'k' })),
    ).toMatch(/RSA/);
    expect(
      misconfig(() => createSignatureVerifier({ algorithm: 'ES256', key: pem(rsa.publicKey), keyId: 'k' })),
    ).toMatch(/P-256/);
    expect(
      misconfig(() =>
        createSignatureVerifier({ algorithm: 'ES256', key: pem(ecOther.publicKey), keyId: 'k' }),
      ),
    ).toMatch(/P-256/);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(
      misconfig(() => createSignatureVerifier({ algorithm: 'RS256', key: pem(small.publicKey), keyId: 'k' })),
    ).toMatch(/2048/);
    expect(
      misconfig(() => createSignatureVerifier({ algorithm: 'RS256', key: 'garbage', keyId: 'k' })),
    ).toMatch(/PEM/);
    expect(misconfig(() => createSignatureVerifier({ algorithm: 'RS256', keyId: 'k' }))).toMatch(
      /neither key nor key_file/,
    );
    expect(misconfig(() => createSignatureVerifier({ algorithm: 'HS256', key: '', keyId: 'k' }))).toMatch(
      /empty/,
    );
  });

  it('reads key files; an HS256 secret file loses its trailing newline', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgward-sig-'));
    try {
      writeFileSync(join(dir, 'secret'), `${SECRET}\n`);
      writeFileSync(join(dir, 'rsa.pem'), pem(rsa.publicKey));
      const hs = createSignatureVerifier({
        algorithm: 'HS256',
        keyFile: join(dir, 'secret'),
        keyId: 'global',
      });
      expect(() => verifyBundleSignature(signed({ alg: 'HS256', key: SECRET }), hs)).not.toThrow();
      const rs = createSignatureVerifier({
        algorithm: 'RS256',
        keyFile: join(dir, 'rsa.pem'),
        keyId: 'global',
      });
      expect(() => verifyBundleSignature(signed({ alg: 'RS256', key: rsa.privateKey }), rs)).not.toThrow();
      expect(
        misconfig(() =>
          createSignatureVerifier({ algorithm: 'HS256', keyFile: join(dir, 'nope'), keyId: 'global' }),
        ),
      ).toMatch(/cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
