import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { MasterKey } from '../keys/master-key.js';
import { createRedisStore } from '../store/redis.js';
import { createTokenService, type TokenServiceOptions } from './service.js';
import type { TokenPair } from './types.js';

const url = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const prefix = `{${uniquePrefix('families')}}:`;
const MASTER = MasterKey.generate().exportText();
const open: KeywardCore[] = [];
let admin: Redis;
/** Shifts the cores' clock (not the store's) past the reuse interval without waiting. */
let offsetMs = 0;

async function instance(options: TokenServiceOptions = {}) {
  const core = await createKeywardCore({
    store: createRedisStore({ url, prefix }),
    masterKey: MASTER,
    logger: false,
    audit: false,
    syncIntervalMs: 60_000,
    now: () => Date.now() + offsetMs,
  });
  open.push(core);
  return { core, tokens: createTokenService(core, options) };
}

async function chain(tokens: ReturnType<typeof createTokenService>, n: number): Promise<TokenPair[]> {
  const pairs = [await tokens.issue({ sub: 'user_1' })];
  for (let i = 0; i < n; i++) pairs.push(await tokens.refresh((pairs.at(-1) as TokenPair).refresh_token));
  return pairs;
}

/** The session keys under our prefix, by SCAN (never KEYS). */
async function sessionKeys(): Promise<string[]> {
  const pattern = `${prefix.replace(/[\\*?[\]]/g, '\\$&')}k:{rt:*`;
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, page] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    found.push(...page);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

/** Key count and `MEMORY USAGE` bytes of the given keys. */
async function footprint(keys: string[]): Promise<{ keys: number; bytes: number }> {
  let bytes = 0;
  for (const key of keys) bytes += Number(await admin.call('MEMORY', 'USAGE', key));
  return { keys: keys.length, bytes };
}

describeWithRedis('refresh-token families on redis', () => {
  beforeAll(() => {
    admin = new Redis(url, { maxRetriesPerRequest: 1 });
  });
  afterEach(async () => {
    offsetMs = 0;
    await Promise.all(
      open.splice(0).map(async (core) => {
        await core.close();
        await core.store.close();
      }),
    );
    await dropRedisPrefix(url, prefix);
  });
  afterAll(async () => {
    admin.disconnect();
    await dropRedisPrefix(url, prefix);
  });

  it('a reuse after 40 refreshes revokes the first access token and every other, on both instances', async () => {
    const [a, b] = [await instance(), await instance()];
    const pairs = await chain(a.tokens, 40);
    for (const pair of pairs) expect(b.core.jwt.verify(pair.access_token).payload.sub).toBe('user_1');
    offsetMs = 3000;
    expect(await codeOf(a.tokens.refresh((pairs.at(-2) as TokenPair).refresh_token))).toBe(
      'refresh_token_reused',
    );
    await b.core.sync.refresh();
    for (const core of [a.core, b.core]) {
      for (const pair of pairs) {
        expect(() => core.jwt.verify(pair.access_token)).toThrow(
          expect.objectContaining({ code: 'token_revoked' }),
        );
      }
    }
  });

  it('logout after 40 refreshes revokes the first access token and every other', async () => {
    const { core, tokens } = await instance();
    const pairs = await chain(tokens, 40);
    expect(core.jwt.verify((pairs[0] as TokenPair).access_token).payload.sub).toBe('user_1');
    await tokens.logout({ refreshToken: (pairs.at(-1) as TokenPair).refresh_token });
    for (const pair of pairs) {
      expect(() => core.jwt.verify(pair.access_token)).toThrow(
        expect.objectContaining({ code: 'token_revoked' }),
      );
    }
  });

  it('300 refreshes of one session: the state reuse detection needs stays constant, nothing outlives the family', async () => {
    const depth = 16;
    // The longest reuse interval, so every sealed pair is still inside its TTL when counted:
    // the count below does not depend on how fast the refreshes ran.
    const { tokens } = await instance({ reuseDetectionDepth: depth, refreshReuseIntervalMs: 60_000 });
    let pair = await tokens.issue({ sub: 'user_1' });
    const measured: Array<{ keys: number; bytes: number; access: number }> = [];
    for (let i = 1; i <= 300; i++) {
      pair = await tokens.refresh(pair.refresh_token);
      if (i === 30 || i === 300) {
        const keys = await sessionKeys();
        const access = keys.filter((k) => k.includes('rt:fam-at:'));
        measured.push({
          ...(await footprint(keys.filter((k) => !access.includes(k)))),
          access: access.length,
        });
      }
    }
    const [at30, at300] = measured as [(typeof measured)[0], (typeof measured)[0]];
    // Reuse detection needs the family, its subject index, the current refresh token, `depth`
    // spent-token markers and their `depth` sealed successor pairs: 3 + 2 × depth keys, whether
    // the session was refreshed 30 or 300 times (before, every refresh left a 30-day record:
    // 300 refreshes added 377 KiB). Bytes may differ by a few allocator bytes, not by records.
    expect(at30.keys).toBe(3 + 2 * depth);
    expect(at300.keys).toBe(3 + 2 * depth);
    expect(at300.bytes).toBeLessThanOrEqual(Math.ceil(at30.bytes * 1.05));
    // One entry per issued access token that has not expired (all of them here: 15 minutes): the
    // price of revoking every one of them with the family. Each goes with its token (TTL below).
    expect([at30.access, at300.access]).toEqual([31, 301]);

    const keys = await sessionKeys();
    const ttls = new Map<string, number>();
    for (const key of keys) ttls.set(key, await admin.pttl(key));
    const family = [...ttls].find(([k]) => k.includes('rt:fam:'))?.[1] ?? 0;
    expect(family).toBeGreaterThan(0);
    for (const [key, ttl] of ttls) {
      expect(ttl, key).toBeGreaterThan(0); // nothing persistent
      // No record outlives the family; the slack covers the client → server latency of each write.
      expect(ttl, key).toBeLessThanOrEqual(family + 5000);
      if (key.includes('rt:fam-at:')) expect(ttl, key).toBeLessThanOrEqual(900_000);
    }
  });
});
