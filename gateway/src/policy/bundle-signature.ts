/**
 * Verification of OPA signed bundles (`opa build --signing-key`, `opa sign`): the bundle's
 * `/.signatures.json` holds `{"signatures": ["<compact JWS>"]}` whose payload lists every file with
 * its digest (`{"files": [{"name", "hash", "algorithm"}], "keyid"?, "scope"?}`). A bundle is
 * accepted only when the JWS verifies with the configured key and algorithm, the key id and scope
 * match, and the set of files in the bundle is exactly the set of files signed, each with the
 * signed digest. https://www.openpolicyagent.org/docs/latest/management-bundles/#signing
 *
 * Digests follow OPA's bundle/hash.go: `data.json`, `data.yaml`/`data.yml` and `.manifest` are
 * hashed in a canonical JSON form (object keys sorted bytewise, no whitespace, numbers as written,
 * strings re-encoded like Go's encoding/json without HTML escaping); every other file is hashed as
 * its raw bytes.
 */
import {
  createHash,
  createHmac,
  createPublicKey,
  createSecretKey,
  timingSafeEqual,
  verify as cryptoVerify,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ErrorCodes, PgwardError } from '../errors';

export type SigningAlgorithm = 'RS256' | 'ES256' | 'HS256';

export const SIGNATURES_FILE = '.signatures.json';

export interface SigningOptions {
  algorithm: SigningAlgorithm;
  /** PEM public key or certificate (RS256, ES256), or the shared secret (HS256). */
  key?: string | undefined;
  /** File holding the same; for HS256 one trailing newline is dropped. */
  keyFile?: string | undefined;
  /** The key id the bundle must be signed with (`kid` header or `keyid` claim, when present). */
  keyId: string;
  /** The scope the signature must carry; absent means the token must carry none. */
  scope?: string | undefined;
}

/** A loaded verification key; built once from configuration, so a bad key fails at startup. */
export interface SignatureVerifier {
  readonly algorithm: SigningAlgorithm;
  readonly keyId: string;
  readonly scope: string;
  readonly key: KeyObject;
}

export interface VerifiedSignature {
  keyId: string;
  scope: string;
  /** The signed (and verified) file names. */
  files: string[];
}

/** Digest algorithms accepted in the `files` list; OPA's MD5 and SHA-1 are refused as too weak. */
const FILE_HASHES: Readonly<Record<string, string>> = {
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
};

const MIN_RSA_BITS = 2048;

function refuse(why: string): never {
  throw new PgwardError(ErrorCodes.BUNDLE_SIGNATURE, `bundle signature: ${why}`);
}

function misconfigured(why: string): never {
  throw new PgwardError(ErrorCodes.CONFIG_INVALID, `policy.signing: ${why}`);
}

