/**
 * The failover scenario shared by the Sentinel and Cluster multi-process tests: three app
 * processes on one highly available Redis; rotate and logout propagate; the primary holding the
 * keyring is killed; verification keeps working everywhere, writes fail fast with
 * `store_unavailable`; once a replica took over, rotation and logout propagate again, no restart.
 */
import { expect } from 'vitest';
import { MasterKey } from '../../src/keys/master-key.js';
import { type App, AppError, codeOf, eventually, startApp } from './harness.js';

type Minted = Array<{ jti: string; token: string; exp: number }>;

const MASTER = MasterKey.generate().exportText();

export interface FailoverCase {
  /** Connection env of the app (KW_REDIS_CLUSTER / KW_REDIS_SENTINELS…) and KW_PREFIX. */
  env: Record<string, string>;
  /** SIGKILLs the primary that holds the keyring; resolves once it exited. */
  killPrimary(): Promise<void>;
  /** Resolves once a replica is the new primary (as the topology itself reports it). */
  tookOver(): Promise<void>;
}

/** Rejected-token counts summed over every app (`verifyMany` on each). */
async function rejections(apps: App[], tokens: string[]): Promise<Record<string, number>> {
  const sum: Record<string, number> = {};
  for (const app of apps) {
    const { rejected } = await app.call<{ ok: number; rejected: Record<string, number> }>('verifyMany', {
      tokens,
    });
    for (const [code, count] of Object.entries(rejected)) sum[code] = (sum[code] ?? 0) + count;
  }
  return sum;
}

const hasKid = (app: App, kid: string) => async () => (await app.call<string[]>('jwks')).includes(kid);
const rejects = (app: App, token: string) => async () =>
  (await app.call<Array<string | null>>('checkTracked')).includes('token_revoked') &&
  (await codeOf(app.call('verify', { token }))) === 'token_revoked';

export async function runFailover(c: FailoverCase): Promise<App[]> {
  // A long poll interval: changes must travel over pub/sub, before and after the failover.
  const env = { KW_MASTER: MASTER, KW_SYNC_MS: '60000', KW_STORE_TIMEOUT_MS: '1000', ...c.env };
  const apps: App[] = [await startApp(env)];
  apps.push(...(await Promise.all([startApp(env), startApp(env)])));
  const [a, b, cc] = apps as [App, App, App];

  // Before: rotate on one, seen by all; logout (token revocation) on one, seen by all.
  const { kid } = await a.call<{ kid: string }>('rotate');
  for (const app of apps) await eventually(hasKid(app, kid));
  const minted = await a.call<Minted>('signMany', { count: 20, prefix: 'before' });
  const tokens = minted.map((m) => m.token);
  const [loggedOut, ...valid] = minted;
  for (const app of apps) await app.call('track', { tokens: [loggedOut!.token] });
  await b.call('revokeToken', { jti: loggedOut!.jti, until: loggedOut!.exp * 1000 });
  for (const app of apps) await eventually(rejects(app, loggedOut!.token));
  expect(
    await rejections(
      apps,
      valid.map((m) => m.token),
    ),
  ).toEqual({});

  await c.killPrimary();

  // During the failover: writes fail with store_unavailable (never a credential error), and
  // no valid token is rejected by any process.
  const failed = await codeOf(a.call('rotate'));
  expect(failed).toBe('store_unavailable');
  expect(await codeOf(cc.call('revokeToken', { jti: 'during', until: Date.now() + 60_000 }))).toBe(
    'store_unavailable',
  );
  expect(
    await rejections(
      apps,
      valid.map((m) => m.token),
    ),
  ).toEqual({});

  await c.tookOver();

  // After: the same processes write again (a write may still fail while the client follows the
  // new primary, then only with store_unavailable), and the change reaches every process.
  let rotated: string | undefined;
  await eventually(
    async () => {
      try {
        rotated = (await a.call<{ kid: string }>('rotate')).kid;
        return true;
      } catch (err) {
        expect(err).toBeInstanceOf(AppError);
        expect((err as AppError).code).toBe('store_unavailable');
        return false;
      }
    },
    30_000,
    200,
  );
  for (const app of apps) await eventually(hasKid(app, rotated!), 15_000);
  const fresh = await b.call<string>('sign');
  for (const app of apps) expect(await app.call('verify', { token: fresh })).toBe(rotated);
  const [second] = valid;
  for (const app of apps) await app.call('track', { tokens: [second!.token] });
  await cc.call('revokeToken', { jti: second!.jti, until: second!.exp * 1000 });
  for (const app of apps)
    await eventually(
      async () => (await codeOf(app.call('verify', { token: second!.token }))) === 'token_revoked',
      15_000,
    );
  expect(
    await rejections(
      apps,
      valid.slice(1).map((m) => m.token),
    ),
  ).toEqual({});
  expect(tokens).toHaveLength(20);
  return apps;
}
