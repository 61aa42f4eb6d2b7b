import { afterEach, describe, expect, it } from 'vitest';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { isKeywardError, KeywardError } from '../errors.js';
import { createHealth } from '../health/health.js';
import { toHttpProblem } from '../http/errors.js';
import { KEYRING_GENERATION_KEY, KEYRING_KEY, type KeyringDocument } from '../keys/keyring-store.js';
import { MasterKey } from '../keys/master-key.js';
import { createMemoryStore } from '../store/memory.js';
import type { Store } from '../store/types.js';
import { republishRevocations } from './recovery.js';
import {
  encodeJtiKey,
  encodeSubjectKey,
  REVOCATION_GENERATION_KEY,
  REVOCATION_JTI_PREFIX,
  REVOCATION_SUB_PREFIX,
} from './revocations.js';

const jtiKey = (jti: string) => `${REVOCATION_JTI_PREFIX}${encodeJtiKey(jti)}`;
const subKey = (sub: string) => `${REVOCATION_SUB_PREFIX}${encodeSubjectKey(sub)}`;

const MASTER = MasterKey.generate().exportText();
const open: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

async function core(store: Store): Promise<KeywardCore> {
  const kw = await createKeywardCore({
    store,
    masterKey: MASTER,
    logger: false,
    audit: false,
    scheduler: false,
    syncIntervalMs: 60_000,
  });
  open.push(kw);
  return kw;
}

/** What FLUSHALL does to a store: every key gone. */
async function flush(store: Store): Promise<void> {
  let cursor: string | undefined;
  const keys: string[] = [];
  do {
    const page = await store.scan('', cursor === undefined ? {} : { cursor });
    keys.push(...page.entries.map((e) => e.key));
    cursor = page.cursor ?? undefined;
  } while (cursor !== undefined);
  for (const key of keys) await store.delete(key);
}

async function stored(store: Store): Promise<KeyringDocument | null> {
  const raw = await store.get(KEYRING_KEY);
  return raw === null ? null : (JSON.parse(raw) as KeyringDocument);
}

async function codeOf(call: Promise<unknown>): Promise<string | undefined> {
  try {
    await call;
    return undefined;
  } catch (err) {
    return isKeywardError(err) ? err.code : String(err);
  }
}

const lineageCheck = async (kw: KeywardCore) => (await createHealth(kw)()).checks['keyring:lineage']?.[0];

