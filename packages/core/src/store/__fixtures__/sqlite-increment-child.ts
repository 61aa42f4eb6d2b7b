// Child process for sqlite.test.ts: races `increment` on a shared file through the real driver.
import { createSqliteStore } from '../sqlite.js';

const [path, countArg] = process.argv.slice(2);
const store = createSqliteStore({ path: path as string });
const count = Number(countArg);
const seen: number[] = [];
for (let i = 0; i < count; i++) seen.push(await store.increment('shared-counter'));
const lock = await store.acquireLock('child-lock', 60_000);
await lock?.release();
await store.close();
process.stdout.write(JSON.stringify({ seen, lockToken: lock?.token ?? null }));
