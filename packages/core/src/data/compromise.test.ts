import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import type { AuditEvent } from '../audit/events.js';
import { createAuditLog } from '../audit/log.js';
import { callbackSink } from '../audit/sinks.js';
import { isKeywardError } from '../errors.js';
import { createIdpTokenStore } from '../idp/store.js';
import { KEYRING_KEY, type KeyringDocument } from '../keys/keyring-store.js';
import { MasterKey } from '../keys/master-key.js';
import { createKeyward, type Keyward, type KeywardServiceOptions } from '../keyward.js';
import { secretKey } from '../secrets/record.js';
import { SECRETS_REWRAP_TARGET } from '../secrets/service.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { createRewrapJob } from './rewrap.js';

const open: Keyward[] = [];
afterEach(async () => {
  for (const kw of open.splice(0)) await kw.close();
});

async function setup(overrides: Partial<KeywardServiceOptions> = {}, count = 30) {
  const clock = { now: Date.UTC(2025, 0, 1) };
  const events: AuditEvent[] = [];
  const store: Store = createMemoryStore();
  const kw = await createKeyward({
    store,
    masterKey: MasterKey.generate().exportText(),
    logger: false,
    audit: createAuditLog({ sinks: [callbackSink((e) => void events.push(e))], now: () => clock.now }),
    now: () => clock.now,
    syncIntervalMs: 60_000,
    scheduler: false,
    dataKeyRewrap: { background: false, settleMs: 0, batchSize: 7 },
    ...overrides,
  });
  open.push(kw);
  for (let i = 0; i < count; i++) await kw.secrets.put(`o${i % 3}`, `s${i}`, `value-${i}`);
  return { kw, store, clock, events, leaked: kw.keys.snapshot().dataKey().kid };
}

async function storedDoc(store: Store): Promise<KeyringDocument> {
  return JSON.parse((await store.get(KEYRING_KEY))!) as KeyringDocument;
}

