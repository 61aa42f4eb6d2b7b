import { afterAll, expect, it, vi } from 'vitest';
import {
  describeWithRedis,
  dropRedisPrefix,
  redisTestUrl,
  uniquePrefix,
} from '../../../testing/src/redis.js';
import { KeywardError } from '../errors.js';
import { MasterKey } from '../keys/master-key.js';
import type { KeywardCore } from '../keyward.js';
import { createRedisStore } from '../store/redis.js';
import type { Store } from '../store/types.js';
import { countingStore, makeCore } from './__fixtures__/core.js';
import { createApiKeyService } from './service.js';

const url = redisTestUrl() ?? 'redis://127.0.0.1:6379';
const prefix = `{${uniquePrefix('apikeys')}}:`;

describeWithRedis('API keys on Redis', () => {
  const cores: KeywardCore[] = [];
  const stores: Store[] = [];
  afterAll(async () => {
    await Promise.all(cores.map((c) => c.close()));
    await Promise.all(stores.map((s) => s.close()));
    await dropRedisPrefix(url, prefix);
  });

  it('a key revoked on A is rejected on B (its own connection), though B had it cached', async () => {
    const masterKey = MasterKey.generate().exportText();
    const storeA = createRedisStore({ url, prefix });
    const b = countingStore(createRedisStore({ url, prefix }));
    stores.push(storeA, b.store);
    const coreA = await makeCore(storeA, { masterKey });
    const coreB = await makeCore(b.store, { masterKey });
    cores.push(coreA, coreB);
    const apiA = await createApiKeyService(coreA);
    const apiB = await createApiKeyService(coreB);

    const { id, key } = await apiA.create({ owner: 'u', name: 'n', scopes: ['read'] });
    expect(await apiB.verify(key)).toMatchObject({ id, owner: 'u', scopes: ['read'] });
    b.reset();
    await apiB.verify(key);
    expect(b.calls.get ?? 0).toBe(0); // cached on B

    await apiA.revoke(id);
    // Waits for the pub/sub message (not for time): B must reject long before its 30 s cache TTL.
    await vi.waitFor(
      async () => {
        const err = await apiB.verify(key).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(KeywardError);
        expect((err as KeywardError).code).toBe('api_key_revoked');
      },
      { timeout: 2000, interval: 10 },
    );
    expect((await apiB.list('u'))[0]?.revokedAt).toBeTypeOf('number');
  });
});
