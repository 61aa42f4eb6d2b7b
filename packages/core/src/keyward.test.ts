import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { CompactEncrypt, createLocalJWKSet, jwtVerify, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../testing/src/errors.js';
import { KEYRING_KEY, type KeyringDocument, KeyringRepository } from './keys/keyring-store.js';
import { MasterKey } from './keys/master-key.js';
import { createKeyward, type Keyward } from './keyward.js';
import { createMemoryStore } from './store/memory.js';
import { createSqliteStore } from './store/sqlite.js';
import type { Store } from './store/types.js';

const MASTER = MasterKey.generate().exportText();
const open: Keyward[] = [];
async function make(store: Store, extra: Parameters<typeof createKeyward>[0] = {}): Promise<Keyward> {
  const kw = await createKeyward({
    store,
    masterKey: MASTER,
    logger: false,
    syncIntervalMs: 60_000,
    ...extra,
  });
  open.push(kw);
  return kw;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((kw) => kw.close()));
});

async function dump(store: Store): Promise<string> {
  const page = await store.scan('', { limit: 10_000 });
  return page.entries.map((e) => `${e.key}=${e.value}`).join('\n');
}

describe('createKeyward', () => {
  it('bootstraps exactly one active key per use, and a JWKS that jose verifies tokens against', async () => {
    const kw = await make(createMemoryStore());
    const records = kw.keys.list();
    for (const use of ['sig', 'enc', 'data'] as const) {
      expect(records.filter((r) => r.use === use && r.state === 'active')).toHaveLength(1);
    }
    // The active signing key and its standby, published with the keyring.
    const standby = records.find((r) => r.use === 'sig' && r.state === 'pending');
    expect(standby).toMatchObject({ createdWithKeyring: true });
    const jwks = kw.keys.jwks();
    expect(jwks.keys.map((k) => k.kid)).toEqual([
      records.find((r) => r.use === 'sig' && r.state === 'active')?.kid,
      standby?.kid,
    ]);
    // ES256 by default: every common downstream verifier (jose, jwks-rsa, get-jwks) supports it.
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
    const token = kw.jwt.sign({ sub: 'alice', scope: 'read' });
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks));
    expect(payload).toMatchObject({ sub: 'alice', scope: 'read' });
    expect(protectedHeader).toMatchObject({ typ: 'at+jwt', kid: records.find((r) => r.use === 'sig')?.kid });
    expect(kw.jwt.verify(token).payload.sub).toBe('alice');
  });

  it('signs with Ed25519 (RFC 9864 name), EdDSA (the older name), RS256 / HS256 when asked; jose verifies each', async () => {
    for (const alg of ['Ed25519', 'EdDSA', 'RS256', 'HS256'] as const) {
      const kw = await make(createMemoryStore(), { signingAlg: alg });
      const token = kw.jwt.sign({ sub: 'x' });
      expect(kw.jwt.verify(token).header.alg).toBe(alg);
      if (alg === 'HS256') {
        expect(kw.keys.jwks().keys).toHaveLength(0);
        continue;
      }
      const jwks = kw.keys.jwks();
      expect(jwks.keys.map((k) => k.alg)).toEqual([alg, alg]);
      if (alg !== 'RS256') expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
      const { protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { algorithms: [alg] });
      expect(protectedHeader.alg).toBe(alg);
    }
  });

  it('keeps the keys of an existing keyring under a new default; keys it generates use the configured algorithm', async () => {
    const store = createMemoryStore();
    const old = await make(store, { signingAlg: 'EdDSA' });
    const before = old.keys
      .list()
      .filter((r) => r.use === 'sig')
      .map((r) => [r.kid, r.alg]);
    await old.close();
    const kw = await make(store);
    expect(
      kw.keys
        .list()
        .filter((r) => r.use === 'sig')
        .map((r) => [r.kid, r.alg]),
    ).toEqual(before);
    expect(kw.jwt.verify(kw.jwt.sign({ sub: 'x' })).header.alg).toBe('EdDSA');
    // A rotation promotes the published EdDSA standby and makes the next standby ES256.
    await kw.keys.rotate({ use: 'sig' });
    const sig = kw.keys.list().filter((r) => r.use === 'sig');
    expect(sig.map((r) => [r.state, r.alg])).toEqual([
      ['retiring', 'EdDSA'],
      ['active', 'EdDSA'],
      ['pending', 'ES256'],
    ]);
  });

  it('never stores, stringifies or inspects key material in the clear', async () => {
    const store = createMemoryStore();
    const kw = await make(store, { signingAlg: 'HS256' });
    const repo = new KeyringRepository(store, MasterKey.parse(MASTER));
    const doc = (await repo.read()) as KeyringDocument;
    const secrets = repo
      .unseal(doc)
      .flatMap(({ material }) => [material.k, material.d].filter(Boolean) as string[]);
    expect(secrets.length).toBeGreaterThanOrEqual(3);
    const views = [
      await dump(store),
      JSON.stringify(kw.keys.snapshot()),
      inspect(kw.keys.snapshot(), { depth: 10, showHidden: true }),
      JSON.stringify(kw.keys.list()),
      inspect(kw, { depth: 6 }),
      inspect(MasterKey.parse(MASTER)),
      JSON.stringify(MasterKey.parse(MASTER)),
    ].join('\n');
    for (const secret of [...secrets, MASTER.replace(/=+$/, '')]) {
      expect(views).not.toContain(secret);
      expect(views).not.toContain(Buffer.from(secret, 'base64url').toString('base64'));
    }
  });

  it('binds kid/use/alg to the sealed material: a sealed blob moved onto another key does not open', async () => {
    const store = createMemoryStore();
    await make(store);
    const raw = (await store.get(KEYRING_KEY)) as string;
    const doc = JSON.parse(raw) as KeyringDocument;
    const [a, b] = doc.keys;
    if (!a || !b) throw new Error('expected keys');
    [a.sealed, b.sealed] = [b.sealed, a.sealed];
    await store.set(KEYRING_KEY, JSON.stringify(doc));
    await expect(make(store)).rejects.toMatchObject({ code: 'key_unseal_failed' });
  });

  it('refuses a keyring sealed by another master key, naming both key ids and no key bytes', async () => {
    const store = createMemoryStore();
    await make(store);
    const other = MasterKey.generate();
    const err = await make(store, { masterKey: other.exportText() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'master_key_mismatch' });
    expect(String((err as Error).message)).toContain(other.id);
    expect(String((err as Error).message)).not.toContain(other.exportText().slice(0, 20));
  });

  it('rejects unsafe token lifetimes at construction and at signing', async () => {
    await expect(make(createMemoryStore(), { accessTokenTtlSec: 3600 })).rejects.toMatchObject({
      code: 'config_invalid',
    });
    const kw = await make(createMemoryStore());
    expect(codeOf(() => kw.jwt.sign({ sub: 'a' }, { expiresInSec: 24 * 3600 }))).toBe('config_invalid');
  });
});

