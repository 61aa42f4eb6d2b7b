/**
 * Child process of the IdP refresh test: several token stores (no shared in-process state) call
 * `get` concurrently once the parent says go; the fake IdP counts its calls in the store.
 *
 * Usage: node --conditions=@keyward/source --import tsx refresh-worker.ts <sqlite|redis> <path|url> <prefix>
 * (KW_MASTER_KEY in env). Prints `ready`, then one JSON line with the tokens it got.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { createKeywardCore } from '../../core.js';
import { createRedisStore } from '../../store/redis.js';
import { createSqliteStore } from '../../store/sqlite.js';
import { createIdpTokenStore } from '../store.js';

const [driver, target, prefix] = process.argv.slice(2) as [string, string, string];
const store =
  driver === 'redis' ? createRedisStore({ url: target, prefix }) : createSqliteStore({ path: target });
const core = await createKeywardCore({
  store,
  masterKey: process.env.KW_MASTER_KEY!,
  logger: false,
  audit: false,
  scheduler: false,
});
const instances = Array.from({ length: 3 }, () =>
  createIdpTokenStore(core, {
    pollIntervalMs: 10,
    refresh: async ({ refreshToken }) => {
      await store.increment(`test:refresh-calls:${refreshToken}`);
      await delay(150); // a slow IdP widens the window for duplicate refreshes
      return {
        accessToken: `at-new-${process.pid}`,
        refreshToken: 'rt-2',
        expiresAt: Date.now() + 3_600_000,
      };
    },
  }),
);
process.stdout.write('ready\n');
while ((await store.get('test:go')) === null) await delay(5);
const tokens = await Promise.all(
  instances.flatMap((idp) => Array.from({ length: 5 }, () => idp.get('user_1', 'github'))),
);
process.stdout.write(`${JSON.stringify(tokens)}\n`);
await core.close();
await store.close();
