/**
 * The multi-process sync suite, one set of checks for every store driver (`syncSuite(driver)`):
 * several instances on one namespace of one store; a rotation, a key revocation and a logout on
 * one reach all of them; ten schedulers racing at the due instant make one key; a process killed
 * with SIGKILL mid-rotation leaves a consistent keyring; an instance whose change feed was cut
 * converges. A driver says how to make a fresh namespace (the env of the app processes), how to
 * open a store on it (the suite reads the stored keyring through the store API, not the backend's
 * layout), and how to clean up. Memory cannot be shared between processes: its driver starts
 * in-process instances on one memory store (`sync-memory.test.ts`).
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KEYRING_KEY, type KeyringDocument } from '../../src/keys/keyring-store.js';
import { checkKeyringInvariants } from '../../src/keys/lifecycle.js';
import { MasterKey } from '../../src/keys/master-key.js';
import type { Store } from '../../src/store/types.js';
import { type App, codeOf, eventually, startApp } from './harness.js';

/** One running instance: an app process, or (memory) an in-process core answering the same ops. */
export type Instance = Pick<App, 'call' | 'close' | 'waitEvent'> & {
  /** SIGKILL (processes only). */
  kill?(): Promise<void>;
};

/** How a driver cuts the change feed (pub/sub, LISTEN) of one instance. */
export interface FeedCut {
  /** Env that names the instance's connections `name` and keeps a dropped feed down where the driver can. */
  env(name: string, namespace: Record<string, string>): Record<string, string>;
  /** Drops the feed connection(s) of the instance named `name`; resolves how many it dropped (≥ 1). */
  drop(name: string, namespace: Record<string, string>): Promise<number>;
}

/** A store driver the suite runs on. */
export interface SyncDriver {
  readonly name: string;
  /** Env of the instances for a fresh, empty namespace (connection + prefix, schema or file). */
  namespace(): Record<string, string> | Promise<Record<string, string>>;
  /** A store on the namespace of `env` (the suite closes it). */
  openStore(env: Record<string, string>): Store;
  /** Runs after the suite (drop prefixes, schemas, files). */
  cleanup?(): Promise<void>;
  /** Starts one instance; default an app process (`startApp`). */
  start?(env: Record<string, string>): Promise<Instance>;
  /** How to cut one instance's change feed; absent when it has none (SQLite polls, memory). */
  feed?: FeedCut;
  /** How many instances to start at once after the first (default 3: two cores). */
  batch?: number;
}

const MASTER = MasterKey.generate().exportText();
const DAY = 24 * 60 * 60 * 1000;
const POLL_MS = 300;

/** The keyring document as the store holds it. */
export async function storedKeyring(
  driver: SyncDriver,
  env: Record<string, string>,
): Promise<KeyringDocument> {
  const store = driver.openStore(env);
  try {
    return JSON.parse((await store.get(KEYRING_KEY)) as string) as KeyringDocument;
  } finally {
    await store.close();
  }
}

/**
 * Defines the suite for `driver` (inside the caller's `describe`, whose hooks may start the
 * servers the driver needs).
 */
