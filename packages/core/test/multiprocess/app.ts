/**
 * A small keyward app process for the multi-process tests and the sync benchmark. It creates a
 * core on a real Redis and answers JSON-line requests on stdin (`{id, op, ...}` → `{id, ok, result}`
 * or `{id, ok: false, code}`). With `KW_REPORT_APPLIED=1` it also prints every change it applies as
 * `{event: 'applied', change, t}`, `t` being `performance.timeOrigin + performance.now()`.
 *
 * Environment: REDIS_URL, KW_PREFIX, KW_MASTER, KW_MASTER_PREVIOUS (comma-separated previous master
 * keys), KW_SQLITE_PATH (a SQLite file to use as the store instead of Redis), KW_MAX_RETIRING (the policy's
 * maxRetiringKeys, for benchmarks that rotate back to back), KW_SYNC_MS (poll interval, default 1000),
 * KW_CLOCK_OFFSET_MS (added to the core's clock), KW_NO_RESUBSCRIBE=1 (a dropped pub/sub
 * connection stays unsubscribed), KW_CONNECTION_NAME (Redis CLIENT SETNAME), KW_SQLITE_PATH (use an
 * SQLite file instead of Redis), KW_SCHEDULER_MS (run the rotation scheduler at this interval;
 * default off). The clock offset moves the store's clock (`time()`) too: it simulates time passing
 * for the whole deployment, not one instance's wrong clock.
 *
 * A start-up failure is printed as one line on stderr (`keyward: <message> [<code>]`, no stack)
 * and the process exits with 1, as an app should. KW_REUSE_INTERVAL_MS: the sessions' refresh reuse
 * interval (ops issueSession / refreshSession). KW_SIGNING_ALG: algorithm of generated signing keys.
 * KW_HEARTBEAT_MS: the instance heartbeat interval (ops instances / beat / instanceId; default off).
 * KW_DATABASE_URL: a PostgreSQL URL to use as the store instead of Redis, in schema KW_PG_SCHEMA
 * (default `public`; KW_NO_RESUBSCRIBE=1 keeps a dropped LISTEN connection down; name the
 * connections with `?application_name=` in the URL).
 * KW_REDIS_CLUSTER (seed nodes `host:port,…`) or KW_REDIS_SENTINELS (`host:port,…`, with
 * KW_REDIS_SENTINEL_NAME) instead of REDIS_URL; KW_STORE_TIMEOUT_MS: the store's command timeout.
 */
import { createInterface } from 'node:readline';
import { createKeywardCore, type KeywardCore } from '../../src/core.js';
import { isKeywardError } from '../../src/errors.js';
import { createHealth } from '../../src/health/health.js';
import { problemResponse } from '../../src/http/routes.js';
import { checkKeyringInvariants } from '../../src/keys/lifecycle.js';
import { parsePreviousMasterKeys } from '../../src/keys/master-key.js';
import { createRateLimiter, type RateLimiter, type RateLimitOptions } from '../../src/ratelimit/limiter.js';
import { createPostgresStore } from '../../src/store/postgres.js';
import { createRedisStore } from '../../src/store/redis.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { createTokenService } from '../../src/tokens/service.js';

const env = process.env;
let offset = Number(env.KW_CLOCK_OFFSET_MS ?? 0);
const sharedNow = () => performance.timeOrigin + performance.now();
const write = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);

/** KW_REDIS_CLUSTER / KW_REDIS_SENTINELS (`host:port,…`, with KW_REDIS_SENTINEL_NAME), else REDIS_URL. */
function redisConnection() {
  const hosts = (list: string) =>
    list
      .split(',')
      .map((h) => ({ host: h.slice(0, h.lastIndexOf(':')), port: Number(h.slice(h.lastIndexOf(':') + 1)) }));
  if (env.KW_REDIS_CLUSTER) return { cluster: { nodes: hosts(env.KW_REDIS_CLUSTER) } };
  if (env.KW_REDIS_SENTINELS)
    return {
      sentinels: { nodes: hosts(env.KW_REDIS_SENTINELS), name: env.KW_REDIS_SENTINEL_NAME ?? 'keyward' },
    };
  return { url: env.REDIS_URL ?? 'redis://127.0.0.1:6379' };
}
const sqlitePath = env.KW_SQLITE_PATH;
const databaseUrl = env.KW_DATABASE_URL;
const store: Store = sqlitePath
  ? createSqliteStore({ path: sqlitePath, pollIntervalMs: 50 })
  : databaseUrl
    ? createPostgresStore({
        connectionString: databaseUrl,
        ...(env.KW_PG_SCHEMA ? { schema: env.KW_PG_SCHEMA } : {}),
        ...(env.KW_NO_RESUBSCRIBE === '1' ? { resubscribe: false } : {}),
        connectTimeoutMs: 1000,
      })
    : createRedisStore({
        ...redisConnection(),
        prefix: env.KW_PREFIX ?? 'keyward:',
        ...(env.KW_STORE_TIMEOUT_MS ? { commandTimeoutMs: Number(env.KW_STORE_TIMEOUT_MS) } : {}),
        redisOptions: {
          ...(env.KW_NO_RESUBSCRIBE === '1' ? { autoResubscribe: false } : {}),
          ...(env.KW_CONNECTION_NAME ? { connectionName: env.KW_CONNECTION_NAME } : {}),
        },
      });
