import { afterAll, afterEach, expect, it, vi } from 'vitest';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import { createKeywardCore, type KeywardCore } from '../core.js';
import { MasterKey } from '../keys/master-key.js';
import { createRedisStore } from '../store/redis.js';
import { createTokenService } from './service.js';

const url = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const prefix = `{${uniquePrefix('tokens')}}:`;
const MASTER = MasterKey.generate().exportText();
const open: KeywardCore[] = [];

async function instance() {
  const core = await createKeywardCore({
    store: createRedisStore({ url, prefix }),
    masterKey: MASTER,
    logger: false,
    audit: false,
    syncIntervalMs: 60_000, // so only pub/sub can deliver within the test
  });
  open.push(core);
  return { core, tokens: createTokenService(core) };
}

describeWithRedis('token service on redis', () => {
  afterEach(async () => {
    await Promise.all(
      open.splice(0).map(async (core) => {
        await core.close();
        await core.store.close();
      }),
    );
  });
  afterAll(async () => {
    await dropRedisPrefix(url, prefix);
  });

  it('concurrent refreshes of one token on two instances mint one successor', async () => {
    const [a, b] = [await instance(), await instance()];
    const first = await a.tokens.issue({ sub: 'user_1' });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).tokens.refresh(first.refresh_token)),
    );
    for (const r of results) expect(r).toEqual(results[0]);
    await expect(b.tokens.refresh(results[0]?.refresh_token ?? '')).resolves.toBeDefined();
  });

  it('logout reaches the other instance through pub/sub, without a poll', async () => {
    const [a, b] = [await instance(), await instance()];
    const pair = await a.tokens.issue({ sub: 'user_1' });
    const claims = b.core.jwt.verify(pair.access_token).payload;
    await a.tokens.logout({ access: { jti: claims.jti, exp: claims.exp, sub: 'user_1' } });
    await vi.waitFor(() => expect(() => b.core.jwt.verify(pair.access_token)).toThrow(/revoked/), {
      timeout: 2000,
      interval: 5,
    });
  });

  it('one-time token: one winner among 20 callers on two instances', async () => {
    const [a, b] = [await instance(), await instance()];
    const token = await a.tokens.oneTime({ sub: 'u', purpose: 'email-verification' });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).tokens.consumeOneTime(token, 'email-verification'),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });
});
