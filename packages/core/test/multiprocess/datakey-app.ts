/**
 * A keyward app process (createKeyward, with secrets and the background data-key rewrap) for the
 * multi-process data-key revocation tests, on a shared sqlite file (KW_SQLITE) or a real Redis
 * (REDIS_URL + KW_PREFIX). Answers JSON-line requests like app.ts.
 *
 * Environment: KW_MASTER, KW_SQLITE | REDIS_URL + KW_PREFIX, KW_SYNC_MS (default 200),
 * KW_SETTLE_MS, KW_LOCK_TTL_MS, KW_BATCH, KW_CHECK_MS (rewrap options), KW_INSTANCE (lock holder
 * name), KW_BACKGROUND=0 (this process never runs the rewrap), KW_GATE=1: the rewrap job of this process stops before its second page of secrets (prints
 * `{event: 'rewrap-paused'}`) until the `resume` op, so a test can look at the middle of a rewrap.
 */
import { createInterface } from 'node:readline';
import { isKeywardError } from '../../src/errors.js';
import { createKeyward } from '../../src/keyward.js';
import { createRedisStore } from '../../src/store/redis.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';

const env = process.env;
const write = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);
const backing: Store = env.KW_SQLITE
  ? createSqliteStore({ path: env.KW_SQLITE, pollIntervalMs: 20 })
  : createRedisStore({
      url: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      prefix: env.KW_PREFIX ?? 'keyward:',
    });

let gate: { open: () => void; promise: Promise<void> } | undefined;
if (env.KW_GATE === '1') {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  gate = { open, promise };
}
let paused = false;
// Holds the rewrap's second page of secrets while the gate is closed (the job lists with a cursor).
const store: Store = new Proxy(backing, {
  get(target, prop, receiver) {
    if (prop === 'scan')
      return async (prefix: string, options?: { cursor?: string; limit?: number }) => {
        if (gate && prefix === 'secret:' && options?.cursor && options.limit !== 1000) {
          if (!paused) {
            paused = true;
            write({ event: 'rewrap-paused' });
          }
          await gate.promise;
        }
        return target.scan(prefix, options);
      };
    const value = Reflect.get(target, prop, receiver);
    return typeof value === 'function' ? value.bind(target) : value;
  },
});

const num = (name: string) => (env[name] === undefined ? undefined : Number(env[name]));
const kw = await createKeyward({
  store,
  masterKey: env.KW_MASTER,
  logger: false,
  audit: false,
  scheduler: false,
  syncIntervalMs: Number(env.KW_SYNC_MS ?? 200),
  dataKeyRewrap: {
    background: env.KW_BACKGROUND !== '0',
    ...(num('KW_SETTLE_MS') !== undefined ? { settleMs: num('KW_SETTLE_MS')! } : {}),
    ...(num('KW_LOCK_TTL_MS') !== undefined ? { lockTtlMs: num('KW_LOCK_TTL_MS')! } : {}),
    ...(num('KW_BATCH') !== undefined ? { batchSize: num('KW_BATCH')! } : {}),
    ...(num('KW_CHECK_MS') !== undefined ? { checkIntervalMs: num('KW_CHECK_MS')! } : {}),
    ...(env.KW_INSTANCE ? { instanceId: env.KW_INSTANCE } : {}),
  },
});

type Request = { id: number; op: string; [arg: string]: unknown };
const ops: Record<string, (req: Request) => unknown> = {
  put: async (req) => {
    for (let i = 0; i < Number(req.count); i++) await kw.secrets.put(`o${i % 5}`, `s${i}`, `value-${i}`);
    return true;
  },
  /** Reads secrets 0..count-1; resolves how many read back their value (throws on the first error). */
  readAll: async (req) => {
    let ok = 0;
    for (let i = 0; i < Number(req.count); i++)
      if ((await kw.secrets.get(`o${i % 5}`, `s${i}`)) === `value-${i}`) ok += 1;
    return ok;
  },
  activeDataKid: () => kw.keys.snapshot().dataKey().kid,
  revoke: (req) => kw.keys.revoke(String(req.kid), 'test: leaked'),
  record: (req) => kw.keys.list().find((k) => k.kid === req.kid) ?? null,
  status: () => kw.dataRewrap.status(),
  health: () => kw.health(),
  refresh: () => kw.sync.refresh(),
  resume: () => {
    gate?.open();
    return true;
  },
  whenIdle: () => kw.dataRewrap.whenIdle(),
  close: async () => {
    gate?.open();
    await kw.close();
    await backing.close();
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
    write({ id: req.id, ok: true, result: (await op(req)) ?? null });
  } catch (err) {
    write({
      id: req.id,
      ok: false,
      code: isKeywardError(err) ? err.code : 'internal_error',
      message: String(err),
    });
  }
});
rl.on('close', () => void kw.close().finally(() => process.exit(0)));
write({ event: 'ready', pid: process.pid });