describe('revoking a data key (compromise without data loss)', () => {
  it('replaces it in the same commit, keeps every record readable, rewraps, then destroys its material', async () => {
    const { kw, store, events, leaked } = await setup();
    const idp = createIdpTokenStore(kw, { refresh: async () => ({ accessToken: 'never', expiresAt: 0 }) });
    await idp.save({ sub: 'u1', provider: 'gh', accessToken: 'idp-access', expiresAt: kw.now() + 3_600_000 });
    const created = await kw.apiKeys.create({ owner: 'o1', name: 'ci', scopes: ['read'] });
    const underLeaked = (await store.get(secretKey('o0', 's0')))!;
    const generationBefore = (await storedDoc(store)).generation;

    const result = await kw.keys.revoke(leaked, 'leaked in a log');
    expect(result.replacement).toBeDefined();
    expect(result.replacement).not.toBe(leaked);
    expect(result.toRewrap).toBe(31); // 30 secrets + 1 IdP record
    const doc = await storedDoc(store);
    expect(doc.generation).toBe(generationBefore + 1); // revoke + promote: one compare-and-set
    expect(doc.keys.find((k) => k.kid === result.replacement)?.state).toBe('active');
    const sealedBefore = doc.keys.find((k) => k.kid === leaked)?.sealed;
    expect(sealedBefore).toBeTypeOf('string');

    // It never encrypts again, but it still decrypts while the rewrap has not run.
    expect(kw.data.kidOf(kw.data.encrypt('new'))).toBe(result.replacement);
    expect(await kw.secrets.get('o0', 's0')).toBe('value-0');
    expect(await idp.get('u1', 'gh')).toBe('idp-access');
    // API keys hashed under its pepper are invalidated at once (the safe choice for a compromised key).
    expect(await codeOf(kw.apiKeys.verify(created.key))).toBe('api_key_invalid');

    const before = await kw.health();
    expect(before.status).toBe('warn');
    expect(before.checks['data:rewrap']).toEqual([
      expect.objectContaining({ componentId: leaked, status: 'warn', observedValue: 31 }),
    ]);
    expect(await kw.dataRewrap.status()).toEqual([
      expect.objectContaining({ kid: leaked, state: 'rewrapping', toRewrap: 31, remaining: 31 }),
    ]);

    const progress = await kw.dataRewrap.run();
    expect(progress).toMatchObject({ destroyed: [leaked], apiKeysRevoked: 1, remainingByKid: {} });

    // Destroyed: no sealed blob in the stored document; the record stays, revoked, for audit.
    const after = await storedDoc(store);
    const stored = after.keys.find((k) => k.kid === leaked)!;
    expect(stored.sealed).toBeUndefined();
    expect(stored).toMatchObject({ state: 'revoked', use: 'data' });
    expect(stored.destroyedAt).toBeTypeOf('number');
    expect(JSON.stringify(after)).not.toContain(sealedBefore!);
    expect(kw.keys.list().find((k) => k.kid === leaked)?.destroyedAt).toBe(stored.destroyedAt);
    expect(events.filter((e) => e.type === 'key.destroyed').map((e) => e.kid)).toEqual([leaked]);
    expect(events.some((e) => e.type === 'apikey.revoked' && e.apiKeyId === created.id)).toBe(true);

    for (let i = 0; i < 30; i++) expect(await kw.secrets.get(`o${i % 3}`, `s${i}`)).toBe(`value-${i}`);
    expect(await idp.get('u1', 'gh')).toBe('idp-access');
    // Its pepper is gone, so its hash cannot even be checked: invalid, and marked revoked in the store.
    expect(await codeOf(kw.apiKeys.verify(created.key))).toBe('api_key_invalid');
    expect(JSON.parse((await store.get(`apikey:${created.id}`))!).revokedAt).toBeTypeOf('number');
    const healthAfter = await kw.health();
    expect(healthAfter.checks['data:rewrap']).toBeUndefined();
    expect(healthAfter.status).toBe('pass');
    expect(await kw.dataRewrap.status()).toEqual([
      expect.objectContaining({ kid: leaked, state: 'destroyed', remaining: 0 }),
    ]);

    // A record still under the destroyed key (restored from a backup) is a server-side 5xx code.
    await store.set(secretKey('o0', 's0'), underLeaked);
    const err = await kw.secrets.get('o0', 's0').catch((e: unknown) => e);
    expect(isKeywardError(err, 'data_key_unavailable')).toBe(true);
    expect(String((err as Error).message)).toContain('destroyed');
  });

  it('destroys the material only once settleMs has passed since the revocation', async () => {
    const { kw, clock, leaked } = await setup({}, 5);
    await kw.keys.revoke(leaked, 'leaked');
    const job = () =>
      createRewrapJob(kw, { ...SECRETS_REWRAP_TARGET, settleMs: 60_000, destroyRevoked: true });
    // Without destroyRevoked (a job over some prefixes only) a revoked key is never destroyed.
    expect(await job().run()).toMatchObject({ rewrapped: 5, destroyed: [], settling: [leaked] });
    expect(await createRewrapJob(kw, { ...SECRETS_REWRAP_TARGET, settleMs: 0 }).run()).toMatchObject({
      destroyed: [],
      settling: [],
    });
    expect(kw.keys.snapshot().record(leaked)?.destroyedAt).toBeUndefined();
    const early = await job().run();
    expect(early).toMatchObject({ rewrapped: 0, destroyed: [], settling: [leaked] });
    expect(kw.keys.snapshot().record(leaked)?.destroyedAt).toBeUndefined();
    expect(await kw.secrets.get('o0', 's0')).toBe('value-0');
    clock.now += 60_000;
    const later = await job().run();
    expect(later).toMatchObject({ rewrapped: 0, destroyed: [leaked], settling: [] });
    expect(kw.keys.snapshot().record(leaked)?.destroyedAt).toBe(clock.now);
  });

  it('does not destroy a key while records it cannot open remain under it', async () => {
    const { kw, store, leaked } = await setup({}, 3);
    const raw = JSON.parse((await store.get(secretKey('o0', 's0')))!) as { value: string };
    await store.set(
      secretKey('o0', 's0'),
      JSON.stringify({ ...raw, value: `${raw.value.slice(0, -8)}AAAAAAA=` }),
    );
    await kw.keys.revoke(leaked, 'leaked');
    const result = await kw.dataRewrap.run();
    expect(result?.remainingByKid).toEqual({ [leaked]: 1 });
    expect(result?.destroyed).toEqual([]);
    expect(kw.keys.snapshot().record(leaked)?.destroyedAt).toBeUndefined();
  });

  it('starts the rewrap in the background on the revoking instance', async () => {
    const { kw, leaked } = await setup({ dataKeyRewrap: { settleMs: 0, batchSize: 4 } }, 12);
    await kw.keys.revoke(leaked, 'leaked');
    await kw.dataRewrap.whenIdle();
    expect(kw.keys.snapshot().record(leaked)?.destroyedAt).toBeTypeOf('number');
    for (let i = 0; i < 12; i++) expect(await kw.secrets.get(`o${i % 3}`, `s${i}`)).toBe(`value-${i}`);
  });

  it('never resumes a saved pass over other prefixes (which could skip a prefix and destroy too early)', async () => {
    const { kw, store, leaked } = await setup({}, 4);
    await kw.keys.revoke(leaked, 'leaked');
    const activeKid = kw.keys.snapshot().dataKey().kid;
    // A cursor saved by a job over other prefixes, past its last prefix.
    const foreign = {
      v: 1,
      activeKid,
      fence: 0,
      startedAt: 0,
      prefixIndex: 1,
      cursor: null,
      remainingByKid: {},
      prefixes: ['other:'],
    };
    await store.set('rewrap:cursor:data', JSON.stringify(foreign));
    const result = await createRewrapJob(kw, {
      ...SECRETS_REWRAP_TARGET,
      settleMs: 0,
      destroyRevoked: true,
    }).run();
    expect(result).toMatchObject({ resumed: false, rewrapped: 4, destroyed: [leaked] });
    for (let i = 0; i < 4; i++) expect(await kw.secrets.get(`o${i % 3}`, `s${i}`)).toBe(`value-${i}`);
  });

  it('"running elsewhere" names the instance holding the lock and for how long', async () => {
    const { kw, clock } = await setup({}, 3);
    await kw.keys.rotate({ use: 'data' });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let entered!: () => void;
    const inside = new Promise<void>((r) => {
      entered = r;
    });
    const holder = createRewrapJob(kw, {
      ...SECRETS_REWRAP_TARGET,
      instanceId: 'api-7:4242',
      batchSize: 1,
      onProgress() {
        entered();
      },
      retire: async () => {
        await gate;
      },
      settleMs: 0,
    });
    const first = holder.run();
    await inside;
    clock.now += 1500;
    const err = await createRewrapJob(kw, { ...SECRETS_REWRAP_TARGET, instanceId: 'other' })
      .run()
      .catch((e: unknown) => e);
    expect(isKeywardError(err, 'lock_not_acquired')).toBe(true);
    expect((err as Error).message).toContain('api-7:4242');
    expect((err as { details?: Record<string, unknown> }).details).toMatchObject({
      holder: 'api-7:4242',
      heldForMs: 1500,
    });
    release();
    await first;
  });
});
