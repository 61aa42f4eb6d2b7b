import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { isKeywardError } from '../errors.js';
import { KEYRING_KEY } from '../keys/keyring-store.js';
import { MasterKey } from '../keys/master-key.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';

const MASTER = MasterKey.generate().exportText();
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

type Step =
  | { op: 'rotate'; at: number }
  | { op: 'revokeActive'; at: number }
  | { op: 'restart'; at: number }
  | { op: 'tick'; at: number }
  | { op: 'sign'; at: number }
  | { op: 'advance'; ms: number };

const instance = fc.integer({ min: 0, max: 2 });
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant('rotate' as const), at: instance }),
  fc.record({ op: fc.constant('revokeActive' as const), at: instance }),
  fc.record({ op: fc.constant('restart' as const), at: instance }),
  fc.record({ op: fc.constant('tick' as const), at: instance }),
  fc.record({ op: fc.constant('sign' as const), at: instance }),
  fc.record({
    op: fc.constant('advance' as const),
    ms: fc.oneof(fc.integer({ min: 0, max: 20 * MINUTE }), fc.integer({ min: 20 * DAY, max: 95 * DAY })),
  }),
);

describe('three instances on one store, under a fake clock', () => {
  it('keep the keyring invariants after any sequence of rotate / revoke / restart / scheduled runs', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 14 }), async (steps) => {
        let t = Date.UTC(2030, 0, 1);
        const now = () => t;
        const store: Store = createMemoryStore({ now });
        const make = () =>
          createKeywardCore({
            store,
            now,
            masterKey: MASTER,
            logger: false,
            audit: false,
            scheduler: false,
            syncIntervalMs: 3_600_000,
          });
        const cores: KeywardCore[] = [await make(), await make(), await make()];
        const tokens: Array<{ token: string; kid: string; exp: number }> = [];
        try {
          for (const s of steps) {
            const core = s.op === 'advance' ? undefined : cores[s.at]!;
            if (s.op === 'advance') t += s.ms;
            else if (s.op === 'rotate') {
              // The bounded keyring refuses an on-demand rotation at maxRetiringKeys: an allowed outcome.
              await core!.keys.rotate({ use: 'sig' }).catch((err: unknown) => {
                if (!isKeywardError(err) || err.code !== 'rotation_limit') throw err;
              });
            } else if (s.op === 'revokeActive') {
              const active = core!.keys.list().find((k) => k.use === 'sig' && k.state === 'active')!;
              await core!.keys.revoke(active.kid, 'property test');
            } else if (s.op === 'restart') {
              await core!.close();
              cores[s.at] = await make();
            } else if (s.op === 'tick') await core!.scheduler.tick();
            else {
              const token = core!.jwt.sign({ sub: 'u' });
              const { kid, payload } = core!.jwt.verify(token);
              tokens.push({ token, kid, exp: (payload.exp as number) * 1000 });
            }

            await Promise.all(cores.map((c) => c.sync.refresh()));
            const stored = JSON.parse((await store.get(KEYRING_KEY)) as string) as { generation: number };
            const records = cores[0]!.keys.list();
            for (const c of cores) {
              expect(c.sync.status().generation).toBe(stored.generation);
              for (const use of ['sig', 'enc', 'data'] as const)
                expect(c.keys.list().filter((k) => k.use === use && k.state === 'active')).toHaveLength(1);
              for (const { token, kid, exp } of tokens) {
                const record = records.find((r) => r.kid === kid)!;
                const code = codeOf(() => c.jwt.verify(token));
                if (record.state === 'revoked') expect(code).toBe('key_revoked');
                // Unexpired tokens of unrevoked keys verify: verifyUntil outlasts every token lifetime.
                else if (t < exp) expect(code).toBeUndefined();
              }
            }
          }
        } finally {
          await Promise.all(cores.map((c) => c.close()));
        }
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});