/** Loads the configured key and checks that it fits the algorithm. Throws PGWARD_ERR_CONFIG_INVALID. */
export function createSignatureVerifier(opts: SigningOptions): SignatureVerifier {
  if (opts.key !== undefined && opts.keyFile !== undefined) misconfigured('set key or key_file, not both');
  let material: Buffer;
  if (opts.key !== undefined) {
    material = Buffer.from(opts.key, 'utf8');
  } else if (opts.keyFile !== undefined) {
    try {
      material = readFileSync(opts.keyFile);
    } catch (err) {
      misconfigured(`cannot read key_file ${opts.keyFile}: ${(err as Error).message}`);
    }
  } else {
    misconfigured('verify is on but neither key nor key_file is set');
  }
  if (opts.keyId === '') misconfigured('key_id must not be empty');
  const base = { algorithm: opts.algorithm, keyId: opts.keyId, scope: opts.scope ?? '' };
  if (opts.algorithm === 'HS256') {
    const secret = opts.keyFile !== undefined ? stripNewline(material) : material;
    if (secret.length === 0) misconfigured('the HS256 secret is empty');
    return { ...base, key: createSecretKey(secret) };
  }
  const key = loadPublicKey(material);
  if (opts.algorithm === 'RS256') {
    if (key.asymmetricKeyType !== 'rsa')
      misconfigured(`RS256 needs an RSA key, got ${key.asymmetricKeyType}`);
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) misconfigured(`RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
  } else {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
      misconfigured(`ES256 needs an EC P-256 key, got ${key.asymmetricKeyType ?? '?'} ${curve ?? ''}`.trim());
    }
  }
  return { ...base, key };
}

function stripNewline(b: Buffer): Buffer {
  let end = b.length;
  if (end > 0 && b[end - 1] === 0x0a) end--;
  if (end > 0 && b[end - 1] === 0x0d) end--;
  return b.subarray(0, end);
}

function loadPublicKey(pem: Buffer): KeyObject {
  const text = pem.toString('utf8');
  try {
    if (text.includes('-----BEGIN CERTIFICATE-----')) return new X509Certificate(pem).publicKey;
    // A private key is accepted too (its public half is used), as OPA does.
    return createPublicKey({ key: text, format: 'pem' });
  } catch (err) {
    misconfigured(`cannot parse the PEM key: ${(err as Error).message}`);
  }
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function decodeB64Url(part: string, what: string): Buffer {
  if (!B64URL.test(part) || part.length % 4 === 1) refuse(`${what} is not base64url`);
  return Buffer.from(part, 'base64url');
}

function parseJsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    refuse(`${what} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) refuse(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

function optionalString(obj: Record<string, unknown>, key: string, what: string): string | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') refuse(`${what} ${key} is not a string`);
  return v;
}

/** Checks the JWS signature over `header.payload` with the configured key. */
function checkJws(signingInput: Buffer, signature: Buffer, v: SignatureVerifier): boolean {
  switch (v.algorithm) {
    case 'HS256': {
      const mac = createHmac('sha256', v.key).update(signingInput).digest();
      return mac.length === signature.length && timingSafeEqual(mac, signature);
    }
    case 'RS256':
      return cryptoVerify('sha256', signingInput, v.key, signature);
    case 'ES256':
      // JWS ES256 signatures are R || S, 32 bytes each (RFC 7518 section 3.4), not DER.
      if (signature.length !== 64) return false;
      return cryptoVerify('sha256', signingInput, { key: v.key, dsaEncoding: 'ieee-p1363' }, signature);
  }
}

interface SignedFile {
  hash: string;
  algorithm: string;
}

/**
 * Verifies `files` (every file of the bundle by normalized path, as `loadBundle` returns them)
 * against its `.signatures.json`. Throws PGWARD_ERR_BUNDLE_SIGNATURE with the reason.
 */
export function verifyBundleSignature(
  files: ReadonlyMap<string, Buffer>,
  v: SignatureVerifier,
): VerifiedSignature {
  const sigNames = [...files.keys()].filter(isSignaturesFile);
  if (sigNames.length === 0) refuse(`the bundle is not signed (no /${SIGNATURES_FILE})`);
  if (sigNames.length > 1 || sigNames[0] !== SIGNATURES_FILE) {
    refuse(`expected exactly one /${SIGNATURES_FILE} at the bundle root, found ${sigNames.join(', ')}`);
  }
  const doc = parseJsonObject(files.get(SIGNATURES_FILE)!, SIGNATURES_FILE);
  const plugin = optionalString(doc, 'plugin', SIGNATURES_FILE);
  if (plugin !== undefined && plugin !== '' && plugin !== '_default') {
    refuse(`signature plugin ${JSON.stringify(plugin)} is not supported`);
  }
  const sigs = doc['signatures'];
  if (!Array.isArray(sigs) || sigs.length !== 1 || typeof sigs[0] !== 'string') {
    refuse(`${SIGNATURES_FILE} must hold exactly one JWT in "signatures"`);
  }
  const token = sigs[0];
  const parts = token.split('.');
  if (parts.length !== 3) refuse('the JWT is not in compact form (header.payload.signature)');
  const [h64, p64, s64] = parts as [string, string, string];
  const header = parseJsonObject(decodeB64Url(h64, 'JWT header'), 'JWT header');
  const alg = header['alg'];
  if (alg !== v.algorithm) refuse(`signed with ${JSON.stringify(alg)}, but ${v.algorithm} is configured`);
  if (header['crit'] !== undefined) refuse('JWT header has critical extensions, which are not supported');
  const payload = parseJsonObject(decodeB64Url(p64, 'JWT payload'), 'JWT payload');
  // OPA takes the key id from the header's kid, else from the deprecated keyid claim.
  const kid = optionalString(header, 'kid', 'JWT header') ?? optionalString(payload, 'keyid', 'JWT payload');
  if (kid !== undefined && kid !== v.keyId) {
    refuse(`signed with key id ${JSON.stringify(kid)}, but key id ${JSON.stringify(v.keyId)} is configured`);
  }
  const signature = decodeB64Url(s64, 'JWT signature');
  if (!checkJws(Buffer.from(`${h64}.${p64}`, 'ascii'), signature, v)) {
    refuse(`the ${v.algorithm} signature does not verify with the configured key`);
  }
  const scope = optionalString(payload, 'scope', 'JWT payload') ?? '';
  if (scope !== v.scope) refuse(`scope ${JSON.stringify(scope)} does not match ${JSON.stringify(v.scope)}`);

  const listed = payload['files'];
  if (!Array.isArray(listed)) refuse('JWT payload has no "files" list');
  const signed = new Map<string, SignedFile>();
  for (const entry of listed as unknown[]) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      refuse('a "files" entry is not an object');
    const e = entry as Record<string, unknown>;
    const name = e['name'];
    const hash = e['hash'];
    const algorithm = e['algorithm'];
    if (typeof name !== 'string' || typeof hash !== 'string' || typeof algorithm !== 'string') {
      refuse('a "files" entry lacks a string name, hash or algorithm');
    }
    const normalized = name.replace(/^\/+/, '');
    if (signed.has(normalized)) refuse(`file ${JSON.stringify(normalized)} is listed twice`);
    signed.set(normalized, { hash: hash.toLowerCase(), algorithm });
  }
  for (const [name, bytes] of files) {
    if (name === SIGNATURES_FILE) continue;
    const want = signed.get(name);
    if (want === undefined) refuse(`file ${name} is in the bundle but not in its signature`);
    const got = hashBundleFile(name, bytes, want.algorithm);
    if (got !== want.hash) refuse(`file ${name} does not match its signed digest`);
  }
  const missing = [...signed.keys()].filter((n) => !files.has(n));
  if (missing.length > 0) refuse(`signed file(s) missing from the bundle: ${missing.join(', ')}`);
  return { keyId: v.keyId, scope, files: [...signed.keys()] };
}

