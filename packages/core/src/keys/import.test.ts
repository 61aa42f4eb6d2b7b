import {
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, type JWK, jwtVerify, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../audit/events.js';
import { callbackSink } from '../audit/sinks.js';
import { KeywardError, type KeywardErrorCode } from '../errors.js';
import { toHttpProblem } from '../http/errors.js';
import { createKeyward, type Keyward } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import type { ImportKeyOptions } from './import.js';
import { KEYRING_KEY, type KeyringDocument, KeyringRepository } from './keyring-store.js';
import { legacyKid } from './legacy.js';
import { MasterKey } from './master-key.js';

const MASTER = MasterKey.generate().exportText();
const HMAC_SECRET = 'express-jwt-secret-0123456789-abcdefghij'; // 40 bytes
const open: Keyward[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((kw) => kw.close()));
});

async function setup(store: Store = createMemoryStore(), extra: { jwtSecret?: string } = {}) {
  const events: AuditEvent[] = [];
  const logs: string[] = [];
  const log =
    (level: string) =>
    (...args: unknown[]) =>
      void logs.push(`${level} ${JSON.stringify(args)}`);
  const kw = await createKeyward({
    store,
    masterKey: MASTER,
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
    syncIntervalMs: 60_000,
    scheduler: false,
    audit: { sinks: [callbackSink((e) => void events.push(e))] },
    ...extra,
  });
  open.push(kw);
  return { kw, events, logs, store };
}

const rsa = (bits = 2048) => generateKeyPairSync('rsa', { modulusLength: bits });
const ec = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = () => generateKeyPairSync('ed25519');
const pem = (k: KeyObject, type: 'pkcs8' | 'spki' | 'pkcs1') => k.export({ type, format: 'pem' }) as string;

/** A token signed by the original key (as the app's previous library would). */
async function legacyToken(
  key: KeyObject,
  alg: string,
  kid: string | undefined,
  typ: string | undefined = 'JWT',
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'user-1' })
    .setProtectedHeader({ alg, ...(kid === undefined ? {} : { kid }), ...(typ === undefined ? {} : { typ }) })
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .sign(key);
}

function codeOf(fn: () => unknown): Promise<KeywardErrorCode | undefined> {
  return Promise.resolve()
    .then(fn)
    .then(
      () => undefined,
      (err: unknown) =>
        err instanceof KeywardError ? err.code : (`not a KeywardError: ${String(err)}` as KeywardErrorCode),
    );
}

