import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { describeWithPostgres, postgresTestUrl } from '../../../testing/src/postgres.js';
import { freePort } from '../../../testing/src/tools.js';
import { MasterKey } from '../../src/keys/master-key.js';
import { type App, codeOf, eventually, startApp } from './harness.js';
import { createPgServer, hasPostgresServer, type PgServer } from './pg-server.js';

const url = postgresTestUrl() ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MASTER = MasterKey.generate().exportText();
const POLL_MS = 300;
const apps: App[] = [];
const schemas: string[] = [];

function newSchema(): string {
  const schema = `kwsync_${randomBytes(4).toString('hex')}`;
  schemas.push(schema);
  return schema;
}

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
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });

  it('rotate and revoke on one are seen by all three', async () => {
    const [a, b, c] = await start(3, { KW_DATABASE_URL: url, KW_PG_SCHEMA: newSchema() });
    const old = await a!.call<string>('sign');
    const { kid, previousKid } = await a!.call<{ kid: string; previousKid: string }>('rotate');
    expect(kid).not.toBe(previousKid);
    const fresh = await a!.call<string>('sign');
    for (const app of [a!, b!, c!]) {
      await eventually(async () => (await verifies(app, fresh)) === kid);
      expect(await verifies(app, old)).toBe(previousKid);
    }
    await b!.call('revoke', { kid: previousKid });
    for (const app of [a!, b!, c!])
      await eventually(async () => (await codeOf(verifies(app, old))) === 'key_revoked');
    expect(await verifies(a!, await c!.call<string>('sign'))).toBe(kid);
  }, 60_000);

  it('an instance whose LISTEN connection was dropped converges by polling', async () => {
    const schema = newSchema();
    const name = `kwdeaf_${randomBytes(3).toString('hex')}`;
    const [a] = await start(1, { KW_DATABASE_URL: url, KW_PG_SCHEMA: schema });
    // The deaf instance does not listen again after the kill, so only its poller can repair it.
    const [deaf] = await start(1, {
      KW_DATABASE_URL: `${url}?application_name=${name}`,
      KW_PG_SCHEMA: schema,
      KW_NO_RESUBSCRIBE: '1',
      KW_REPORT_APPLIED: '1',
    });
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const killed = await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE application_name = $1 AND query LIKE 'LISTEN %'`,
      [name],
    );
    await admin.end();
    expect(killed.rowCount).toBe(1);
    const { generation, kid } = await a!.call<{ generation: number; kid: string }>('rotate');
    await deaf!.waitEvent(
      (e) => e.event === 'applied' && (e.change as { generation?: number }).generation === generation,
      10_000,
    );
    expect(await verifies(deaf!, await a!.call<string>('sign'))).toBe(kid);
  }, 60_000);
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