describe('legacy JWT_SECRET', () => {
  const secret = 'reference-system-shared-secret';
  const expectedKid = createHash('sha256')
    .update(`{"k":"${Buffer.from(secret).toString('base64url')}","kty":"oct"}`)
    .digest('base64url');

  it('derives a stable RFC 7638 kid and verifies tokens the reference system signed', async () => {
    const kw = await make(createMemoryStore(), { jwtSecret: secret });
    const legacy = kw.keys.list().find((r) => r.origin === 'legacy' && r.use === 'sig');
    expect(legacy?.kid).toBe(expectedKid);
    const now = Math.floor(Date.now() / 1000);
    // The reference system's tokens carry `typ: JWT` (RFC 8725 §3.11, keyward issue #11).
    const token = await new SignJWT({ sub: 'bob' })
      .setProtectedHeader({ alg: 'HS256', kid: expectedKid, typ: 'JWT' })
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(Buffer.from(secret));
    expect(kw.jwt.verify(token).payload.sub).toBe('bob');
    // Without legacySigning the generated key signs.
    expect(kw.jwt.verify(kw.jwt.sign({ sub: 'c' })).header.alg).toBe('ES256');
  });

  it('signs with the legacy key only when legacySigning is on, verifiable by the reference system', async () => {
    const kw = await make(createMemoryStore(), { jwtSecret: secret, legacySigning: true });
    const token = kw.jwt.sign({ sub: 'dave' });
    const { payload, protectedHeader } = await jwtVerify(token, Buffer.from(secret));
    expect(protectedHeader).toMatchObject({ alg: 'HS256', kid: expectedKid });
    expect(payload.sub).toBe('dave');
  });

  it("decrypts JWE made the reference system's way (dir + A256GCM, key sha256(JWT_SECRET))", async () => {
    const kw = await make(createMemoryStore(), { jwtSecret: secret });
    const key = createHash('sha256').update(secret).digest();
    const now = Math.floor(Date.now() / 1000);
    const jwe = await new CompactEncrypt(
      new TextEncoder().encode(JSON.stringify({ sub: 'eve', exp: now + 60 })),
    )
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: randomBytes(8).toString('hex') })
      .encrypt(key);
    expect((await kw.jwt.decrypt(jwe)).sub).toBe('eve');
    const own = await kw.jwt.encrypt({ sub: 'frank' });
    expect((await kw.jwt.decrypt(own)).sub).toBe('frank');
  });
});