function isSignaturesFile(name: string): boolean {
  return name === SIGNATURES_FILE || name.endsWith(`/${SIGNATURES_FILE}`);
}

/** Whether OPA hashes the file in its canonical JSON form (bundle.IsStructuredDoc). */
export function isStructuredDoc(name: string): boolean {
  const base = name.slice(name.lastIndexOf('/') + 1);
  return base === 'data.json' || base === 'data.yaml' || base === 'data.yml' || base === '.manifest';
}

/** The hex digest OPA signs for a bundle file. */
export function hashBundleFile(name: string, bytes: Buffer, algorithm = 'SHA-256'): string {
  const nodeAlg = FILE_HASHES[algorithm];
  if (nodeAlg === undefined)
    refuse(`file ${name}: digest algorithm ${JSON.stringify(algorithm)} is not accepted`);
  const h = createHash(nodeAlg);
  if (isStructuredDoc(name)) {
    let text = bytes.toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    let canonical: string;
    try {
      canonical = canonicalJson(text);
    } catch (err) {
      refuse(`file ${name}: ${(err as Error).message}`);
    }
    h.update(canonical, 'utf8');
  } else {
    h.update(bytes);
  }
  return h.digest('hex');
}

const MAX_DEPTH = 1000;

/**
 * The text OPA feeds the hash for a structured document: objects with keys sorted by their UTF-8
 * bytes (duplicate keys: the last wins), no insignificant whitespace, numbers exactly as written
 * (OPA decodes with json.Number), strings re-encoded as Go's encoding/json does with HTML escaping
 * off. Throws an Error on invalid JSON.
 */
