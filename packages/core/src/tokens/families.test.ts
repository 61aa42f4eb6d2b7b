import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { MasterKey } from '../keys/master-key.js';
import { createKeyward } from '../keyward.js';
import { createMemoryStore } from '../store/memory.js';
import { createSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/types.js';
import { createTokenService, type TokenServiceOptions } from './service.js';
import type { TokenPair } from './types.js';

const MASTER = MasterKey.generate().exportText();
const dir = mkdtempSync(join(tmpdir(), 'kw-families-'));
const open: Array<{ core: KeywardCore; store: Store }> = [];
let files = 0;
afterEach(async () => {
  await Promise.all(
    open.splice(0).map(async ({ core, store }) => {
      await core.close();
      await store.close();
    }),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function clock() {
  const c = { t: Date.UTC(2030, 0, 1), now: () => c.t };
  return c;
}
type Clock = ReturnType<typeof clock>;

const drivers: Array<[string, (c: Clock) => Store]> = [
  ['memory', (c) => createMemoryStore({ now: c.now })],
  ['sqlite', (c) => createSqliteStore({ path: join(dir, `f-${files++}.db`), now: c.now })],
];

async function setup(makeStore: (c: Clock) => Store, options: TokenServiceOptions = {}, coreOptions = {}) {
  const c = clock();
  const store = makeStore(c);
  const core = await createKeywardCore({
    store,
    masterKey: MASTER,
    logger: false,
    audit: false,
    syncIntervalMs: 60_000,
    now: c.now,
    ...coreOptions,
  });
  open.push({ core, store });
  return { core, store, clock: c, tokens: createTokenService(core, options) };
}

/** Issues a session and refreshes it `n` times; returns every pair, the issued one first. */
async function chain(tokens: ReturnType<typeof createTokenService>, n: number): Promise<TokenPair[]> {
  const pairs = [await tokens.issue({ sub: 'user_1' })];
  for (let i = 0; i < n; i++) pairs.push(await tokens.refresh((pairs.at(-1) as TokenPair).refresh_token));
  return pairs;
}

function expectAllRevoked(core: KeywardCore, pairs: TokenPair[]): void {
  for (const pair of pairs) {
    expect(() => core.jwt.verify(pair.access_token)).toThrow(
      expect.objectContaining({ code: 'token_revoked' }),
    );
  }
}

async function keysUnder(store: Store, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.scan(prefix, cursor === undefined ? {} : { cursor });
    found.push(...page.entries.map((e) => e.key));
    cursor = page.cursor ?? undefined;
  } while (cursor !== undefined);
  return found;
}

describe.each(drivers)('family revocation on %s', (_name, makeStore) => {
  it('a reuse after 40 refreshes revokes every access token the family issued, the first one too', async () => {
    const { core, tokens, clock: c } = await setup(makeStore);
    const pairs = await chain(tokens, 40);
    // Before: every access token verifies (so the assertions below can fail).
    for (const pair of pairs) expect(core.jwt.verify(pair.access_token).payload.sub).toBe('user_1');
    c.t += 3000; // past the 2 s reuse interval
    const reused = pairs.at(-2) as TokenPair; // spent by the last refresh, still remembered
    expect(await codeOf(tokens.refresh(reused.refresh_token))).toBe('refresh_token_reused');
    expectAllRevoked(core, pairs);
    expect(await codeOf(tokens.refresh((pairs.at(-1) as TokenPair).refresh_token))).toBe(
      'refresh_token_invalid',
    );
  });

  it('logout after 40 refreshes revokes every access token the family issued', async () => {
    const { core, tokens } = await setup(makeStore);
    const pairs = await chain(tokens, 40);
    expect(core.jwt.verify((pairs[0] as TokenPair).access_token).payload.sub).toBe('user_1');
    await tokens.logout({ refreshToken: (pairs.at(-1) as TokenPair).refresh_token });
    expectAllRevoked(core, pairs);
  });

  it('another session of the same subject keeps working', async () => {
    const { core, tokens } = await setup(makeStore);
    const mine = await chain(tokens, 5);
    const other = await tokens.issue({ sub: 'user_1' });
    await tokens.logout({ refreshToken: (mine.at(-1) as TokenPair).refresh_token });
    expect(core.jwt.verify(other.access_token).payload.sub).toBe('user_1');
    await expect(tokens.refresh(other.refresh_token)).resolves.toBeDefined();
  });
});

describe('bounded session state', () => {
  it('remembers the last reuseDetectionDepth spent tokens: a reuse within them revokes, an older one is unknown', async () => {
    const { tokens, clock: c } = await setup(drivers[0]?.[1] as (c: Clock) => Store, {
      reuseDetectionDepth: 4,
    });
    const pairs = await chain(tokens, 10); // refresh tokens t0..t10; t6..t9 remembered as spent
    c.t += 3000;
    // t5 was spent 5 refreshes ago: its marker is gone, so it is refused without touching the family.
    expect(await codeOf(tokens.refresh((pairs[5] as TokenPair).refresh_token))).toBe('refresh_token_invalid');
    const current = pairs.at(-1) as TokenPair;
    const next = await tokens.refresh(current.refresh_token);
    c.t += 3000;
    // t7 (now 4 refreshes back, still within the depth) is detected as reuse.
    expect(await codeOf(tokens.refresh((pairs[7] as TokenPair).refresh_token))).toBe('refresh_token_reused');
    expect(await codeOf(tokens.refresh(next.refresh_token))).toBe('refresh_token_invalid');
  });

  it('refuses a reuseDetectionDepth outside 1..1000', async () => {
    const { core } = await setup(drivers[0]?.[1] as (c: Clock) => Store);
    for (const bad of [0, 1.5, 1001, Number.NaN]) {
      expect(() => createTokenService(core, { reuseDetectionDepth: bad })).toThrow(
        expect.objectContaining({ code: 'config_invalid' }),
      );
    } // createKeyward passes the option through.
    const options = {
      store: createMemoryStore(),
      masterKey: MASTER,
      logger: false as const,
      audit: false as const,
    };
    await expect(createKeyward({ ...options, reuseDetectionDepth: 0 })).rejects.toMatchObject({
      code: 'config_invalid',
    });
  });

  it.each(drivers)(
    '300 refreshes of one session on %s leave a bounded number of records',
    async (_name, makeStore) => {
      const depth = 16;
      const accessTtlSec = 900;
      const {
        store,
        tokens,
        clock: c,
      } = await setup(makeStore, { reuseDetectionDepth: depth }, { accessTokenTtlSec: accessTtlSec });
      let pair = await tokens.issue({ sub: 'user_1' });
      const counts: number[] = [];
      for (let i = 1; i <= 300; i++) {
        c.t += 60_000; // one refresh a minute: 300 refreshes span 5 hours of a 30-day family
        pair = await tokens.refresh(pair.refresh_token);
        if (i === 30 || i === 300) counts.push((await keysUnder(store, 'rt:')).length);
      }
      const groups = {
        family: (await keysUnder(store, 'rt:fam:')).length,
        subject: (await keysUnder(store, 'rt:sub:')).length,
        tokens: (await keysUnder(store, 'rt:tok:')).length,
        pairs: (await keysUnder(store, 'rt:pair:')).length,
        access: (await keysUnder(store, 'rt:fam-at:')).length,
      };
      // The bound: the family and its subject index, the current refresh token plus `depth`
      // spent-token markers (what reuse detection needs), sealed pairs only inside the 2 s reuse
      // interval (one here: the last refresh's; the others were a minute or more ago), and one entry per access token not
      // expired yet (900 s / 60 s = the newest and the 14 before it), which family revocation needs.
      expect(groups).toEqual({ family: 1, subject: 1, tokens: 1 + depth, pairs: 1, access: 15 });
      // Constant: the same number of records after 30 refreshes as after 300 (it used to grow by one per refresh).
      const bound = 1 + 1 + (1 + depth) + 1 + 15;
      expect(counts).toEqual([bound, bound]);
    },
  );

  it('sealed successor pairs of dropped markers go too, however fast the refreshes come', async () => {
    const depth = 4;
    const { store, tokens } = await setup(drivers[0]?.[1] as (c: Clock) => Store, {
      reuseDetectionDepth: depth,
    });
    await chain(tokens, 50); // the clock stands still: every pair would still be inside its 2 s TTL
    expect((await keysUnder(store, 'rt:pair:')).length).toBe(depth);
    expect((await keysUnder(store, 'rt:tok:')).length).toBe(1 + depth);
  });
});
