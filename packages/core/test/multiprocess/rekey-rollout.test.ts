import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import { KEYRING_KEY, type KeyringDocument } from '../../src/keys/keyring-store.js';
import { MasterKey } from '../../src/keys/master-key.js';
import { unsealKeyMaterial } from '../../src/keys/seal.js';
import { createRedisStore } from '../../src/store/redis.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { type App, AppError, eventually, runAppToExit, startApp } from './harness.js';

const POLL_MS = 300;
const OLD = MasterKey.generate();
const NEW = MasterKey.generate();
const apps: App[] = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** Where the processes of one test keep their keyring, and a store on it for the test itself. */
interface Backend {
  env: Record<string, string>;
  open(): Store;
  cleanup(): Promise<void> | void;
}

interface Verified {
  ok: number;
  rejected: Record<string, number>;
}

function keysEnv(master: MasterKey, previous?: MasterKey): Record<string, string> {
  return {
    KW_MASTER: master.exportText(),
    KW_MASTER_PREVIOUS: previous ? previous.exportText() : '',
  };
}

function describeRollout(name: string, makeBackend: () => Backend): void {
  describe(`master-key rollout across processes (${name})`, () => {
    let backend: Backend;
    afterAll(() => backend?.cleanup());

    it('three instances: old → new+previous → rekey → new only; every token verifies on every instance throughout', async () => {
      backend = makeBackend();
      const start = async (keys: Record<string, string>) => {
        const app = await startApp({ ...backend.env, KW_SYNC_MS: String(POLL_MS), ...keys });
        apps.push(app);
        return app;
      };
      const inspect = backend.open();
      const storedDoc = async () => JSON.parse((await inspect.get(KEYRING_KEY)) as string) as KeyringDocument;
      const generationOf = async (app: App) => (await app.call<{ generation: number }>('status')).generation;
      const synced = async (members: App[], generation: number) => {
        for (const app of members) await eventually(async () => (await generationOf(app)) >= generation);
      };

      // Three instances on the old key, plus a straggler that never gets the new key.
      const first = await start(keysEnv(OLD));
      const fleet: App[] = [first, ...(await Promise.all([start(keysEnv(OLD)), start(keysEnv(OLD))]))];
      const straggler = await start(keysEnv(OLD));

      const tokens: string[] = [];
      /** Tokens signed by keys the straggler holds (everything before the last rotation). */
      let stragglerTokens: string[] = [];
      const signOnAll = async (phase: string) => {
        for (const [i, app] of fleet.entries())
          tokens.push(await app.call<string>('sign', { sub: `${phase}-${i}` }));
      };
      const totals: Verified = { ok: 0, rejected: {} };
      let rounds = 0;
      const add = (result: Verified) => {
        totals.ok += result.ok;
        for (const [code, count] of Object.entries(result.rejected))
          totals.rejected[code] = (totals.rejected[code] ?? 0) + count;
      };
      const verifyRound = async () => {
        const members: Array<[App, string[]]> = [
          ...fleet.map((app): [App, string[]] => [app, [...tokens]]),
          [straggler, [...stragglerTokens]],
        ];
        for (const [app, list] of members) {
          try {
            add(await app.call<Verified>('verifyMany', { tokens: list }));
          } catch (err) {
            // An instance being replaced may exit under a call; anything else is a failure.
            if (!(err instanceof AppError && err.code === 'exited' && !fleet.includes(app))) throw err;
          }
        }
        rounds++;
      };
      /** Waits until the background verifier completed two more rounds (so it ran in this phase). */
      const verifiedDuringPhase = async () => {
        const seen = rounds;
        await eventually(async () => rounds >= seen + 2, 30_000);
      };
      let rolling = true;
      const verifier = (async () => {
        while (rolling) await verifyRound();
      })();

      try {
        await signOnAll('before');
        stragglerTokens = [...tokens];
        await verifiedDuringPhase();

        // 1. Restart the instances one by one with new + previous (the replacement first).
        for (let i = 0; i < fleet.length; i++) {
          const old = fleet[i] as App;
          fleet[i] = await start(keysEnv(NEW, OLD));
          await old.close();
          await signOnAll(`mixed-${i}`);
          await verifiedDuringPhase();
        }

        // A rotation by a new+previous instance before the rekey stays sealed by the old key:
        // the straggler takes it too.
        const rotated = await (fleet[0] as App).call<{ kid: string; generation: number }>('rotate');
        expect((await storedDoc()).masterKeyId).toBe(OLD.id);
        await synced([...fleet, straggler], rotated.generation);
        await signOnAll('rotated-before-rekey');
        stragglerTokens = [...tokens];
        await verifiedDuringPhase();

        // 2. Rekey on one instance.
        const rekey = await (fleet[1] as App).call<{
          changed: boolean;
          previousMasterKeyId: string;
          masterKeyId: string;
          generation: number;
        }>('rekey');
        expect(rekey).toMatchObject({ changed: true, previousMasterKeyId: OLD.id, masterKeyId: NEW.id });
        const doc = await storedDoc();
        expect(doc.masterKeyId).toBe(NEW.id);
        expect(doc.keys.every(({ sealed, ...record }) => opens(NEW, record, sealed))).toBe(true);
        expect(doc.keys.some(({ sealed, ...record }) => opens(OLD, record, sealed))).toBe(false);
        await synced(fleet, rekey.generation);
        await signOnAll('after-rekey');
        stragglerTokens = [...tokens];
        await verifiedDuringPhase();

        // The straggler keeps serving its snapshot and reports the mismatch in health.
        await eventually(
          async () =>
            (await straggler.call<{ lastErrorCode?: string }>('status')).lastErrorCode ===
            'master_key_mismatch',
        );
        expect(await generationOf(straggler)).toBeLessThan(rekey.generation);
        const health = await straggler.call<{
          status: string;
          checks: Record<string, Array<{ status: string; output?: string }>>;
        }>('health');
        expect(health.status).toBe('warn');
        expect(health.checks['sync:generation']?.[0]?.output).toContain('master_key_mismatch');

        // An instance holding only the old key refuses to start: one line, no stack trace.
        const refused = await runAppToExit({ ...backend.env, ...keysEnv(OLD) });
        expect(refused.code).toBe(1);
        const lines = refused.stderr.trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/^keyward: .*\[master_key_mismatch\]$/);
        expect(lines[0]).toContain(NEW.id);
        expect(refused.stderr).not.toContain(OLD.exportText());
        expect(refused.stdout).not.toContain('"ready"');

        // 3. Restart them with the new key only.
        for (let i = 0; i < fleet.length; i++) {
          const old = fleet[i] as App;
          fleet[i] = await start(keysEnv(NEW));
          await old.close();
          await signOnAll(`new-${i}`);
          stragglerTokens = [...tokens];
          await verifiedDuringPhase();
        }

        // After the rekey, new keys are sealed under the new key only.
        const last = await (fleet[2] as App).call<{ kid: string; generation: number }>('rotate');
        await synced(fleet, last.generation);
        const final = await storedDoc();
        expect(final.masterKeyId).toBe(NEW.id);
        const newest = final.keys.find((k) => k.kid === last.kid);
        expect(newest && opens(NEW, newest, newest.sealed)).toBe(true);
        expect(newest && opens(OLD, newest, newest.sealed)).toBe(false);
        await signOnAll('after-rotation');
        await verifiedDuringPhase();
      } finally {
        rolling = false;
        await verifier;
        await inspect.close();
      }
      await verifyRound();
      expect(totals.rejected).toEqual({});
      // Every round verified every token on every instance: the counts add up, nothing skipped.
      expect(totals.ok).toBeGreaterThan(tokens.length * fleet.length);
      expect(tokens.length).toBe(3 * 10);
    }, 300_000);
  });
}

/** Whether a sealed blob opens under `key`; a destroyed data key (no blob) opens under none. */
function opens(
  key: MasterKey,
  record: Parameters<typeof unsealKeyMaterial>[1],
  sealed: string | undefined,
): boolean {
  if (sealed === undefined) return false;
  try {
    unsealKeyMaterial(key, record, sealed);
    return true;
  } catch {
    return false;
  }
}

describeRollout('sqlite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kw-rollout-'));
  const path = join(dir, 'keyward.db');
  return {
    env: { KW_SQLITE_PATH: path },
    open: () => createSqliteStore({ path }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
});

describeWithRedis('redis', () => {
  describeRollout('redis', () => {
    const url = redisTestUrl() as string;
    const prefix = `{${uniquePrefix('rollout')}}:`;
    return {
      env: { REDIS_URL: url, KW_PREFIX: prefix },
      open: () => createRedisStore({ url, prefix }),
      cleanup: () => dropRedisPrefix(url, prefix),
    };
  });
});