const storeTime = store.time?.bind(store);
let core: KeywardCore;
try {
  core = await createKeywardCore({
    store: { ...store, ...(storeTime ? { time: async () => (await storeTime()) + offset } : {}) },
    masterKey: env.KW_MASTER,
    previousMasterKeys: parsePreviousMasterKeys(env.KW_MASTER_PREVIOUS),
    logger: false,
    audit: false,
    scheduler: env.KW_SCHEDULER_MS ? { intervalMs: Number(env.KW_SCHEDULER_MS) } : false,
    ...(env.KW_MAX_RETIRING ? { rotation: { maxRetiringKeys: Number(env.KW_MAX_RETIRING) } } : {}),
    syncIntervalMs: Number(env.KW_SYNC_MS ?? 1000),
    instanceHeartbeatMs: env.KW_HEARTBEAT_MS ? Number(env.KW_HEARTBEAT_MS) : false,
    ...(env.KW_SIGNING_ALG ? { signingAlg: env.KW_SIGNING_ALG as 'HS256' } : {}),
    now: () => Date.now() + offset,
  });
} catch (err) {
  process.stderr.write(
    isKeywardError(err)
      ? `keyward: ${err.message.replace(/\s*\n\s*/g, ' ')} [${err.code}]\n`
      : `keyward: start-up failed (${err instanceof Error ? err.name : typeof err}) [internal_error]\n`,
  );
  await store.close().catch(() => undefined);
  process.exit(1);
}
const health = createHealth(core);
// Sessions (refresh-token families) on the same core; KW_REUSE_INTERVAL_MS sets the reuse grace.
const tokens = createTokenService(
  core,
  env.KW_REUSE_INTERVAL_MS ? { refreshReuseIntervalMs: Number(env.KW_REUSE_INTERVAL_MS) } : {},
);
if (env.KW_REPORT_APPLIED === '1')
  core.sync.onApplied((change) => write({ event: 'applied', change, t: sharedNow() }));

type Request = { id: number; op: string; [arg: string]: unknown };
let rotating = false;
const tracked: string[] = [];
let watching = false;
const watchState = { sweeps: 0, acceptedAgain: 0 };

