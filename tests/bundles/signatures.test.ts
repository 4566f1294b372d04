/**
 * Signed bundles built by the pinned OPA (`opa build --signing-key`): valid RS256, ES256 and HS256
 * signatures are accepted; tampered (changed, added, removed file), unsigned, wrong-key and
 * wrong-key-id bundles are refused with PGWARD_ERR_BUNDLE_SIGNATURE (422 from the sidecar) while
 * the previous bundle keeps serving.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildBundleWithData, startGateway, stopAllGateways } from '../helpers/gateway';
import {
  buildSignedBundle,
  bundleView,
  makeKeys,
  queryThrough,
  reloadViaSidecar,
  repack,
  replaceFile,
  tempDir,
  type Keys,
} from './support';

jest.setTimeout(180_000);

const KEY_ID = 'pgward-test';
let dir = '';
let keys: Keys;

beforeAll(async () => {
  dir = tempDir('pgward-sig-');
  keys = await makeKeys(dir);
});

afterAll(async () => {
  await stopAllGateways();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const algs = [
  { alg: 'RS256', signingKey: () => keys.rsaPrivate, config: () => ({ key_file: keys.rsaPublic }) },
  { alg: 'ES256', signingKey: () => keys.ecPrivate, config: () => ({ key_file: keys.ecPublic }) },
  { alg: 'HS256', signingKey: () => keys.hmacSecret, config: () => ({ key: keys.hmacSecret }) },
] as const;

describe.each(algs)('$alg', ({ alg, signingKey, config }) => {
  it('accepts valid signatures and refuses tampered, unsigned, wrong-key and wrong-key-id bundles', async () => {
    const work = fs.mkdtempSync(path.join(dir, `${alg}-`));
    const sign = (
      name: string,
      revision: string,
      extra: { key?: string; keyId?: string; data?: Record<string, unknown> } = {},
    ) =>
      buildSignedBundle({
        out: path.join(work, name),
        revision,
        alg,
        signingKey: extra.key ?? signingKey(),
        keyId: extra.keyId ?? KEY_ID,
        data: { admins: ['postgres'], ...extra.data },
        workDir: work,
      });
    const revA = `signed-${alg}-a`;
    const revB = `signed-${alg}-b`;
    const good = await sign('a.tar.gz', revA);
    const goodB = await sign('b.tar.gz', revB, { data: { break_glass: ['pgward_sig_b'] } });

    const active = path.join(work, 'active.tar.gz');
    replaceFile(good, active);
    const gw = await startGateway({
      bundle: active,
      config: {
        policy: { watch: false, signing: { verify: true, algorithm: alg, key_id: KEY_ID, ...config() } },
        audit: { sink: 'none' },
      },
    });
    expect((await bundleView(gw)).revision).toBe(revA);
    expect(gw.logs.find((l) => l.msg === 'policy bundle activated')).toMatchObject({
      revision: revA,
      signed: true,
    });

    const bad: Array<[string, string, RegExp]> = [
      [
        'changed data.json',
        await repack(
          good,
          path.join(work, 'changed.tar.gz'),
          (d) => {
            const f = path.join(d, 'data.json');
            const data = JSON.parse(fs.readFileSync(f, 'utf8')) as { pgward: { admins: string[] } };
            data.pgward.admins.push('mallory');
            fs.writeFileSync(f, JSON.stringify(data));
          },
          work,
        ),
        /data\.json does not match its signed digest/,
      ],
      [
        'changed policy.wasm',
        await repack(
          good,
          path.join(work, 'wasm.tar.gz'),
          (d) => {
            const f = path.join(d, 'policy.wasm');
            const b = fs.readFileSync(f);
            b.writeUInt8(b.readUInt8(b.length - 1) ^ 0x01, b.length - 1);
            fs.writeFileSync(f, b);
          },
          work,
        ),
        /policy\.wasm does not match/,
      ],
      [
        'added file',
        await repack(
          good,
          path.join(work, 'added.tar.gz'),
          (d) => fs.writeFileSync(path.join(d, 'extra.rego'), 'package extra\n'),
          work,
        ),
        /extra\.rego is in the bundle but not in its signature/,
      ],
      [
        'removed file',
        await repack(
          good,
          path.join(work, 'removed.tar.gz'),
          (d) => fs.rmSync(path.join(d, 'decision.rego')),
          work,
        ),
        /missing from the bundle: decision\.rego/,
      ],
      [
        'unsigned',
        await repack(
          good,
          path.join(work, 'unsigned.tar.gz'),
          (d) => fs.rmSync(path.join(d, '.signatures.json')),
          work,
        ),
        /not signed/,
      ],
      ['unsigned (plain build)', await buildBundleWithData({ admins: ['postgres'] }), /not signed/],
      [
        'wrong key',
        await sign('wrong-key.tar.gz', 'wrong-key', {
          key: { RS256: keys.rsaOtherPrivate, ES256: keys.ecOtherPrivate, HS256: `${keys.hmacSecret}-other` }[
            alg
          ],
        }),
        /does not verify with the configured key/,
      ],
      [
        'wrong key id',
        await sign('wrong-kid.tar.gz', 'wrong-kid', { keyId: 'someone-else' }),
        /key id "someone-else"/,
      ],
    ];

    for (const [what, file, reason] of bad) {
      replaceFile(file, active);
      const r = await reloadViaSidecar(gw);
      expect({ what, status: r.status, code: r.body.code }).toEqual({
        what,
        status: 422,
        code: 'PGWARD_ERR_BUNDLE_SIGNATURE',
      });
      expect(String(r.body.error)).toMatch(reason);
      const view = await bundleView(gw);
      expect(view.revision).toBe(revA);
      expect(view.last_reload_error).toMatch(/^PGWARD_ERR_BUNDLE_SIGNATURE: bundle signature: /);
      expect(await queryThrough(gw, 'SELECT 7 AS n')).toBe(7);
    }
    expect((await gw.admin('/readyz')).status).toBe(200);
    const metrics = await (await gw.admin('/metrics')).text();
    expect(metrics).toMatch(new RegExp(`pgward_bundle_reloads_total\\{result="failure"\\} ${bad.length}\\b`));

    replaceFile(goodB, active);
    expect(await reloadViaSidecar(gw)).toEqual({ status: 200, body: { revision: revB } });
    const view = await bundleView(gw);
    expect(view.revision).toBe(revB);
    expect(view.last_reload_error).toBeNull();
    await gw.stop();
  });
});

it('refuses to start with verification on and a key that does not fit the algorithm', async () => {
  await expect(
    startGateway({
      config: {
        policy: { watch: false, signing: { verify: true, algorithm: 'ES256', key_file: keys.rsaPublic } },
      },
    }),
  ).rejects.toThrow(/exited with 1.*ES256 needs an EC P-256 key/s);
});

it('with verification on, does not start serving an unsigned bundle', async () => {
  const unsigned = await buildBundleWithData({ admins: ['postgres'] });
  const gw = await startGateway({
    bundle: unsigned,
    config: {
      policy: {
        watch: false,
        signing: { verify: true, algorithm: 'RS256', key_file: keys.rsaPublic, key_id: KEY_ID },
      },
      audit: { sink: 'none' },
    },
  });
  const view = await bundleView(gw);
  expect(view.active).toBe(false);
  expect(view.last_reload_error).toMatch(
    /^PGWARD_ERR_BUNDLE_SIGNATURE: bundle signature: the bundle is not signed/,
  );
  expect((await gw.admin('/readyz')).status).toBe(503);
  await gw.stop();
});