describe('rotation and revocation', () => {
  it('rotates on demand: new key signs, old tokens keep verifying until verifyUntil', async () => {
    const kw = await make(createMemoryStore());
    const before = kw.jwt.sign({ sub: 'a' });
    const standby = kw.keys.list().find((r) => r.use === 'sig' && r.state === 'pending')?.kid;
    const { kid, previousKid, unpublished } = await kw.keys.rotate({ use: 'sig', reason: 'test' });
    expect(kid).not.toBe(previousKid);
    expect(kid).toBe(standby); // the published standby took over
    expect(unpublished).toBe(false);
    const next = kw.keys.list().find((r) => r.use === 'sig' && r.state === 'pending')?.kid;
    const old = kw.keys.list().find((r) => r.kid === previousKid);
    expect(old).toMatchObject({ state: 'retiring' });
    expect(old?.verifyUntil).toBeGreaterThan(Date.now() + kw.policy.maxTokenTtl);
    expect(kw.jwt.verify(before).kid).toBe(previousKid);
    expect(kw.jwt.verify(kw.jwt.sign({ sub: 'b' })).kid).toBe(kid);
    expect(
      kw.keys
        .jwks()
        .keys.map((k) => k.kid)
        .sort(),
    ).toEqual([kid, next, previousKid].sort());
  });

  // Regression: every swap rebuilt a KeyObject per key, ~25 ms at 200 keys (sync benchmark).
  it('reuses the KeyObjects of unchanged keys when a new snapshot replaces the old one', async () => {
    const kw = await make(createMemoryStore());
    const before = kw.keys.snapshot();
    const kid = before.signingKey().kid;
    await kw.keys.rotate({ use: 'sig' });
    const after = kw.keys.snapshot();
    expect(after).not.toBe(before);
    expect(after.verificationKey(kid)?.keyObject).toBe(before.verificationKey(kid)?.keyObject);
    expect(after.verificationKey(kid)?.state).toBe('retiring');
  });

  it('makes one key for two concurrent rotations with one idempotency key', async () => {
    const store = createMemoryStore();
    const [a, b] = [await make(store), await make(store)];
    const results = await Promise.all([
      a.keys.rotate({ use: 'sig', idempotencyKey: 'deploy-42' }),
      b.keys.rotate({ use: 'sig', idempotencyKey: 'deploy-42' }),
    ]);
    expect(results[0]).toEqual(results[1]);
    await a.sync.refresh();
    // the old key (retiring), the promoted standby (active) and one new standby
    expect(a.keys.list().filter((r) => r.use === 'sig')).toHaveLength(3);
  });

  it('revokes a compromised active key: its tokens fail with key_revoked, a replacement signs, JWKS drops it', async () => {
    const store = createMemoryStore();
    const kw = await make(store);
    const other = await make(store);
    const token = kw.jwt.sign({ sub: 'a' });
    expect(other.jwt.verify(token).payload.sub).toBe('a'); // cached on the other instance
    const kid = kw.jwt.verify(token).kid;
    const standby = kw.keys.list().find((r) => r.use === 'sig' && r.state === 'pending')?.kid;
    const { revoked, replacement, unpublished } = await kw.keys.revoke(kid, 'leaked');
    expect(revoked).toBe(kid);
    expect(replacement).toBe(standby);
    expect(unpublished).toBe(false);
    expect(codeOf(() => kw.jwt.verify(token))).toBe('key_revoked');
    const next = kw.keys.list().find((r) => r.use === 'sig' && r.state === 'pending')?.kid;
    expect(kw.keys.jwks().keys.map((k) => k.kid)).toEqual([replacement, next]);
    await other.sync.refresh();
    expect(codeOf(() => other.jwt.verify(token))).toBe('key_revoked');
    expect(other.jwt.verify(kw.jwt.sign({ sub: 'b' })).kid).toBe(replacement);
  });

  it('revokes single tokens and whole subjects on every instance', async () => {
    const store = createMemoryStore();
    const [a, b] = [await make(store), await make(store)];
    const t1 = a.jwt.sign({ sub: 'alice' });
    const t2 = a.jwt.sign({ sub: 'bob' });
    const { payload } = b.jwt.verify(t1);
    await a.revocations.revokeToken(payload.jti as string, payload.exp * 1000);
    await b.sync.refresh();
    expect(codeOf(() => b.jwt.verify(t1))).toBe('token_revoked');
    expect(b.jwt.verify(t2).payload.sub).toBe('bob');
    await b.revocations.revokeSubject('bob');
    await a.sync.refresh();
    expect(codeOf(() => a.jwt.verify(t2))).toBe('token_revoked');
  });

  it('revokes tokens issued in the same second before "logout everywhere", not those issued after', async () => {
    const clock = { now: Date.UTC(2026, 0, 1, 0, 0, 0, 100) };
    const kw = await make(createMemoryStore(), { now: () => clock.now });
    const before = kw.jwt.sign({ sub: 'carol' });
    clock.now += 300; // same second
    await kw.revocations.revokeSubject('carol');
    clock.now += 300; // still the same second
    const after = kw.jwt.sign({ sub: 'carol' });
    expect(codeOf(() => kw.jwt.verify(before))).toBe('token_revoked');
    expect(kw.jwt.verify(after).payload.sub).toBe('carol');
  });
});