export function canonicalJson(text: string): string {
  let pos = 0;
  const ws = (): void => {
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) pos++;
      else return;
    }
  };
  const bad = (what: string): never => {
    throw new Error(`invalid JSON at offset ${pos}: ${what}`);
  };
  const str = (): string => {
    // pos is at the opening quote.
    pos++;
    let out = '';
    let start = pos;
    for (;;) {
      if (pos >= text.length) bad('unterminated string');
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        out += text.slice(start, pos);
        pos++;
        return out;
      }
      if (c < 0x20) bad('control character in string');
      if (c !== 0x5c) {
        pos++;
        continue;
      }
      out += text.slice(start, pos);
      const e = text[pos + 1];
      pos += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const hex = text.slice(pos, pos + 4);
          if (!/^[0-9A-Fa-f]{4}$/.test(hex)) bad('bad \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          pos += 4;
          break;
        }
        default:
          bad('bad escape');
      }
      start = pos;
    }
  };
  const num = (): string => {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = pos;
    const r = m.exec(text);
    const lit = r?.[0] ?? '';
    if (lit === '') bad('bad number');
    pos += lit.length;
    return lit;
  };
  const value = (depth: number): string => {
    if (depth > MAX_DEPTH) bad('nested too deeply');
    ws();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const members = new Map<string, string>();
      ws();
      if (text[pos] === '}') {
        pos++;
        return '{}';
      }
      for (;;) {
        ws();
        if (text[pos] !== '"') bad('expected a key');
        const key = wellFormed(str());
        ws();
        if (text[pos] !== ':') bad("expected ':'");
        pos++;
        members.set(key, value(depth + 1));
        ws();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === '}') {
          pos++;
          break;
        }
        bad("expected ',' or '}'");
      }
      const keys = [...members.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      return `{${keys.map((k) => `${encodeGoString(k)}:${members.get(k)!}`).join(',')}}`;
    }
    if (c === '[') {
      pos++;
      const items: string[] = [];
      ws();
      if (text[pos] === ']') {
        pos++;
        return '[]';
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === ']') {
          pos++;
          break;
        }
        bad("expected ',' or ']'");
      }
      return `[${items.join(',')}]`;
    }
    if (c === '"') return encodeGoString(wellFormed(str()));
    for (const lit of ['true', 'false', 'null']) {
      if (text.startsWith(lit, pos)) {
        pos += lit.length;
        return lit;
      }
    }
    return num();
  };
  const out = value(0);
  ws();
  if (pos !== text.length) bad('trailing characters');
  return out;
}

/** Lone surrogates become U+FFFD, as Go's decoder does. */
function wellFormed(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

const HEX = '0123456789abcdef';

/** Go's encoding/json string encoding with SetEscapeHTML(false). */
export function encodeGoString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | null = null;
    if (c === 0x22) esc = '\\"';
    else if (c === 0x5c) esc = '\\\\';
    else if (c < 0x20) {
      if (c === 0x08) esc = '\\b';
      else if (c === 0x0c) esc = '\\f';
      else if (c === 0x0a) esc = '\\n';
      else if (c === 0x0d) esc = '\\r';
      else if (c === 0x09) esc = '\\t';
      else esc = `\\u00${HEX[c >> 4]!}${HEX[c & 0xf]!}`;
    } else if (c === 0x2028) esc = '\\u2028';
    else if (c === 0x2029) esc = '\\u2029';
    if (esc !== null) {
      out += s.slice(start, i) + esc;
      start = i + 1;
    }
  }
  return out + s.slice(start) + '"';
}
