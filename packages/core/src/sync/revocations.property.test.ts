import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../store/memory.js';
import type { Store, StoreMessageHandler } from '../store/types.js';
import {
  persistRevocation,
  REVOCATION_GENERATION_KEY,
  type RevocationEvent,
  RevocationSet,
  readGeneration,
} from './revocations.js';
import { KeyringSync } from './sync.js';

const GRACE = 2_000;
const SUBJECT_RETAIN = 20_000;

/**
 * A memory store whose announcements the test delivers itself (in any order, twice, or never),
 * and whose listing can let other writers land revocations while it runs.
 */
function controlledStore(now: () => number) {
  const inner = createMemoryStore({ now });
  const inFlight: string[] = [];
  const state: { handler: StoreMessageHandler | undefined; duringList: (() => Promise<void>) | undefined } = {
    handler: undefined,
    duringList: undefined,
  };
  const store: Store = {
    ...inner,
    async publish(channel, message) {
      if (channel === 'events') inFlight.push(message);
    },
    async subscribe(_channel, handler) {
      state.handler = handler;
      return async () => {
        state.handler = undefined;
      };
    },
    async list(prefix, options) {
      const page = await inner.list(prefix, options);
      const landing = state.duringList;
      state.duringList = undefined;
      await landing?.();
      return page;
    },
  };
  return { store, inFlight, state };
}

type Revoke = { op: 'revoke'; subject: boolean; id: number; ttlS: number };
type Step =
  | Revoke
  | { op: 'deliver'; pick: number; duplicate: boolean }
  | { op: 'lose'; pick: number }
  | { op: 'poll' }
  | { op: 'pollWhileLanding'; landing: Revoke[]; deliverDuring: boolean; late: boolean }
  | { op: 'advance'; seconds: number };