let limiter: RateLimiter | undefined;
const ops: Record<string, (req: Request) => unknown> = {
  sign: (req) => core.jwt.sign({ sub: String(req.sub ?? 'user'), ...(req.jti ? { jti: req.jti } : {}) }),
  verify: (req) => core.jwt.verify(String(req.token)).kid,
  // Key import (bring your own key): `options` as kw.keys.import takes them (JSON: key as PEM / JWK / secret text).
  importKey: (req) => core.keys.import(req.options as Parameters<KeywardCore['keys']['import']>[0]),
  issueSession: (req) => tokens.issue({ sub: String(req.sub ?? 'user') }),
  refreshSession: (req) => tokens.refresh(String(req.refresh)),
  // One login attempt through the brute-force limiter on this store (limits: `req.limits`, the
  // `rateLimit` option); a failed attempt stays counted unless `succeeded` is set.
  rateLimitAttempt: async (req) => {
    limiter ??= createRateLimiter({ store, limits: req.limits as RateLimitOptions, now: () => core.now() });
    const decision = await limiter.attempt('login', {
      username: String(req.username),
      address: String(req.address ?? '192.0.2.1'),
    });
    if (!decision.allowed)
      return { allowed: false, limit: decision.limit, retryAfterSec: decision.retryAfterSec };
    if (req.succeeded) await decision.succeeded();
    return { allowed: true };
  },
  // Verifies each token; counts instead of failing, so a caller can sum rejections across calls.
  verifyMany: (req) => {
    const rejected: Record<string, number> = {};
    let ok = 0;
    for (const token of req.tokens as string[]) {
      try {
        core.jwt.verify(token);
        ok++;
      } catch (err) {
        const code = isKeywardError(err) ? err.code : 'internal_error';
        rejected[code] = (rejected[code] ?? 0) + 1;
      }
    }
    return { ok, rejected };
  },
  rekey: async () => {
    const { doc, ...result } = await core.keys.rekey();
    return { ...result, generation: doc.generation };
  },
  rotate: async (req) => {
    const startedAt = sharedNow();
    const result = await core.keys.rotate({
      use: 'sig',
      ...(req.idempotencyKey ? { idempotencyKey: String(req.idempotencyKey) } : {}),
    });
    return { ...result, startedAt, committedAt: sharedNow(), generation: core.sync.status().generation };
  },
  // Rotates and answers what the HTTP contract would send: { status, error } (200 when it worked).
  rotateHttp: async () => {
    try {
      await core.keys.rotate({ use: 'sig' });
      return { status: 200 };
    } catch (err) {
      const { status, body } = problemResponse(err);
      return { status, error: (body as { error: string }).error };
    }
  },
  revoke: async (req) => ({ ...(await core.keys.revoke(String(req.kid), 'test')), committedAt: sharedNow() }),
  revokeToken: async (req) => {
    const startedAt = sharedNow();
    await core.revocations.revokeToken(String(req.jti), Number(req.until));
    return { startedAt, committedAt: sharedNow() };
  },
  revokeSubject: async (req) => {
    await core.revocations.revokeSubject(String(req.sub));
    return true;
  },
  tick: async (req) => {
    const at = Number(req.at ?? 0);
    if (at > Date.now()) await new Promise((r) => setTimeout(r, at - Date.now()));
    const result = await core.scheduler.tick();
    return result.status === 'failed'
      ? { status: result.status, code: result.error.code }
      : { status: result.status };
  },
  // Rotates back to back until killed (the kill -9 test); each commit is reported.
  rotateForever: () => {
    rotating = true;
    void (async () => {
      while (rotating) {
        try {
          const { kid } = await core.keys.rotate({ use: 'sig' });
          write({ event: 'rotated', kid });
        } catch (err) {
          if (!isKeywardError(err, 'rotation_limit')) throw err;
          // The keyring is bounded: let the retiring keys expire (this process's clock only).
          offset += core.policy.retainFor + 1;
        }
      }
    })();
    return true;
  },
  health: () => health({ ready: true }),
  // Signs `count` tokens for one subject (the revocation tests): [{ jti, token, exp }].
  signMany: (req) =>
    Array.from({ length: Number(req.count) }, (_, i) => {
      const jti = `${String(req.prefix ?? 't')}${i}`;
      const token = core.jwt.sign({ sub: String(req.sub ?? 'user'), jti });
      const exp = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number })
        .exp;
      return { jti, token, exp };
    }),
  // Remembers tokens, so checkTracked can verify many without sending them again.
  track: (req) => {
    tracked.push(...(req.tokens as string[]));
    return tracked.length;
  },
  // Verifies the first `count` tracked tokens: null when accepted, else the error code.
  checkTracked: (req) =>
    tracked.slice(0, Number(req.count ?? tracked.length)).map((token) => {
      try {
        core.jwt.verify(token);
        return null;
      } catch (err) {
        return isKeywardError(err) ? err.code : 'internal_error';
      }
    }),
  // Verifies every tracked token over and over in the background (between the awaits of sync),
  // counting tokens accepted after they had been rejected once. `watchReport` stops and reports.
  watch: () => {
    watching = true;
    const rejected = new Set<number>();
    const sweep = () => {
      if (!watching) return;
      watchState.sweeps++;
      tracked.forEach((token, k) => {
        try {
          core.jwt.verify(token);
          if (rejected.has(k)) watchState.acceptedAgain++;
        } catch (err) {
          if (isKeywardError(err) && err.code === 'token_revoked') rejected.add(k);
        }
      });
      setImmediate(sweep);
    };
    sweep();
    return true;
  },
  watchReport: () => {
    watching = false;
    return watchState;
  },
  status: () => core.sync.status(),
  // Instance heartbeats (KW_HEARTBEAT_MS): this instance's id, the listing, a beat now.
  instanceId: () => core.instances.id ?? null,
  instances: () => core.instances.list(),
  beat: () => core.instances.beat(),
  refresh: () => core.sync.refresh(),
  keys: () => core.keys.list(),
  jwks: () => core.keys.jwks().keys.map((k) => k.kid),
  invariants: () => checkKeyringInvariants(core.keys.list()),
  setOffset: (req) => {
    offset = Number(req.ms);
    return offset;
  },
  close: async () => {
    await core.close();
    await store.close();
    setImmediate(() => process.exit(0));
    return true;
  },
};

const rl = createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let req: Request;
  try {
    req = JSON.parse(line);
  } catch {
    return;
  }
  try {
    const op = ops[req.op];
    if (!op) throw new Error(`unknown op ${req.op}`);
    write({ id: req.id, ok: true, result: await op(req) });
  } catch (err) {
    write({
      id: req.id,
      ok: false,
      code: isKeywardError(err) ? err.code : 'internal_error',
      message: String(err),
    });
  }
});
rl.on('close', () => void core.close().finally(() => process.exit(0)));
write({ event: 'ready', pid: process.pid });
