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
  /** Whether every write goes to the killed primary (Sentinel), not only the keyring's (Cluster). */
  singlePrimary: boolean;
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

/**
 * The process signs with `kid`: it applied the rotation. (Being in the JWKS proves nothing: the
 * promoted key was already published as the standby before the rotation.)
 */
const signsWith = (app: App, kid: string) => async () => {
  const token = await app.call<string>('sign');
  const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as {
    kid?: string;
  };
  return header.kid === kid;
};
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
  for (const app of apps) await eventually(signsWith(app, kid));
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

  // During the failover (all at once, right after the kill): writes fail with store_unavailable,
  // a 503 over HTTP (never a credential error), and no process rejects a valid token. One primary
  // (Sentinel): every write is down. A cluster keeps the slots of its other masters, so there only
  // the keyring's writes are (a revocation may sit on a live master).
  const [rotation, http, revocation, rejected] = await Promise.all([
    a.call('rotate').then(
      () => undefined,
      (e: AppError) => (e.code === 'store_unavailable' ? e.code : e.message),
    ),
    b.call('rotateHttp'),
    c.singlePrimary
      ? codeOf(cc.call('revokeToken', { jti: 'during', until: Date.now() + 60_000 }))
      : undefined,
    rejections(
      apps,
      valid.map((m) => m.token),
    ),
  ]);
  expect(rotation).toBe('store_unavailable');
  expect(http).toEqual({ status: 503, error: 'store_unavailable' });
  if (c.singlePrimary) expect(revocation).toBe('store_unavailable');
  expect(rejected).toEqual({});
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
  const retried: string[] = [];
  await eventually(
    async () => {
      try {
        rotated = (await a.call<{ kid: string }>('rotate')).kid;
        return true;
      } catch (err) {
        retried.push(err instanceof AppError ? err.code : String(err));
        return false;
      }
    },
    30_000,
    200,
  ).catch((err: Error) => {
    throw new Error(`${err.message}: rotation failed with ${[...new Set(retried)].join(', ')}`);
  });
  expect(retried.filter((code) => code !== 'store_unavailable')).toEqual([]);
  for (const app of apps) await eventually(signsWith(app, rotated!), 15_000);
  const fresh = await b.call<string>('sign');
  expect(await rejections(apps, [fresh])).toEqual({});
  const [second] = valid;
  for (const app of apps) await app.call('track', { tokens: [second!.token] });
  await cc.call('revokeToken', { jti: second!.jti, until: second!.exp * 1000 });
  for (const app of apps)
    await eventually(
      async () => (await codeOf(app.call('verify', { token: second!.token }))) === 'token_revoked',
      15_000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: revocation not applied; ${JSON.stringify(await app.call('status'))}`);
    });
  expect(
    await rejections(
      apps,
      valid.slice(1).map((m) => m.token),
    ),
  ).toEqual({});
  expect(tokens).toHaveLength(20);
  return apps;
}