describe('embedded SQLite store', () => {
  it('lets several instances bootstrap one file concurrently into one keyring', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-'));
    const stores = [0, 1, 2].map(() => createSqliteStore({ path: join(dir, 'keyward.db') }));
    const kws = await Promise.all(stores.map((s) => make(s)));
    const kids = kws.map((kw) =>
      kw.keys
        .list()
        .map((r) => r.kid)
        .sort()
        .join(),
    );
    expect(new Set(kids).size).toBe(1);
    await Promise.all(open.splice(0).map((kw) => kw.close()));
    await Promise.all(stores.map((s) => s.close()));
  });

  it('uses the embedded store and a generated 0600 dev master key by default', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-'));
    const kw = await createKeyward({ dir, logger: false });
    open.push(kw);
    expect(kw.store.driver).toBe('sqlite');
    const { statSync } = await import('node:fs');
    expect(statSync(join(dir, 'master.key')).mode & 0o777).toBe(0o600);
  });
});

describe('alerts', () => {
  it('fires the verification-failure alert once per window from real verifications', async () => {
    const fired: string[] = [];
    const clock = { now: Date.UTC(2026, 0, 1) };
    const kw = await make(createMemoryStore(), {
      now: () => clock.now,
      alerts: { onAlert: (alert) => fired.push(alert.name), windowMs: 60_000 },
    });
    const good = kw.jwt.sign({ sub: 'a' });
    for (let i = 0; i < 150; i++) kw.jwt.verify(good);
    for (let i = 0; i < 10; i++) codeOf(() => kw.jwt.verify(`${good}x`));
    expect(kw.alerts?.evaluate().map((a) => a.name)).toEqual(['verify_failure_rate']);
    for (let i = 0; i < 10; i++) codeOf(() => kw.jwt.verify(`${good}y`));
    expect(kw.alerts?.evaluate()).toEqual([]); // at most once per window
    clock.now += 61_000;
    for (let i = 0; i < 150; i++) kw.jwt.verify(good);
    expect(kw.alerts?.evaluate()).toEqual([]); // a healthy window fires nothing
    expect(fired).toEqual(['verify_failure_rate']);
  });
});

describe('metrics', () => {
  it('counts verifications per kid and samples verify latency', async () => {
    const kw = await make(createMemoryStore());
    const token = kw.jwt.sign({ sub: 'a' });
    for (let i = 0; i < 64; i++) kw.jwt.verify(token);
    codeOf(() => kw.jwt.verify('garbage'));
    const text = await kw.metrics.text();
    expect(text).toMatch(/keyward_tokens_verified_total\{via="jwt"\} 64/);
    expect(text).toMatch(/keyward_verify_duration_seconds_count 4\b/);
    expect(text).toMatch(/keyward_tokens_rejected_total\{reason="token_malformed"\} 1/);
  });
});
