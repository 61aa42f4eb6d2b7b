/**
 * A small keyward app process for the multi-process tests and the sync benchmark. It creates a
 * core on a real Redis and answers JSON-line requests on stdin (`{id, op, ...}` → `{id, ok, result}`
 * or `{id, ok: false, code}`). With `KW_REPORT_APPLIED=1` it also prints every change it applies as
 * `{event: 'applied', change, t}`, `t` being `performance.timeOrigin + performance.now()`.
 *
 * Environment: REDIS_URL, KW_PREFIX, KW_MASTER, KW_SYNC_MS (poll interval, default 1000),
 * KW_SQLITE_PATH (use the SQLite store on that file instead of Redis), KW_MAX_RETIRING (the policy's
 * maxRetiringKeys, for benchmarks that rotate back to back),
 * KW_CLOCK_OFFSET_MS (added to the core's clock), KW_NO_RESUBSCRIBE=1 (a dropped pub/sub
 * connection stays unsubscribed), KW_CONNECTION_NAME (Redis CLIENT SETNAME).
 */
import { createInterface } from 'node:readline';
import { createKeywardCore } from '../../src/core.js';
import { isKeywardError } from '../../src/errors.js';
import { checkKeyringInvariants } from '../../src/keys/lifecycle.js';
import { createRedisStore } from '../../src/store/redis.js';
import { createSqliteStore } from '../../src/store/sqlite.js';

const env = process.env;
let offset = Number(env.KW_CLOCK_OFFSET_MS ?? 0);
const sharedNow = () => performance.timeOrigin + performance.now();
const write = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);

const store = env.KW_SQLITE_PATH
  ? createSqliteStore({ path: env.KW_SQLITE_PATH })
  : createRedisStore({
      url: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      prefix: env.KW_PREFIX ?? '{keyward}:',
      redisOptions: {
        ...(env.KW_NO_RESUBSCRIBE === '1' ? { autoResubscribe: false } : {}),
        ...(env.KW_CONNECTION_NAME ? { connectionName: env.KW_CONNECTION_NAME } : {}),
      },
    });
const core = await createKeywardCore({
  store,
  masterKey: env.KW_MASTER,
  logger: false,
  audit: false,
  scheduler: false,
  ...(env.KW_MAX_RETIRING ? { rotation: { maxRetiringKeys: Number(env.KW_MAX_RETIRING) } } : {}),
  syncIntervalMs: Number(env.KW_SYNC_MS ?? 1000),
  now: () => Date.now() + offset,
});
if (env.KW_REPORT_APPLIED === '1')
  core.sync.onApplied((change) => write({ event: 'applied', change, t: sharedNow() }));

type Request = { id: number; op: string; [arg: string]: unknown };
let rotating = false;

const ops: Record<string, (req: Request) => unknown> = {
  sign: (req) => core.jwt.sign({ sub: String(req.sub ?? 'user'), ...(req.jti ? { jti: req.jti } : {}) }),
  verify: (req) => core.jwt.verify(String(req.token)).kid,
  rotate: async (req) => {
    const startedAt = sharedNow();
    const result = await core.keys.rotate({
      use: 'sig',
      ...(req.idempotencyKey ? { idempotencyKey: String(req.idempotencyKey) } : {}),
    });
    return { ...result, startedAt, committedAt: sharedNow(), generation: core.sync.status().generation };
  },
  revoke: async (req) => ({ ...(await core.keys.revoke(String(req.kid), 'test')), committedAt: sharedNow() }),
  revokeToken: async (req) => {
    const startedAt = sharedNow();
    await core.revocations.revokeToken(String(req.jti), Number(req.until));
    return { startedAt, committedAt: sharedNow() };
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
  status: () => core.sync.status(),
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