describe('kw.keys.import: verify-only round trips, one per format', () => {
  const cases: Array<{
    name: string;
    make: () => { options: Omit<ImportKeyOptions, 'state' | 'kid'>; signer: KeyObject; alg: string };
  }> = [
    {
      name: 'PKCS#8 private PEM (RS256)',
      make: () => {
        const { privateKey } = rsa();
        return { options: { alg: 'RS256', key: pem(privateKey, 'pkcs8') }, signer: privateKey, alg: 'RS256' };
      },
    },
    {
      name: 'PKCS#1 RSA private PEM (PS256)',
      make: () => {
        const { privateKey } = rsa();
        return { options: { alg: 'PS256', key: pem(privateKey, 'pkcs1') }, signer: privateKey, alg: 'PS256' };
      },
    },
    {
      name: 'PKCS#1 RSA public PEM (RS256)',
      make: () => {
        const { privateKey, publicKey } = rsa();
        return { options: { alg: 'RS256', key: pem(publicKey, 'pkcs1') }, signer: privateKey, alg: 'RS256' };
      },
    },
    {
      name: 'SPKI public PEM (ES256)',
      make: () => {
        const { privateKey, publicKey } = ec();
        return { options: { alg: 'ES256', key: pem(publicKey, 'spki') }, signer: privateKey, alg: 'ES256' };
      },
    },
    {
      name: 'public JWK (Ed25519, the RFC 9864 name)',
      make: () => {
        const { privateKey, publicKey } = ed();
        const jwk = publicKey.export({ format: 'jwk' }) as JWK;
        return { options: { alg: 'Ed25519', key: jwk }, signer: privateKey, alg: 'Ed25519' };
      },
    },
    {
      name: 'JWK as JSON text with its own alg (ES256)',
      make: () => {
        const { privateKey, publicKey } = ec();
        const jwk = { ...(publicKey.export({ format: 'jwk' }) as JWK), alg: 'ES256', use: 'sig' };
        return { options: { key: JSON.stringify(jwk) }, signer: privateKey, alg: 'ES256' };
      },
    },
    {
      name: 'HMAC secret string (HS256)',
      make: () => ({
        options: { alg: 'HS256', key: HMAC_SECRET },
        signer: createSecretKey(Buffer.from(HMAC_SECRET, 'utf8')),
        alg: 'HS256',
      }),
    },
    {
      name: 'oct JWK (HS384)',
      make: () => {
        const secret = createSecretKey(Buffer.alloc(48, 7));
        return {
          options: { alg: 'HS384', key: secret.export({ format: 'jwk' }) as JWK },
          signer: secret,
          alg: 'HS384',
        };
      },
    },
  ];

  for (const c of cases) {
    it(`${c.name}: tokens of the original key verify (typ JWT, at+jwt, none); origin imported; sealed`, async () => {
      const { kw, events, store } = await setup();
      const { options, signer, alg } = c.make();
      const result = await kw.keys.import({ ...options, kid: 'app-key-1', state: 'verify-only' });
      expect(result.imported).toEqual([{ kid: 'app-key-1', alg, state: 'verify-only' }]);
      const record = kw.keys.list().find((r) => r.kid === 'app-key-1');
      expect(record).toMatchObject({ use: 'sig', alg, state: 'retiring', origin: 'imported' });
      expect(record?.verifyUntil).toBe(result.verifyUntil);
      for (const typ of ['JWT', 'at+jwt', undefined]) {
        const token = await legacyToken(signer, alg, 'app-key-1', typ);
        expect(kw.jwt.verify(token).payload.sub).toBe('user-1');
      }
      expect(events.filter((e) => e.type === 'key.imported')).toEqual([
        expect.objectContaining({ type: 'key.imported', kid: 'app-key-1', alg, state: 'verify-only' }),
      ]);
      // Sealed: the stored document holds no plaintext material, and a verify-only asymmetric key
      // keeps only its public part.
      const raw = (await store.get(KEYRING_KEY))!;
      const doc = JSON.parse(raw) as KeyringDocument;
      const stored = doc.keys.find((k) => k.kid === 'app-key-1')!;
      expect(typeof stored.sealed).toBe('string');
      const material = new KeyringRepository(store, MasterKey.parse(MASTER))
        .unseal(doc)
        .find((k) => k.record.kid === 'app-key-1')!.material;
      if (alg.startsWith('HS')) {
        expect(raw).not.toContain(material.k as string);
      } else {
        expect(material.d).toBeUndefined();
        expect(raw).not.toContain(material.x as string);
      }
      // A verify-only key never signs: the generated active key still does.
      const { header } = kw.jwt.verify(kw.jwt.sign({ sub: 'u' }));
      expect(header.kid).not.toBe('app-key-1');
    });
  }

  it('a JWKS: every key, kids from the JWKs, alg from each JWK; one compare-and-set', async () => {
    const { kw, events, store } = await setup();
    const a = ec();
    const b = rsa();
    const jwks = {
      keys: [
        { ...(await exportJWK(a.publicKey)), kid: 'idp-ec', alg: 'ES256' },
        { ...(await exportJWK(b.publicKey)), kid: 'idp-rsa', alg: 'RS256', use: 'sig' },
      ],
    };
    const before = (JSON.parse((await store.get(KEYRING_KEY))!) as KeyringDocument).generation;
    const until = Date.now() + 3_600_000;
    const result = await kw.keys.import({
      key: JSON.stringify(jwks),
      state: 'verify-only',
      verifyUntil: new Date(until),
    });
    expect(result.imported.map((k) => k.kid)).toEqual(['idp-ec', 'idp-rsa']);
    expect((JSON.parse((await store.get(KEYRING_KEY))!) as KeyringDocument).generation).toBe(before + 1);
    expect(
      kw.keys
        .list()
        .filter((r) => r.origin === 'imported')
        .map((r) => r.verifyUntil),
    ).toEqual([until, until]);
    expect(kw.jwt.verify(await legacyToken(a.privateKey, 'ES256', 'idp-ec')).kid).toBe('idp-ec');
    expect(kw.jwt.verify(await legacyToken(b.privateKey, 'RS256', 'idp-rsa')).kid).toBe('idp-rsa');
    expect(events.filter((e) => e.type === 'key.imported')).toHaveLength(2);
    // Imported public keys are in the JWKS like any retiring key.
    expect(kw.keys.jwks().keys.map((k) => k.kid)).toEqual(expect.arrayContaining(['idp-ec', 'idp-rsa']));
  });

  it('JWKS keys without kid get their RFC 7638 thumbprint; a single one the kid given', async () => {
    const { kw } = await setup();
    const a = ed();
    const b = ed();
    const [ja, jb] = [await exportJWK(a.publicKey), await exportJWK(b.publicKey)];
    const result = await kw.keys.import({ alg: 'EdDSA', key: { keys: [ja, jb] }, state: 'verify-only' });
    expect(result.imported.map((k) => k.kid)).toEqual([
      await calculateJwkThumbprint(ja),
      await calculateJwkThumbprint(jb),
    ]);
    const c = ed();
    const single = await kw.keys.import({
      kid: 'given',
      alg: 'EdDSA',
      key: { keys: [await exportJWK(c.publicKey)] },
      state: 'verify-only',
    });
    expect(single.imported.map((k) => k.kid)).toEqual(['given']);
    expect(
      kw.jwt.verify(await legacyToken(b.privateKey, 'EdDSA', await calculateJwkThumbprint(jb))).payload.sub,
    ).toBe('user-1');
  });

  it('a verify-only key stops verifying after its verifyUntil', async () => {
    let now = Date.now();
    const kw = await createKeyward({
      store: createMemoryStore(),
      masterKey: MASTER,
      logger: false,
      scheduler: false,
      audit: false,
      now: () => now,
    });
    open.push(kw);
    await kw.keys.import({
      kid: 'old',
      alg: 'HS256',
      key: HMAC_SECRET,
      state: 'verify-only',
      verifyUntil: now + 60_000,
    });
    const token = await legacyToken(createSecretKey(Buffer.from(HMAC_SECRET)), 'HS256', 'old');
    expect(kw.jwt.verify(token).kid).toBe('old');
    now += 61_000;
    expect(() => kw.jwt.verify(token)).toThrow(
      expect.objectContaining({ code: 'token_invalid', details: { kid: 'old', reason: 'key_expired' } }),
    );
  });
});

