import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { MasterKey } from '../keys/master-key.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { REVOCATION_SUB_PREFIX, SUBJECT_ACK_CLAIM } from './revocations.js';

const MASTER = MasterKey.generate().exportText();
const MINUTE = 60_000;
const open: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

async function core(store: Store, now: () => number): Promise<KeywardCore> {
  const kw = await createKeywardCore({
    store,
    now,
    masterKey: MASTER,
    logger: false,
    audit: false,
    scheduler: false,
    syncIntervalMs: 3_600_000,
  });
  open.push(kw);
  return kw;
}

const payloadOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

describe('logout everywhere across instances whose clocks differ', () => {
  it('revokes a token minted just before it by an instance whose clock runs 1 s ahead; a new login right after still works', async () => {
    const clock = { t: Date.UTC(2030, 0, 1, 0, 0, 0, 100) };
    const store = createMemoryStore({ now: () => clock.t });
    const a = await core(store, () => clock.t);
    const ahead = await core(store, () => clock.t + 1000);

    const minted = ahead.jwt.sign({ sub: 'alice' }); // iat one second past a's clock
    await a.revocations.revokeSubject('alice');
    await Promise.all([a.sync.refresh(), ahead.sync.refresh()]);
    expect(codeOf(() => a.jwt.verify(minted))).toBe('token_revoked');
    expect(codeOf(() => ahead.jwt.verify(minted))).toBe('token_revoked');

    // New logins on either instance, in the same second and once the second has passed.
    for (const step of [0, 300, 1000]) {
      clock.t += step;
      for (const issuer of [a, ahead]) {
        const fresh = issuer.jwt.sign({ sub: 'alice' });
        for (const verifier of [a, ahead]) expect(verifier.jwt.verify(fresh).payload.sub).toBe('alice');
      }
    }
    // Other subjects are untouched, and their tokens carry no acknowledgement.
    const bob = ahead.jwt.sign({ sub: 'bob' });
    expect(a.jwt.verify(bob).payload.sub).toBe('bob');
    expect(payloadOf(bob)).not.toHaveProperty(SUBJECT_ACK_CLAIM);
  });

  it('does not trust an acknowledgement claim passed in by the caller', async () => {
    const clock = { t: Date.UTC(2030, 0, 1, 0, 0, 0, 100) };
    const store = createMemoryStore({ now: () => clock.t });
    const a = await core(store, () => clock.t);
    const deaf = await core(store, () => clock.t + 1000);
    // Signed by an instance that has not heard of the not-before yet, with a forged acknowledgement.
    const forged = deaf.jwt.sign({ sub: 'carol', [SUBJECT_ACK_CLAIM]: clock.t + 10 * MINUTE });
    expect(payloadOf(forged)).not.toHaveProperty(SUBJECT_ACK_CLAIM);
    await a.revocations.revokeSubject('carol');
    await a.sync.refresh();
    expect(codeOf(() => a.jwt.verify(forged))).toBe('token_revoked');
  });

  it('lets a subject revocation expire in the store and in memory once every token it could revoke has expired', async () => {
    const clock = { t: Date.UTC(2030, 0, 1, 0, 0, 0, 100) };
    const store = createMemoryStore({ now: () => clock.t });
    const a = await core(store, () => clock.t);
    const b = await core(store, () => clock.t);
    const old = a.jwt.sign({ sub: 'dave' });
    await a.revocations.revokeSubject('dave');
    await b.sync.refresh();
    const { maxTokenTtl, clockSkew } = a.policy;
    const tolerance = 60_000; // the verifier's default clock tolerance
    expect(payloadOf(b.jwt.sign({ sub: 'dave' }))[SUBJECT_ACK_CLAIM]).toBe(clock.t);

    clock.t += maxTokenTtl + clockSkew + tolerance - 1;
    await Promise.all([a.sync.refresh(), b.sync.refresh()]);
    expect((await store.list(REVOCATION_SUB_PREFIX)).entries).toHaveLength(1);
    expect(codeOf(() => b.jwt.verify(old))).toBe('token_expired');

    clock.t += 1;
    await Promise.all([a.sync.refresh(), b.sync.refresh()]);
    expect((await store.list(REVOCATION_SUB_PREFIX)).entries).toEqual([]);
    // Pruned from memory too: the issuer no longer knows a not-before to acknowledge.
    for (const kw of [a, b])
      expect(payloadOf(kw.jwt.sign({ sub: 'dave' }))).not.toHaveProperty(SUBJECT_ACK_CLAIM);
  });
});
