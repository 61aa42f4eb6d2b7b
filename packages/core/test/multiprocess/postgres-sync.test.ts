/**
 * The multi-process sync suite (sync-suite.ts) on PostgreSQL (a fresh schema per check; the feed
 * cut is pg_terminate_backend of the LISTEN connection), and the server crashed and restarted
 * under running processes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { describeWithPostgres, postgresTestUrl } from '../../../testing/src/postgres.js';
import { freePort } from '../../../testing/src/tools.js';
import { MasterKey } from '../../src/keys/master-key.js';
import { type App, codeOf, eventually, startApp } from './harness.js';
import { createPgServer, hasPostgresServer, type PgServer } from './pg-server.js';
import { postgresDriver } from './sync-drivers.js';
import { syncSuite } from './sync-suite.js';

const url = postgresTestUrl() ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MASTER = MasterKey.generate().exportText();
const POLL_MS = 300;
const apps: App[] = [];

async function start(count: number, env: Record<string, string>): Promise<App[]> {
  const make = () => startApp({ KW_MASTER: MASTER, KW_SYNC_MS: String(POLL_MS), ...env });
  // One first, so the keyring is bootstrapped once; the rest together.
  const started = [await make()];
  started.push(...(await Promise.all(Array.from({ length: count - 1 }, make))));
  apps.push(...started);
  return started;
}

const verifies = (app: App, token: string) => app.call<string>('verify', { token });

describeWithPostgres('several processes on one PostgreSQL', () => {
  syncSuite(postgresDriver(url));
});

describe.runIf(postgresTestUrl() !== undefined && hasPostgresServer())(
  'PostgreSQL crashed and restarted under running processes',
  () => {
    let server: PgServer | undefined;
    afterAll(async () => {
      await Promise.all(apps.splice(0).map((a) => a.close()));
      server?.destroy();
    });

    it('rejects no valid token while it is down, fails writes with store_unavailable, and propagates rotation and logout after the restart', async () => {
      const port = Number(process.env.KEYWARD_TEST_PG_PORT) || (await freePort());
      server = createPgServer(port);
      server.start();
      const instances = await start(3, { KW_DATABASE_URL: server.url });
      const [first, second, third] = instances as [App, App, App];
      const tokens = await Promise.all(instances.map((app) => app.call<string>('sign')));
      const check = async () => {
        for (const app of instances) for (const token of tokens) await verifies(app, token);
      };
      await check();
      const generation = (await first.call<{ generation: number }>('status')).generation;

      server.crash();
      for (const app of instances)
        await eventually(async () => (await app.call<{ stale: boolean }>('status')).stale);
      await check(); // fail static: every token still verifies everywhere
      tokens.push(...(await Promise.all(instances.map((app) => app.call<string>('sign')))));
      await check();
      expect(await codeOf(first.call('rotate'))).toBe('store_unavailable');
      expect(await codeOf(second.call('revokeToken', { jti: 'x', until: Date.now() + 60_000 }))).toBe(
        'store_unavailable',
      );
      expect((await first.call<{ generation: number }>('status')).generation).toBe(generation);

      server.start();
      for (const app of instances)
        await eventually(async () => !(await app.call<{ stale: boolean }>('status')).stale, 15_000);
      await check();
      const { kid } = await second.call<{ kid: string }>('rotate');
      const fresh = await second.call<string>('sign');
      for (const app of instances) await eventually(async () => (await verifies(app, fresh)) === kid);
      await check(); // tokens of the previous key keep verifying after the rotation
      // Logout (revoking one token) on one instance reaches the others.
      const session = await third.call<string>('sign', { jti: 'logout-1' });
      for (const app of instances) expect(await codeOf(verifies(app, session))).toBeUndefined();
      await third.call('revokeToken', { jti: 'logout-1', until: Date.now() + 3_600_000 });
      for (const app of instances)
        await eventually(async () => (await codeOf(verifies(app, session))) === 'token_revoked');
    }, 120_000);
  },
);