describe('kw.keys.import: active keys sign', () => {
  const cases: Array<{
    name: string;
    alg: string;
    make: () => { key: string | JWK; verifyWith: KeyObject };
  }> = [
    {
      name: 'PKCS#8 Ed25519 PEM',
      alg: 'EdDSA',
      make: () => {
        const k = ed();
        return { key: pem(k.privateKey, 'pkcs8'), verifyWith: k.publicKey };
      },
    },
    {
      name: 'PKCS#1 RSA private PEM',
      alg: 'RS256',
      make: () => {
        const k = rsa();
        return { key: pem(k.privateKey, 'pkcs1'), verifyWith: k.publicKey };
      },
    },
    {
      name: 'private EC JWK',
      alg: 'ES256',
      make: () => {
        const k = ec();
        return { key: k.privateKey.export({ format: 'jwk' }) as JWK, verifyWith: k.publicKey };
      },
    },
    {
      name: 'HMAC secret',
      alg: 'HS512',
      make: () => {
        const s = 'x'.repeat(64);
        return { key: s, verifyWith: createSecretKey(Buffer.from(s)) };
      },
    },
  ];
  for (const c of cases) {
    it(`${c.name} (${c.alg}): keyward signs, the original public key verifies (jose); rotation semantics`, async () => {
      const { kw, events } = await setup();
      const previous = kw.keys.list().find((r) => r.use === 'sig' && r.state === 'active')!;
      const standby = kw.keys.list().find((r) => r.use === 'sig' && r.state === 'pending')!;
      const { key, verifyWith } = c.make();
      const result = await kw.keys.import({ kid: 'brought', alg: c.alg as 'EdDSA', key, state: 'active' });
      expect(result.previousKid).toBe(previous.kid);
      expect(result.unpublished).toBe(!c.alg.startsWith('HS'));
      const token = kw.jwt.sign({ sub: 'u-7' });
      const { payload, protectedHeader } = await jwtVerify(token, verifyWith, { algorithms: [c.alg] });
      expect(payload.sub).toBe('u-7');
      expect(protectedHeader.kid).toBe('brought');
      const records = kw.keys.list();
      const imported = records.find((r) => r.kid === 'brought')!;
      expect(imported).toMatchObject({ state: 'active', origin: 'imported', alg: c.alg });
      // The previous key retires like after a rotation; the standby and the schedule stay.
      const demoted = records.find((r) => r.kid === previous.kid)!;
      expect(demoted.state).toBe('retiring');
      expect(demoted.verifyUntil).toBe(demoted.retiringAt! + kw.policy.retainFor);
      expect(records.find((r) => r.kid === standby.kid)).toMatchObject({
        state: 'pending',
        activatedAt: standby.activatedAt,
      });
      expect(imported.rotateAt).toBe(previous.activatedAt! + kw.policy.sigRotateEvery);
      // Tokens of the previous key still verify.
      expect(kw.jwt.verify(token).kid).toBe('brought');
      const types = events.map((e) => e.type);
      expect(types).toContain('key.imported');
      expect(events.find((e) => e.type === 'key.rotated')).toMatchObject({
        kid: 'brought',
        previousKid: previous.kid,
      });
    });
  }

  it('a rekey re-seals imported keys (public-only ones too); they keep verifying and signing', async () => {
    const store = createMemoryStore();
    const { kw } = await setup(store);
    const pub = rsa();
    const priv = ed();
    await kw.keys.import({ kid: 'pub', alg: 'RS256', key: pem(pub.publicKey, 'spki'), state: 'verify-only' });
    await kw.keys.import({ kid: 'priv', alg: 'EdDSA', key: pem(priv.privateKey, 'pkcs8'), state: 'active' });
    await kw.close();
    open.splice(0);
    const next = MasterKey.generate().exportText();
    const rekeyed = await createKeyward({
      store,
      masterKey: next,
      previousMasterKeys: [MASTER],
      logger: false,
      audit: false,
      scheduler: false,
      syncIntervalMs: 60_000,
    });
    open.push(rekeyed);
    expect((await rekeyed.keys.rekey()).changed).toBe(true);
    await rekeyed.close();
    open.splice(0);
    const only = await createKeyward({
      store,
      masterKey: next,
      logger: false,
      audit: false,
      scheduler: false,
      syncIntervalMs: 60_000,
    });
    open.push(only);
    expect(only.jwt.verify(await legacyToken(pub.privateKey, 'RS256', 'pub')).kid).toBe('pub');
    expect((await jwtVerify(only.jwt.sign({ sub: 'u' }), priv.publicKey)).protectedHeader.kid).toBe('priv');
  });

  it('a restarted instance on the same store unseals and signs with the imported key', async () => {
    const store = createMemoryStore();
    const { kw } = await setup(store);
    const k = ed();
    await kw.keys.import({ kid: 'brought', alg: 'EdDSA', key: pem(k.privateKey, 'pkcs8'), state: 'active' });
    await kw.close();
    open.splice(0);
    const { kw: again } = await setup(store);
    const token = again.jwt.sign({ sub: 'u' });
    expect((await jwtVerify(token, k.publicKey)).protectedHeader.kid).toBe('brought');
  });
});

