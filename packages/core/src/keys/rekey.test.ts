import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import type { AuditEvent } from '../audit/events.js';
import { callbackSink } from '../audit/sinks.js';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { createHealth } from '../health/health.js';
import { keywardOptionsFromEnv } from '../options.js';
import { createMemoryStore } from '../store/memory.js';
import { createRedisStore } from '../store/redis.js';
import { createSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/types.js';
import { KEYRING_KEY, type KeyringDocument, KeyringRepository } from './keyring-store.js';
import { MasterKey } from './master-key.js';
import { unsealKeyMaterial } from './seal.js';

const OLD = MasterKey.generate();
const NEW = MasterKey.generate();
const secrets = [
  OLD.exportText(),
  NEW.exportText(),
  OLD.exportText().slice(0, 43),
  NEW.exportText().slice(0, 43),
];

const open: KeywardCore[] = [];
const stores: Store[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

async function storedDoc(store: Store): Promise<KeyringDocument> {
  return JSON.parse((await store.get(KEYRING_KEY)) as string) as KeyringDocument;
}

/** True when every sealed blob of the stored document opens under `key`. */
async function allOpenWith(store: Store, key: MasterKey): Promise<boolean> {
  const doc = await storedDoc(store);
  return doc.keys.every(({ sealed, ...record }) => {
    if (sealed === undefined) return true; // a destroyed data key
    try {
      unsealKeyMaterial(key, record, sealed);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Where the instances of a test keep their keyring: one keyring per test, one store connection per
 * instance (the memory store is one object shared by the instances of a test).
 */
interface Target {
  name: string;
  /** A store on the keyring of test `test`. */
  open(test: string): Store;
  /** True when each opened store must be closed (not the shared memory store). */
  closeEach: boolean;
  cleanup(): Promise<void> | void;
}

function describeRekey(makeTarget: () => Target): void {
  const target = makeTarget();
  afterAll(() => target.cleanup());

  async function instance(
    masterKey: MasterKey,
    previous: MasterKey[] = [],
    events: AuditEvent[] = [],
  ): Promise<KeywardCore> {
    const store = target.open(expect.getState().currentTestName ?? '');
    if (target.closeEach) stores.push(store);
    const core = await createKeywardCore({
      store,
      masterKey: masterKey.exportText(),
      previousMasterKeys: previous.map((k) => k.exportText()),
      logger: false,
      scheduler: false,
      syncIntervalMs: 60_000,
      audit: { sinks: [callbackSink((e) => void events.push(e))] },
    });
    open.push(core);
    return core;
  }

  describe(`master-key rotation (${target.name})`, () => {
    it('new+previous opens the old keyring, keeps it under the old key until the rekey, then moves it whole', async () => {
      const oldOnly = await instance(OLD);
      const store = oldOnly.store;
      const beforeToken = oldOnly.jwt.sign({ sub: 'before' });
      const both = await instance(NEW, [OLD]);
      expect(both.jwt.verify(beforeToken).payload.sub).toBe('before');

      // A change before the rekey stays sealed by the old key: old-only instances still read it.
      const rotated = await both.keys.rotate({ use: 'sig' });
      expect((await storedDoc(store)).masterKeyId).toBe(OLD.id);
      expect(await allOpenWith(store, OLD)).toBe(true);
      await oldOnly.sync.refresh();
      expect(oldOnly.sync.status().stale).toBe(false);
      const duringToken = oldOnly.jwt.sign({ sub: 'during' });
      expect(oldOnly.keys.list().some((k) => k.kid === rotated.kid && k.state === 'active')).toBe(true);

      const result = await both.keys.rekey();
      expect(result).toMatchObject({ changed: true, previousMasterKeyId: OLD.id, masterKeyId: NEW.id });
      const doc = await storedDoc(store);
      expect(doc.masterKeyId).toBe(NEW.id);
      expect(await allOpenWith(store, NEW)).toBe(true);
      expect(await allOpenWith(store, OLD)).toBe(false);
      // Same keys, same states: the rekey only re-seals.
      expect(doc.keys.map((k) => `${k.kid}:${k.state}`).sort()).toEqual(
        oldOnly.keys
          .list()
          .map((k) => `${k.kid}:${k.state}`)
          .sort(),
      );

      // After the rekey, new keys are sealed under the new key only.
      await both.keys.rotate({ use: 'sig' });
      expect((await storedDoc(store)).masterKeyId).toBe(NEW.id);
      expect(await allOpenWith(store, NEW)).toBe(true);
      const afterToken = both.jwt.sign({ sub: 'after' });

      const fresh = await instance(NEW);
      const tokens = { before: beforeToken, during: duringToken, after: afterToken };
      for (const [sub, token] of Object.entries(tokens)) {
        expect(both.jwt.verify(token).payload.sub).toBe(sub);
        expect(fresh.jwt.verify(token).payload.sub).toBe(sub);
      }
    });

    it('an old-key-only instance refuses to start after the rekey; a running one keeps its snapshot and reports it in health', async () => {
      const oldOnly = await instance(OLD);
      const token = oldOnly.jwt.sign({ sub: 'u' });
      const both = await instance(NEW, [OLD]);
      await both.keys.rekey();

      const err = await instance(OLD).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'master_key_mismatch' });
      const message = (err as Error).message;
      expect(message).toContain(NEW.id);
      expect(message).toContain(OLD.id);
      expect(message).not.toContain('\n');
      for (const secret of secrets) expect(message).not.toContain(secret);

      // Fail static: the running old-key instance keeps verifying with what it holds.
      const generation = oldOnly.sync.status().generation;
      await oldOnly.sync.refresh();
      const status = oldOnly.sync.status();
      expect(status).toMatchObject({ stale: true, lastErrorCode: 'master_key_mismatch', generation });
      expect(oldOnly.jwt.verify(token).payload.sub).toBe('u');
      expect(oldOnly.keys.list().length).toBeGreaterThan(0);
      const report = await createHealth(oldOnly)();
      expect(report.status).toBe('warn');
      expect(report.checks['sync:generation']?.[0]).toMatchObject({
        status: 'warn',
        output: expect.stringContaining('master_key_mismatch'),
      });
      expect(report.checks['store:responseTime']?.[0]?.status).toBe('pass');
      // Its writes are refused rather than mixing two master keys in one document.
      expect(await codeOf(oldOnly.keys.rotate({ use: 'sig' }))).toBe('master_key_mismatch');
      expect((await storedDoc(oldOnly.store)).masterKeyId).toBe(NEW.id);
    });

    it('audits key.rekeyed with master-key ids only; a second rekey writes and audits nothing', async () => {
      await instance(OLD);
      const events: AuditEvent[] = [];
      const both = await instance(NEW, [OLD], events);
      await both.keys.rekey();
      const generation = (await storedDoc(both.store)).generation;
      const again = await both.keys.rekey();
      expect(again).toMatchObject({ changed: false, previousMasterKeyId: NEW.id, masterKeyId: NEW.id });
      expect((await storedDoc(both.store)).generation).toBe(generation);
      const rekeyed = events.filter((e) => e.type === 'key.rekeyed');
      expect(rekeyed).toHaveLength(1);
      expect(rekeyed[0]).toMatchObject({
        outcome: 'success',
        previousMasterKeyId: OLD.id,
        masterKeyId: NEW.id,
        generation,
        actor: { type: 'operator' },
      });
      const text = JSON.stringify(events);
      for (const secret of secrets) expect(text).not.toContain(secret);
      expect(JSON.stringify(both.options)).not.toContain(OLD.exportText().slice(0, 20));
    });

    it('a rekey racing a rotation commits both, all under the new key', async () => {
      await instance(OLD);
      const a = await instance(NEW, [OLD]);
      const b = await instance(NEW, [OLD]);
      const [rotated] = await Promise.all([a.keys.rotate({ use: 'sig' }), b.keys.rekey()]);
      const doc = await storedDoc(a.store);
      expect(doc.masterKeyId).toBe(NEW.id);
      expect(await allOpenWith(a.store, NEW)).toBe(true);
      expect(doc.keys.some((k) => k.kid === rotated.kid && k.state === 'active')).toBe(true);
      await a.sync.refresh();
      await b.sync.refresh();
      const token = b.jwt.sign({ sub: 'x' });
      expect(a.jwt.verify(token).kid).toBe(rotated.kid);
    });

    it('replace() swaps in a keyring over one sealed by another master key (restore --force)', async () => {
      const oldOnly = await instance(OLD);
      const token = oldOnly.jwt.sign({ sub: 'u' });
      const oldRepo = new KeyringRepository(oldOnly.store, OLD);
      const keys = oldRepo.unseal((await oldRepo.read()) as KeyringDocument);
      const before = await storedDoc(oldOnly.store);
      const doc = await new KeyringRepository(oldOnly.store, NEW).replace(keys);
      expect(doc.generation).toBe(before.generation + 1);
      expect(doc.masterKeyId).toBe(NEW.id);
      const fresh = await instance(NEW);
      expect(fresh.jwt.verify(token).payload.sub).toBe('u');
    });
  });
}

describe('previous master keys: options', () => {
  it('keywardOptionsFromEnv reads KEYWARD_MASTER_KEY_PREVIOUS as a comma-separated list', () => {
    const other = MasterKey.generate().exportText();
    const options = keywardOptionsFromEnv({
      KEYWARD_MASTER_KEY: NEW.exportText(),
      KEYWARD_MASTER_KEY_PREVIOUS: ` ${OLD.exportText()} ,, ${other}`,
    });
    expect(options.previousMasterKeys).toEqual([OLD.exportText(), other]);
    expect(keywardOptionsFromEnv({}).previousMasterKeys).toBeUndefined();
  });

  it('refuses a malformed previous key with master_key_invalid, naming its position, not its value', async () => {
    const err = await createKeywardCore({
      store: createMemoryStore(),
      masterKey: NEW.exportText(),
      previousMasterKeys: [OLD.exportText(), 'not-a-key-abcdef'],
      logger: false,
      audit: false,
      scheduler: false,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'master_key_invalid' });
    expect((err as Error).message).toContain('entry 2');
    expect((err as Error).message).not.toContain('not-a-key-abcdef');
  });
});

describeRekey(() => {
  const memory = new Map<string, Store>();
  return {
    name: 'memory',
    open(test) {
      if (!memory.has(test)) memory.set(test, createMemoryStore());
      return memory.get(test) as Store;
    },
    closeEach: false,
    cleanup: () => undefined,
  };
});

describeRekey(() => {
  const dir = mkdtempSync(join(tmpdir(), 'kw-rekey-'));
  const paths = new Map<string, string>();
  return {
    name: 'sqlite',
    open(test) {
      if (!paths.has(test)) paths.set(test, join(dir, `k${paths.size}.db`));
      return createSqliteStore({ path: paths.get(test) as string });
    },
    closeEach: true,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
});

describeWithRedis('on a real Redis', () => {
  const url = redisTestUrl() as string;
  const base = uniquePrefix('rekey');
  const prefixes = new Map<string, string>();
  describeRekey(() => ({
    name: 'redis',
    open(test) {
      if (!prefixes.has(test)) prefixes.set(test, `{${base}${prefixes.size}}:`);
      return createRedisStore({ url, prefix: prefixes.get(test) as string });
    },
    closeEach: true,
    async cleanup() {
      for (const prefix of prefixes.values()) await dropRedisPrefix(url, prefix);
    },
  }));
});
