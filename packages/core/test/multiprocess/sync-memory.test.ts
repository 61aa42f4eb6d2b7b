/**
 * The multi-process sync suite (sync-suite.ts) on the memory driver. A memory store cannot be
 * shared between processes, so its "instances" are several cores in this process on one memory
 * store, each answering the suite's requests as app.ts does (same op names, same results). The
 * memory store delivers announcements itself, so changes reach the other cores without a
 * `refresh()`. What needs a process (SIGKILL mid-rotation) does not run here; the memory store has
 * no feed connection to cut.
 */
import { describe } from 'vitest';
import { createKeywardCore } from '../../src/core.js';
import { isKeywardError } from '../../src/errors.js';
import { checkKeyringInvariants } from '../../src/keys/lifecycle.js';
import { createMemoryStore } from '../../src/store/memory.js';
import type { Store } from '../../src/store/types.js';
import { AppError, type AppEvent } from './harness.js';
import { type Instance, syncSuite } from './sync-suite.js';

const stores = new Map<string, Store>();

async function inProcess(env: Record<string, string>): Promise<Instance> {
  const store = stores.get(env.KW_MEMORY_STORE!)!;
  let offset = 0;
  const storeTime = store.time?.bind(store);
  const core = await createKeywardCore({
    // The offset moves the store's clock too, as app.ts does: time passing for the deployment.
    store: { ...store, ...(storeTime ? { time: async () => (await storeTime()) + offset } : {}) },
    masterKey: env.KW_MASTER,
    logger: false,
    audit: false,
    scheduler: false,
    syncIntervalMs: Number(env.KW_SYNC_MS ?? 1000),
    instanceHeartbeatMs: false,
    now: () => Date.now() + offset,
  });
  const events: AppEvent[] = [];
  core.sync.onApplied((change) => events.push({ event: 'applied', change }));
  const ops: Record<string, (args: Record<string, unknown>) => unknown> = {
    sign: (req) => core.jwt.sign({ sub: String(req.sub ?? 'user'), ...(req.jti ? { jti: req.jti } : {}) }),
    verify: (req) => core.jwt.verify(String(req.token)).kid,
    rotate: async () => ({
      ...(await core.keys.rotate({ use: 'sig' })),
      generation: core.sync.status().generation,
    }),
    revoke: (req) => core.keys.revoke(String(req.kid), 'test'),
    revokeToken: (req) => core.revocations.revokeToken(String(req.jti), Number(req.until)),
    setOffset: (req) => {
      offset = Number(req.ms);
      return offset;
    },
    tick: async (req) => {
      const at = Number(req.at ?? 0);
      if (at > Date.now()) await new Promise((r) => setTimeout(r, at - Date.now()));
      const result = await core.scheduler.tick();
      return result.status === 'failed'
        ? { status: result.status, code: result.error.code }
        : { status: result.status };
    },
    status: () => core.sync.status(),
    refresh: () => core.sync.refresh(),
    invariants: () => checkKeyringInvariants(core.keys.list()),
  };
  return {
    async call<T>(op: string, args: Record<string, unknown> = {}) {
      const fn = ops[op];
      if (!fn) throw new Error(`unknown op ${op}`);
      try {
        // Through JSON, as a reply from a process would be.
        return JSON.parse(JSON.stringify((await fn(args)) ?? null)) as T;
      } catch (err) {
        throw new AppError(isKeywardError(err) ? err.code : 'internal_error', String(err));
      }
    },
    async waitEvent(match, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const seen = events.find(match);
        if (seen) return seen;
        if (Date.now() > deadline) throw new Error('timed out waiting for an event');
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: () => core.close(),
  };
}

let n = 0;
describe('several cores on one memory store', () => {
  syncSuite({
    name: 'memory (in-process instances)',
    namespace() {
      const name = `mem${++n}`;
      stores.set(name, createMemoryStore());
      return { KW_MEMORY_STORE: name };
    },
    openStore(env) {
      // The suite closes the store it opens: hand it a view whose close leaves the shared one open.
      const store = stores.get(env.KW_MEMORY_STORE!)!;
      return { ...store, close: async () => {} };
    },
    start: inProcess,
    async cleanup() {
      await Promise.all([...stores.values()].map((s) => s.close()));
      stores.clear();
    },
  });
});