describe('keyring lineage: store data loss never forks the keyring', () => {
  it('gives the bootstrapped keyring a lineage that later writes keep', async () => {
    const store = createMemoryStore();
    const kw = await core(store);
    const first = await stored(store);
    expect(first?.lineage).toMatch(/^[\w-]{16}$/);
    await kw.keys.rotate();
    expect((await stored(store))?.lineage).toBe(first?.lineage);
  });

  it('after a flush: the scheduler creates nothing, one instance re-publishes, readiness fails until a later read finds it', async () => {
    const store = createMemoryStore();
    const a = await core(store);
    const b = await core(store);
    const before = (await stored(store))!;
    const tokens = [a.jwt.sign({ sub: 'a' }), b.jwt.sign({ sub: 'b' })];
    expect((await lineageCheck(a))?.status).toBe('pass');

    await flush(store);
    // The scheduler of an instance that holds a keyring never bootstraps a new one.
    const tick = await a.scheduler.tick();
    expect(tick).toMatchObject({ status: 'failed', error: { code: 'keyring_lost' } });
    expect(await stored(store)).toBeNull();
    expect(await codeOf(a.keys.rotate())).toBe('keyring_lost');
    expect(await stored(store)).toBeNull();

    await Promise.all([a.sync.refresh(), b.sync.refresh()]);
    const after = (await stored(store))!;
    expect(after.lineage).toBe(before.lineage);
    expect(after.generation).toBe(before.generation);
    expect(after.keys.map((k) => k.kid)).toEqual(before.keys.map((k) => k.kid));
    expect(Number(await store.get(KEYRING_GENERATION_KEY))).toBe(before.generation);
    // At least the first to look saw the loss; whoever saw it fails readiness with a named check.
    const reports = await Promise.all([a, b].map((kw) => createHealth(kw)()));
    const failing = reports.filter((r) => r.status === 'fail');
    expect(failing.length).toBeGreaterThanOrEqual(1);
    for (const r of failing)
      expect(r.checks['keyring:lineage']?.[0]).toMatchObject({
        status: 'fail',
        output: 'store lost the keyring; re-published',
      });
    const signer = after.keys.find((k) => k.use === 'sig' && k.state === 'active')?.kid;
    for (const kw of [a, b]) for (const token of tokens) expect(kw.jwt.verify(token).kid).toBe(signer);

    await Promise.all([a.sync.refresh(), b.sync.refresh()]);
    for (const kw of [a, b]) {
      expect(kw.sync.status().keyringProblem).toBeUndefined();
      expect((await createHealth(kw)()).status).toBe('pass');
    }
    // Writes work again, on the same keyring.
    await b.keys.rotate();
    await a.sync.refresh();
    expect((await stored(store))?.lineage).toBe(before.lineage);
    expect(a.keys.list().map((k) => k.kid)).toEqual(b.keys.list().map((k) => k.kid));
  });

  it('answers the new codes as a server-side 503, never as a credential error', () => {
    for (const code of ['keyring_lost', 'keyring_lineage_mismatch'] as const) {
      const problem = toHttpProblem(new KeywardError(code, 'x'));
      expect(problem).toMatchObject({ status: 503, error: code });
      expect(problem.headers['www-authenticate']).toBeUndefined();
    }
  });

  it('puts back the newest generation an instance holds when the store went back to an older one', async () => {
    const store = createMemoryStore();
    const a = await core(store);
    const old = (await store.get(KEYRING_KEY))!;
    const { kid } = await a.keys.rotate();
    const newest = (await stored(store))!;
    await store.set(KEYRING_KEY, old);
    await a.sync.refresh();
    expect(a.sync.status().keyringProblem).toBe('republished');
    expect(await stored(store)).toMatchObject({ generation: newest.generation, lineage: newest.lineage });
    const fresh = await core(store);
    expect(fresh.jwt.verify(a.jwt.sign({ sub: 'x' })).kid).toBe(kid);
  });

  it('never adopts nor writes over a keyring of another lineage, and says so until an operator acts', async () => {
    const store = createMemoryStore();
    const a = await core(store);
    const token = a.jwt.sign({ sub: 'a' });
    const ours = (await store.get(KEYRING_KEY))!;
    // Another keyring, bootstrapped separately (e.g. by a new instance on the empty store).
    const elsewhere = createMemoryStore();
    await core(elsewhere);
    const foreign = (await elsewhere.get(KEYRING_KEY))!;
    await store.set(KEYRING_KEY, foreign);

    await a.sync.refresh();
    expect(a.sync.status().keyringProblem).toBe('foreign');
    const report = await createHealth(a)();
    expect(report.status).toBe('fail');
    expect(report.checks['keyring:lineage']?.[0]).toMatchObject({
      status: 'fail',
      output: 'keyring of another lineage in the store',
    });
    expect(a.jwt.verify(token).payload.sub).toBe('a');
    expect(a.jwt.verify(a.jwt.sign({ sub: 'still signing' })).payload.sub).toBe('still signing');
    expect(await codeOf(a.keys.rotate())).toBe('keyring_lineage_mismatch');
    expect(await a.scheduler.tick()).toMatchObject({
      status: 'failed',
      error: { code: 'keyring_lineage_mismatch' },
    });
    expect(await store.get(KEYRING_KEY)).toBe(foreign);

    // The operator keeps the held keyring: delete the foreign document; the instances put theirs back.
    await store.delete(KEYRING_KEY);
    await a.sync.refresh();
    await a.sync.refresh();
    expect(a.sync.status().keyringProblem).toBeUndefined();
    expect((await stored(store))?.lineage).toBe((JSON.parse(ours) as KeyringDocument).lineage);
  });

  it('treats a document without a lineage (written before lineages) as the same keyring when it shares a kid, and gives it one on the next write', async () => {
    const store = createMemoryStore();
    const doc = (await stored(store)) ?? undefined;
    expect(doc).toBeUndefined();
    const a = await core(store);
    // An older keyward's write: the next generation, without the field it does not know.
    const { lineage: _lineage, ...current } = (await stored(store))!;
    await store.set(KEYRING_KEY, JSON.stringify({ ...current, generation: current.generation + 1 }));
    await a.sync.refresh();
    expect(a.sync.status()).toMatchObject({ generation: current.generation + 1 });
    expect(a.sync.status().keyringProblem).toBeUndefined();
    const b = await core(store); // holds a lineage-less document
    await b.keys.rotate();
    const written = (await stored(store))!;
    expect(written.lineage).toMatch(/^[\w-]{16}$/);
    await a.sync.refresh();
    expect(a.sync.status().keyringProblem).toBeUndefined();
    expect(a.sync.status().generation).toBe(written.generation);
  });

  it('writes back the revocations it holds when the store lost them, merged with what others wrote back', async () => {
    const store = createMemoryStore();
    const a = await core(store);
    const b = await core(store);
    const exp = Date.now() + 600_000;
    const revoked = a.jwt.sign({ sub: 'r', jti: 'gone' });
    await a.revocations.revokeToken('gone', exp);
    await b.revocations.revokeSubject('everywhere');
    const everywhere = a.jwt.sign({ sub: 'everywhere' }); // issued after the logout: valid
    const before = b.jwt.sign({ sub: 'other' });
    await Promise.all([a.sync.refresh(), b.sync.refresh()]);
    expect(await store.get(REVOCATION_GENERATION_KEY)).toBe('2');

    await flush(store);
    await a.sync.refresh();
    await b.sync.refresh();
    await a.sync.refresh();
    const late = await core(store); // loads only what the store holds
    for (const kw of [a, b, late]) {
      expect(await codeOf(Promise.resolve().then(() => kw.jwt.verify(revoked)))).toBe('token_revoked');
      expect(kw.jwt.verify(everywhere).payload.sub).toBe('everywhere');
      expect(kw.jwt.verify(before).payload.sub).toBe('other');
      expect(kw.sync.status().keyringProblem).toBeUndefined();
    }
    expect(await store.get(jtiKey('gone'))).toBe(String(exp));
    expect(await store.get(subKey('everywhere'))).not.toBeNull();
  });

  it('merges written-back revocations: a jti only if absent, a subject not-before only raised, expired ones skipped', async () => {
    const store = createMemoryStore();
    const far = Date.now() + 3_600_000;
    const subject = (notBefore: number) => JSON.stringify({ notBefore, until: far });
    const notBeforeOf = async (sub: string) =>
      (JSON.parse((await store.get(subKey(sub))) ?? 'null') as { notBefore: number }).notBefore;
    await store.set(subKey('raised'), subject(100));
    await store.set(subKey('kept'), subject(300));
    await store.set(jtiKey('present'), '5000');
    const generation = await republishRevocations(
      store,
      [
        { type: 'revoke-subject', sub: 'raised', notBefore: 200, until: far },
        { type: 'revoke-subject', sub: 'kept', notBefore: 250, until: far },
        { type: 'revoke-subject', sub: 'new', notBefore: 50, until: far },
        { type: 'revoke-jti', jti: 'present', until: 9000 },
        { type: 'revoke-jti', jti: 'fresh', until: Date.now() + 60_000 },
        { type: 'revoke-jti', jti: 'expired', until: Date.now() - 1 },
      ],
      Date.now(),
    );
    expect(generation).toBe(1);
    expect(await notBeforeOf('raised')).toBe(200);
    expect(await notBeforeOf('kept')).toBe(300);
    expect(await notBeforeOf('new')).toBe(50);
    expect(await store.get(jtiKey('present'))).toBe('5000');
    expect(await store.get(jtiKey('fresh'))).not.toBeNull();
    expect(await store.get(jtiKey('expired'))).toBeNull();
  });
});