export function syncSuite(driver: SyncDriver): void {
  const running: Instance[] = [];
  const launch = driver.start ?? ((env: Record<string, string>) => startApp(env));

  async function start(count: number, env: Record<string, string>): Promise<Instance[]> {
    const make = () => launch({ KW_MASTER: MASTER, KW_SYNC_MS: String(POLL_MS), ...env });
    // One first, so the keyring is bootstrapped once; the rest a few at a time (two cores).
    const first = await make();
    running.push(first);
    const started = [first];
    const batch = driver.batch ?? 3;
    while (started.length < count) {
      const more = await Promise.all(Array.from({ length: Math.min(batch, count - started.length) }, make));
      running.push(...more);
      started.push(...more);
    }
    return started;
  }

  const verifies = (app: Instance, token: string) => app.call<string>('verify', { token });

  describe(`sync suite: ${driver.name}`, () => {
    afterEach(async () => {
      await Promise.all(running.splice(0).map((a) => a.close()));
    });
    afterAll(async () => {
      await driver.cleanup?.();
    });

    it('rotate on one: a token signed by the new key verifies on all three, old tokens too', async () => {
      const [a, b, c] = await start(3, await driver.namespace());
      const old = await a!.call<string>('sign');
      const { kid, previousKid, generation } = await a!.call<{
        kid: string;
        previousKid: string;
        generation: number;
      }>('rotate');
      expect(kid).not.toBe(previousKid);
      const fresh = await a!.call<string>('sign');
      for (const app of [a!, b!, c!]) {
        // The new key was the published standby: every instance verifies its tokens even before
        // it applied the rotation. Applied = the rotation's generation.
        expect(await verifies(app, fresh)).toBe(kid);
        await eventually(
          async () => (await app.call<{ generation: number }>('status')).generation >= generation,
        );
        expect(await verifies(app, old)).toBe(previousKid);
      }
      // b signs with the new key too once it applied the change.
      expect(await verifies(c!, await b!.call<string>('sign'))).toBe(kid);
    });

    it('revoke a key on one: its tokens are rejected on all three, the replacement signs', async () => {
      const [a, b, c] = await start(3, await driver.namespace());
      const token = await b!.call<string>('sign');
      const kid = await verifies(c!, token);
      for (const app of [a!, b!, c!]) expect(await verifies(app, token)).toBe(kid);
      await a!.call('revoke', { kid });
      for (const app of [a!, b!, c!])
        await eventually(async () => (await codeOf(verifies(app, token))) === 'key_revoked');
      expect(await verifies(a!, await c!.call<string>('sign'))).not.toBe(kid);
    });

    it('logout on one (a revoked jti): the token is rejected on all three, others still verify', async () => {
      const [a, b, c] = await start(3, await driver.namespace());
      const session = await a!.call<string>('sign', { jti: 'logout-1' });
      const other = await a!.call<string>('sign', { jti: 'stays-1' });
      for (const app of [a!, b!, c!]) expect(await codeOf(verifies(app, session))).toBeUndefined();
      await c!.call('revokeToken', { jti: 'logout-1', until: Date.now() + 3_600_000 });
      for (const app of [a!, b!, c!]) {
        await eventually(async () => (await codeOf(verifies(app, session))) === 'token_revoked');
        expect(await codeOf(verifies(app, other))).toBeUndefined();
      }
    });

    it('ten schedulers racing at the due instant make exactly one new key', async () => {
      const env = await driver.namespace();
      const racers = await start(10, env);
      // Every clock jumps to one day before the signing key's period ends: a pending key is due.
      await Promise.all(racers.map((app) => app.call('setOffset', { ms: 89 * DAY })));
      const at = Date.now() + 500;
      const results = await Promise.all(racers.map((app) => app.call<{ status: string }>('tick', { at })));
      expect(results.filter((r) => r.status === 'rotated')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'failed')).toEqual([]);
      const doc = await storedKeyring(driver, env);
      expect(doc.keys.filter((k) => k.use === 'sig' && k.state === 'pending')).toHaveLength(1);
      expect(doc.fence).toBeGreaterThanOrEqual(1);
    }, 180_000);

    it.runIf(driver.start === undefined)(
      'kill -9 of a process mid-rotation leaves a consistent keyring that a restarted process serves',
      async () => {
        const env = await driver.namespace();
        const [victim, peer] = await start(2, env);
        await victim!.call('rotateForever');
        await victim!.waitEvent(
          (e) =>
            e.event === 'rotated' && (victim as App).events.filter((x) => x.event === 'rotated').length >= 3,
        );
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 20))); // land anywhere in a rotation
        await victim!.kill!();
        const doc = await storedKeyring(driver, env);
        expect(checkKeyringInvariants(doc.keys)).toEqual([]);
        const [restarted] = await start(1, env);
        expect(await restarted!.call('invariants')).toEqual([]);
        await peer!.call('refresh');
        const after = await storedKeyring(driver, env);
        for (const app of [restarted!, peer!]) {
          expect((await app.call<{ generation: number }>('status')).generation).toBe(after.generation);
          expect(await verifies(app, await restarted!.call<string>('sign'))).toBe(
            after.keys.find((k) => k.use === 'sig' && k.state === 'active')?.kid,
          );
        }
      },
    );

    const feed = driver.feed;
    it.runIf(feed !== undefined)(
      'an instance whose change feed was cut converges (by its poller)',
      async () => {
        const env = await driver.namespace();
        const name = `kwdeaf${Math.random().toString(36).slice(2, 8)}`;
        const [a] = await start(1, env);
        const [deaf] = await start(1, { ...env, ...feed!.env(name, env), KW_REPORT_APPLIED: '1' });
        // One connection, or more on a cluster (ioredis may hold a subscriber on more than one node).
        expect(await feed!.drop(name, env)).toBeGreaterThanOrEqual(1);
        const { generation, kid } = await a!.call<{ generation: number; kid: string }>('rotate');
        // Applied (a few polls at most; the wait only bounds a hang), and serving the new key.
        await deaf!.waitEvent(
          (e) => e.event === 'applied' && (e.change as { generation?: number }).generation === generation,
          10 * POLL_MS + 5000,
        );
        expect(await verifies(deaf!, await a!.call<string>('sign'))).toBe(kid);
        await a!.call('revokeToken', { jti: 'after-cut', until: Date.now() + 60_000 });
        const cut = await a!.call<string>('sign', { jti: 'after-cut' });
        await eventually(async () => (await codeOf(verifies(deaf!, cut))) === 'token_revoked');
      },
    );
  });
}