describe('kid-less tokens and the defaultForKidless key', () => {
  const secret = createSecretKey(Buffer.from(HMAC_SECRET, 'utf8'));

  it('without a default key a kid-less token is refused with kid_missing; with one it verifies', async () => {
    const { kw } = await setup();
    const token = await legacyToken(secret, 'HS256', undefined);
    expect(() => kw.jwt.verify(token)).toThrow(
      expect.objectContaining({ code: 'token_invalid', details: { reason: 'kid_missing' } }),
    );
    await kw.keys.import({
      kid: 'express',
      alg: 'HS256',
      key: HMAC_SECRET,
      state: 'verify-only',
      defaultForKidless: true,
    });
    expect(kw.keys.list().find((r) => r.kid === 'express')?.defaultForKidless).toBe(true);
    const verified = kw.jwt.verify(token);
    expect(verified.kid).toBe('express');
    expect(kw.jwt.verify(token).payload.sub).toBe('user-1'); // cache hit path too
    // A kid-less token must be signed by the default key, with its algorithm.
    const other = await legacyToken(createSecretKey(Buffer.alloc(32, 1)), 'HS256', undefined);
    expect(() => kw.jwt.verify(other)).toThrow(expect.objectContaining({ code: 'token_signature_invalid' }));
    const wrongAlg = await legacyToken(createSecretKey(Buffer.from(HMAC_SECRET)), 'HS384', undefined);
    expect(() => kw.jwt.verify(wrongAlg)).toThrow(
      expect.objectContaining({ code: 'token_invalid', details: { reason: 'alg_mismatch' } }),
    );
    // Tokens with a kid never fall back to the default key.
    const unknownKid = await legacyToken(secret, 'HS256', 'nope');
    expect(() => kw.jwt.verify(unknownKid)).toThrow(
      expect.objectContaining({ details: { reason: 'kid_unknown' } }),
    );
    // keyward's own tokens are unaffected.
    expect(kw.jwt.verify(kw.jwt.sign({ sub: 'x' })).payload.sub).toBe('x');
  });

  it('an active default key signs with kid and verifies kid-less tokens of the old app', async () => {
    const { kw } = await setup();
    await kw.keys.import({
      kid: 'nest',
      alg: 'HS256',
      key: HMAC_SECRET,
      state: 'active',
      defaultForKidless: true,
    });
    expect(kw.jwt.verify(await legacyToken(secret, 'HS256', undefined, undefined)).kid).toBe('nest');
    expect(kw.jwt.verify(kw.jwt.sign({ sub: 'x' })).header.kid).toBe('nest');
  });

  it('at most one at a time: a second default is refused while the first verifies, allowed after it is revoked', async () => {
    const { kw } = await setup();
    await kw.keys.import({
      kid: 'first',
      alg: 'HS256',
      key: HMAC_SECRET,
      state: 'verify-only',
      defaultForKidless: true,
    });
    expect(
      await codeOf(() =>
        kw.keys.import({
          kid: 'second',
          alg: 'HS256',
          key: 'y'.repeat(32),
          state: 'verify-only',
          defaultForKidless: true,
        }),
      ),
    ).toBe('kidless_default_exists');
    expect(kw.keys.list().some((r) => r.kid === 'second')).toBe(false);
    const token = await legacyToken(secret, 'HS256', undefined);
    await kw.keys.revoke('first', 'leaked');
    expect(() => kw.jwt.verify(token)).toThrow(expect.objectContaining({ code: 'key_revoked' }));
    await kw.keys.import({
      kid: 'second',
      alg: 'HS256',
      key: 'y'.repeat(32),
      state: 'verify-only',
      defaultForKidless: true,
    });
    const next = await legacyToken(createSecretKey(Buffer.from('y'.repeat(32))), 'HS256', undefined);
    expect(kw.jwt.verify(next).kid).toBe('second');
  });

  it('stops verifying kid-less tokens when it retires', async () => {
    let now = Date.now();
    const kw = await createKeyward({
      store: createMemoryStore(),
      masterKey: MASTER,
      logger: false,
      scheduler: false,
      audit: false,
      now: () => now,
    });
    open.push(kw);
    await kw.keys.import({
      kid: 'express',
      alg: 'HS256',
      key: HMAC_SECRET,
      state: 'verify-only',
      verifyUntil: now + 60_000,
      defaultForKidless: true,
    });
    const token = await legacyToken(secret, 'HS256', undefined);
    expect(kw.jwt.verify(token).kid).toBe('express');
    now += 61_000;
    expect(() => kw.jwt.verify(token)).toThrow(
      expect.objectContaining({ details: { kid: 'express', reason: 'key_expired' } }),
    );
    // Once past its verifyUntil another key may take over (the expired one retires in the same commit).
    await kw.keys.import({
      kid: 'next',
      alg: 'HS256',
      key: 'z'.repeat(32),
      state: 'verify-only',
      defaultForKidless: true,
    });
    expect(kw.keys.list().find((r) => r.kid === 'express')?.state).toBe('retired');
    expect(
      kw.jwt.verify(await legacyToken(createSecretKey(Buffer.from('z'.repeat(32))), 'HS256', undefined)).kid,
    ).toBe('next');
  });
});