const revoke: fc.Arbitrary<Revoke> = fc.record({
  op: fc.constant('revoke' as const),
  subject: fc.boolean(),
  id: fc.integer({ min: 0, max: 5 }),
  ttlS: fc.integer({ min: 1, max: 30 }),
});
const step: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: revoke, weight: 4 },
  {
    arbitrary: fc.record({ op: fc.constant('deliver' as const), pick: fc.nat(), duplicate: fc.boolean() }),
    weight: 4,
  },
  { arbitrary: fc.record({ op: fc.constant('lose' as const), pick: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('poll' as const) }), weight: 2 },
  {
    arbitrary: fc.record({
      op: fc.constant('pollWhileLanding' as const),
      landing: fc.array(revoke, { minLength: 1, maxLength: 3 }),
      deliverDuring: fc.boolean(),
      late: fc.boolean(),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({ op: fc.constant('advance' as const), seconds: fc.integer({ min: 1, max: 25 }) }),
    weight: 2,
  },
);

const keyOf = (e: RevocationEvent) => (e.type === 'revoke-jti' ? `jti:${e.jti}` : `sub:${e.sub}`);

/** What the store holds (live entries only), as the set would export it. */
async function storeView(store: Store, now: number): Promise<Map<string, number>> {
  const probe = new RevocationSet({ graceMs: GRACE, subjectRetainMs: SUBJECT_RETAIN });
  await probe.load(store, now);
  return viewOf(probe);
}

function viewOf(set: RevocationSet): Map<string, number> {
  return new Map([...set.entries()].map((e) => [keyOf(e), e.until]));
}

describe('the revocation view under any interleaving of announcements, polls, reloads and expiry', () => {
  it('never forgets a revocation before its expiry, converges on the store, never moves its generation back, and stops reloading', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 40 }),
        fc.array(revoke, { minLength: 1, maxLength: 6 }),
        fc.nat(),
        async (steps, tail, seed) => {
          // Whole seconds plus 500 ms, so expiries never fall between the store's TTL and the set's.
          let t = Date.UTC(2030, 0, 1) + 500;
          const now = () => t;
          const { store, inFlight, state } = controlledStore(now);
          const set = new RevocationSet({ clockSkewMs: 0, graceMs: GRACE, subjectRetainMs: SUBJECT_RETAIN });
          const sync = new KeyringSync({
            store,
            revocations: set,
            generation: () => 0,
            parseKeyring: () => null,
            reloadKeyring: async () => {},
            pollIntervalMs: 3_600_000,
            now,
          });
          // A token's exp is fixed: every revocation of one jti carries the same `until`.
          const jtiUntil = new Map<number, number>();
          const write = async (r: Revoke) => {
            const event: RevocationEvent = r.subject
              ? { type: 'revoke-subject', sub: `user/${r.id}`, notBefore: t, until: t + SUBJECT_RETAIN }
              : {
                  type: 'revoke-jti',
                  jti: r.id % 2 === 0 ? `j${r.id}` : `j/${r.id}~`,
                  until: jtiUntil.get(r.id) ?? t + r.ttlS * 1000,
                };
            if (event.type === 'revoke-jti') jtiUntil.set(r.id, event.until);
            await persistRevocation(store, event, t, { graceMs: GRACE });
          };
          const deliver = (index: number, keep: boolean) => {
            const [message] = keep ? inFlight.slice(index, index + 1) : inFlight.splice(index, 1);
            if (message !== undefined) state.handler?.(message);
          };

          /** Every revocation the set ever held, with the latest `until` it held for it. */
          const seen = new Map<string, RevocationEvent>();
          let generation = 0;
          const check = () => {
            for (const e of set.entries()) {
              const before = seen.get(keyOf(e));
              if (before === undefined || before.until <= e.until) seen.set(keyOf(e), e);
            }
            const held = viewOf(set);
            for (const [key, e] of seen) {
              if (t >= e.until + GRACE) continue;
              expect(held.get(key), `${key} forgotten before its expiry`).toBeGreaterThanOrEqual(e.until);
              const claims =
                e.type === 'revoke-jti'
                  ? { jti: e.jti }
                  : { sub: e.sub, iat: Math.floor(e.notBefore / 1000) };
              expect(set.check(claims)).toBe('token_revoked');
            }
            expect(set.generation).toBeGreaterThanOrEqual(generation);
            generation = set.generation;
          };

          try {
            await sync.poll(); // subscribes
            for (const s of steps) {
              if (s.op === 'revoke') await write(s);
              else if (s.op === 'deliver') {
                if (inFlight.length > 0) deliver(s.pick % inFlight.length, s.duplicate);
              } else if (s.op === 'lose') {
                if (inFlight.length > 0) inFlight.splice(s.pick % inFlight.length, 1);
              } else if (s.op === 'poll') await sync.poll();
              else if (s.op === 'pollWhileLanding') {
                let reached = 0;
                state.duringList = async () => {
                  for (const r of s.landing) await write(r);
                  // Some of their announcements arrive while the reload is still listing.
                  if (s.deliverDuring) while (inFlight.length > 0) deliver(inFlight.length - 1, false);
                  reached = set.generation;
                };
                // One announcement is lost or late, so the poll reloads, and more revocations land
                // while it lists.
                await write({ op: 'revoke', subject: false, id: 6, ttlS: 10 });
                if (!s.late) inFlight.pop();
                await sync.poll();
                expect(state.duringList, 'the poll reloaded').toBeUndefined();
                expect(set.generation, 'the reload moved the generation back').toBeGreaterThanOrEqual(
                  reached,
                );
                // Nothing was lost: the generation covers the store's, and the next poll will not reload.
                if (s.late && s.deliverDuring)
                  expect(set.generation).toBe(readGeneration(await store.get(REVOCATION_GENERATION_KEY)));
                state.duringList = undefined;
              } else t += s.seconds * 1000;
              check();
            }

            // The store stops changing; the late announcements arrive (out of order); one poll.
            while (inFlight.length > 0) deliver((seed + inFlight.length) % inFlight.length, false);
            await sync.poll();
            check();
            expect(viewOf(set)).toEqual(await storeView(store, t));
            const storeGeneration = readGeneration(await store.get(REVOCATION_GENERATION_KEY));
            expect(set.generation).toBe(storeGeneration);

            // The subscription is back and loses nothing: announcements delivered in any order,
            // some twice, and the polls that follow reload nothing.
            const reloads = sync.status().revocationReloads;
            for (const r of tail) await write(r);
            const order = inFlight
              .map((m, i) => ({ m, k: (i * 7919 + seed) % 104_729 }))
              .sort((a, b) => a.k - b.k);
            inFlight.length = 0;
            for (const [i, { m }] of order.entries()) {
              state.handler?.(m);
              if ((seed + i) % 3 === 0) state.handler?.(m);
            }
            await sync.poll();
            await sync.poll();
            check();
            expect(sync.status().revocationReloads).toBe(reloads);
            expect(set.generation).toBe(readGeneration(await store.get(REVOCATION_GENERATION_KEY)));
            expect(viewOf(set)).toEqual(await storeView(store, t));
          } finally {
            await sync.stop();
          }
        },
      ),
      { numRuns: 150 },
    );
  }, 120_000);
});
