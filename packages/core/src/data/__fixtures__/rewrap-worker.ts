/**
 * Child process of the rewrap kill test: runs the rewrap job on a shared sqlite file and freezes
 * (prints `frozen`) in the middle of a batch, after `freezeAt` records, so the parent can `kill -9` it there.
 *
 * Usage: node --conditions=@keyward/source --import tsx rewrap-worker.ts <db> <freezeAt>  (KW_MASTER_KEY in env;
 * KW_LOCK_TTL_MS sets the job's lock TTL). Its lock holder is named `rewrap-worker:<pid>`.
 */
import { createKeywardCore } from '../../core.js';
import { SECRETS_REWRAP_TARGET } from '../../secrets/service.js';
import { createSqliteStore } from '../../store/sqlite.js';
import { createRewrapJob } from '../rewrap.js';

const [path, freezeAtText] = process.argv.slice(2);
const freezeAt = Number(freezeAtText);
const store = createSqliteStore({ path: path! });
const core = await createKeywardCore({
  store,
  masterKey: process.env.KW_MASTER_KEY!,
  logger: false,
  audit: false,
  scheduler: false,
});
let injected = 0;
const inject = SECRETS_REWRAP_TARGET.inject!;
const job = createRewrapJob(core, {
  ...SECRETS_REWRAP_TARGET,
  batchSize: 250,
  settleMs: 0,
  instanceId: `rewrap-worker:${process.pid}`,
  ...(process.env.KW_LOCK_TTL_MS ? { lockTtlMs: Number(process.env.KW_LOCK_TTL_MS) } : {}),
  inject(value, ciphertext, key) {
    injected += 1;
    if (injected === freezeAt) {
      process.stdout.write('frozen\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // until killed
    }
    return inject(value, ciphertext, key);
  },
});
await job.run();
process.stdout.write('finished\n');
await core.close();