describe('kw.keys.import refusals: stable codes, nothing imported, no material anywhere', () => {
  it('refuses each bad input with its code and an HTTP status that is not a 401', async () => {
    const { kw, events, logs } = await setup(createMemoryStore(), {
      jwtSecret: 'the-reference-jwt-secret-value-xyz',
    });
    const rsaKey = rsa();
    const weakRsa = rsa(1024);
    const ecKey = ec();
    const edKey = ed();
    const privateJwk = edKey.privateKey.export({ format: 'jwk' }) as JWK;
    const generatedKid = kw.keys.list().find((r) => r.use === 'sig' && r.state === 'active')!.kid;
    const pkcs8 = pem(rsaKey.privateKey, 'pkcs8');
    const broken = pkcs8.replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!');
    const secretMaterial: string[] = [
      HMAC_SECRET,
      'short-secret-31-bytes-long-xxxx',
      pkcs8.split('\n')[5]!,
      privateJwk.d!,
      'the-reference-jwt-secret-value-xyz',
    ];
    const cases: Array<[KeywardErrorCode, ImportKeyOptions]> = [
      ['key_import_private', { alg: 'EdDSA', key: { keys: [privateJwk] }, state: 'verify-only' }],
      [
        'key_import_private',
        {
          alg: 'HS256',
          key: JSON.stringify({
            keys: [{ kty: 'oct', k: Buffer.from(HMAC_SECRET).toString('base64url'), kid: 'x' }],
          }),
          state: 'verify-only',
        },
      ],
      ['key_import_malformed', { kid: 'k', alg: 'RS256', key: broken, state: 'verify-only' }],
      ['key_import_malformed', { kid: 'k', alg: 'RS256', key: `${pkcs8}\n${pkcs8}`, state: 'verify-only' }],
      [
        'key_import_malformed',
        {
          kid: 'k',
          alg: 'RS256',
          key: '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----',
          state: 'verify-only',
        },
      ],
      [
        'key_import_malformed',
        {
          kid: 'k',
          alg: 'ES256',
          key: { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'BBBB' },
          state: 'verify-only',
        },
      ],
      ['key_exists', { kid: generatedKid, alg: 'HS256', key: HMAC_SECRET, state: 'verify-only' }],
      [
        'key_exists',
        {
          kid: await legacyKid('the-reference-jwt-secret-value-xyz'),
          alg: 'HS256',
          key: HMAC_SECRET,
          state: 'verify-only',
        },
      ],
      [
        'key_alg_mismatch',
        { kid: 'k', alg: 'ES256', key: pem(rsaKey.publicKey, 'spki'), state: 'verify-only' },
      ],
      [
        'key_alg_mismatch',
        { kid: 'k', alg: 'EdDSA', key: pem(ecKey.publicKey, 'spki'), state: 'verify-only' },
      ],
      [
        'key_alg_mismatch',
        { kid: 'k', alg: 'HS256', key: pem(rsaKey.publicKey, 'spki'), state: 'verify-only' },
      ],
      ['key_alg_mismatch', { kid: 'k', alg: 'RS256', key: HMAC_SECRET, state: 'verify-only' }],
      [
        'key_alg_mismatch',
        {
          kid: 'k',
          alg: 'ES256',
          key: { ...(ecKey.publicKey.export({ format: 'jwk' }) as JWK), alg: 'RS256' },
          state: 'verify-only',
        },
      ],
      ['key_too_weak', { kid: 'k', alg: 'RS256', key: pem(weakRsa.publicKey, 'spki'), state: 'verify-only' }],
      [
        'key_too_weak',
        { kid: 'k', alg: 'HS256', key: 'short-secret-31-bytes-long-xxxx', state: 'verify-only' },
      ],
      ['key_too_weak', { kid: 'k', alg: 'HS512', key: HMAC_SECRET, state: 'active' }],
      ['key_public_only', { kid: 'k', alg: 'ES256', key: pem(ecKey.publicKey, 'spki'), state: 'active' }],
      [
        'key_public_only',
        {
          key: { keys: [{ ...(ecKey.publicKey.export({ format: 'jwk' }) as JWK), kid: 'j', alg: 'ES256' }] },
          state: 'active',
        },
      ],
      ['invalid_request', { alg: 'HS256', key: HMAC_SECRET, state: 'verify-only' }],
      ['invalid_request', { kid: 'has space', alg: 'HS256', key: HMAC_SECRET, state: 'verify-only' }],
      [
        'invalid_request',
        { kid: 'k', alg: 'HS256', key: HMAC_SECRET, state: 'verify-only', verifyUntil: Date.now() - 1 },
      ],
    ];
    const before = kw.keys.list();
    const messages: string[] = [];
    for (const [code, options] of cases) {
      let caught: unknown;
      try {
        await kw.keys.import(options);
      } catch (err) {
        caught = err;
      }
      expect(caught, `${code}: ${JSON.stringify(options).slice(0, 80)}`).toBeInstanceOf(KeywardError);
      expect((caught as KeywardError).code, JSON.stringify(options).slice(0, 120)).toBe(code);
      const problem = toHttpProblem(caught);
      expect(problem.status).not.toBe(401);
      expect([400, 409]).toContain(problem.status);
      messages.push(
        (caught as KeywardError).message,
        JSON.stringify((caught as KeywardError).details ?? {}),
        String((caught as KeywardError).cause ?? ''),
      );
    }
    expect(kw.keys.list()).toEqual(before);
    expect(events.filter((e) => e.type === 'key.imported')).toEqual([]);
    const everything = [...messages, ...logs, JSON.stringify(events)].join('\n');
    for (const secret of secretMaterial) expect(everything).not.toContain(secret);
  });

  it('the keyring stays bounded: verify-only imports count against maxRetiringKeys (rotation_limit)', async () => {
    const kw = await createKeyward({
      store: createMemoryStore(),
      masterKey: MASTER,
      logger: false,
      audit: false,
      scheduler: false,
      rotation: { maxRetiringKeys: 2 },
    });
    open.push(kw);
    const jwks = async (n: number) => ({
      keys: await Promise.all(Array.from({ length: n }, async () => exportJWK(ec().publicKey))),
    });
    expect(
      await codeOf(async () => kw.keys.import({ alg: 'ES256', key: await jwks(3), state: 'verify-only' })),
    ).toBe('rotation_limit');
    await kw.keys.import({ alg: 'ES256', key: await jwks(2), state: 'verify-only' });
    expect(
      await codeOf(async () =>
        kw.keys.import({ kid: 'one-more', alg: 'HS256', key: HMAC_SECRET, state: 'verify-only' }),
      ),
    ).toBe('rotation_limit');
    expect(
      await codeOf(async () =>
        kw.keys.import({ kid: 'active', alg: 'HS256', key: HMAC_SECRET, state: 'active' }),
      ),
    ).toBe('rotation_limit');
    expect(kw.keys.list().filter((r) => r.origin === 'imported')).toHaveLength(2);
  });

  it('a kid already imported is refused (key_exists), and a second JWKS key with the same kid too', async () => {
    const { kw } = await setup();
    await kw.keys.import({ kid: 'dup', alg: 'HS256', key: HMAC_SECRET, state: 'verify-only' });
    expect(
      await codeOf(() => kw.keys.import({ kid: 'dup', alg: 'HS256', key: 'q'.repeat(40), state: 'active' })),
    ).toBe('key_exists');
    const a = ec();
    const b = ec();
    const jwks = {
      keys: [
        { ...(await exportJWK(a.publicKey)), kid: 'same' },
        { ...(await exportJWK(b.publicKey)), kid: 'same' },
      ],
    };
    expect(await codeOf(() => kw.keys.import({ alg: 'ES256', key: jwks, state: 'verify-only' }))).toBe(
      'key_exists',
    );
  });

  it('no key material in audit events, logs or the records of successful imports', async () => {
    const { kw, events, logs } = await setup();
    const k = rsa();
    const jwk = k.privateKey.export({ format: 'jwk' }) as JWK;
    await kw.keys.import({ kid: 'a', alg: 'RS256', key: pem(k.privateKey, 'pkcs1'), state: 'active' });
    await kw.keys.import({
      kid: 'b',
      alg: 'HS256',
      key: HMAC_SECRET,
      state: 'verify-only',
      defaultForKidless: true,
    });
    const text = [
      JSON.stringify(events),
      ...logs,
      JSON.stringify(kw.keys.list()),
      JSON.stringify(kw.keys.snapshot()),
    ].join('\n');
    for (const secret of [jwk.d!, jwk.p!, HMAC_SECRET, Buffer.from(HMAC_SECRET).toString('base64url')])
      expect(text).not.toContain(secret);
    const imported = events.filter((e) => e.type === 'key.imported');
    expect(
      imported.map((e) =>
        Object.keys(e)
          .filter(
            (f) =>
              ![
                'type',
                'time',
                'ts',
                'id',
                'actor',
                'outcome',
                'prevHash',
                'hash',
                'instanceId',
                'seq',
                'v',
              ].includes(f),
          )
          .sort(),
      ),
    ).toEqual([
      ['alg', 'kid', 'state'],
      ['alg', 'kid', 'state'],
    ]);
    // Material from a parsed PEM is what signs: the private JWK matches the original.
    expect(createPublicKey(createPrivateKey(pem(k.privateKey, 'pkcs8'))).export({ format: 'jwk' }).n).toBe(
      jwk.n,
    );
  });
});
