import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeywardCore } from '../core.js';
import { isKeywardError, type KeywardError } from '../errors.js';
import { MasterKey } from '../keys/master-key.js';
import { createSecretService, SECRETS_REWRAP_TARGET } from '../secrets/service.js';
import { createSqliteStore } from '../store/sqlite.js';
import { createDataCipher } from './cipher.js';
import { createRewrapJob, type RewrapResult } from './rewrap.js';

const COUNT = 10_000;
const FREEZE_AT = 5_100;
/** The worker's lock TTL: its heartbeat renews it while it runs; killed, the lock lapses within it. */
const LOCK_TTL_MS = 1500;
const worker = fileURLToPath(new URL('./__fixtures__/rewrap-worker.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kw-rewrap-kill-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts the worker, waits until it reports `frozen` mid-batch, then kills it with SIGKILL. */
function runAndKill(path: string, masterKey: string): Promise<{ signal: NodeJS.Signals; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@keyward/source', '--import', 'tsx', worker, path, String(FREEZE_AT)],
      {
        env: { ...process.env, KW_MASTER_KEY: masterKey, KW_LOCK_TTL_MS: String(LOCK_TTL_MS) },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('frozen')) child.kill('SIGKILL');
      if (d.toString().includes('finished')) reject(new Error('worker finished before being killed'));
    });
    child.on('exit', (code, signal) =>
      signal ? resolve({ signal, pid: child.pid! }) : reject(new Error(`worker exited ${code}: ${stderr}`)),
    );
  });
}

describe('rewrap job, killed with SIGKILL halfway (sqlite)', () => {
  it('is resumed right after the kill from its saved cursor, and every secret still decrypts under the new key', async () => {
    const path = join(dir, 'kill.db');
    const masterKey = MasterKey.generate().exportText();
    const store = createSqliteStore({ path });
    const core = await createKeywardCore({ store, masterKey, logger: false, audit: false, scheduler: false });
    const secrets = createSecretService(core);
    for (let i = 0; i < COUNT; i++) await secrets.put(`o${i % 10}`, `s${i}`, `v${i}`);
    const oldKid = core.keys.snapshot().dataKey().kid;
    const { kid: newKid } = await core.keys.rotate({ use: 'data' });

    const killed = await runAndKill(path, masterKey);
    expect(killed.signal).toBe('SIGKILL');
    const saved = JSON.parse((await store.get('rewrap:cursor:data'))!) as {
      cursor: string;
      activeKid: string;
    };
    expect(saved.activeKid).toBe(newKid);

    // Resume right away on the real clock: the killed worker's lock is no longer renewed by its
    // heartbeat, so it lapses within one TTL. Until then the refusal names the holder.
    const resumedCore = await createKeywardCore({
      store,
      masterKey,
      logger: false,
      audit: false,
      scheduler: false,
    });
    const job = createRewrapJob(resumedCore, {
      ...SECRETS_REWRAP_TARGET,
      batchSize: 250,
      settleMs: 0,
      lockTtlMs: LOCK_TTL_MS,
      instanceId: 'resumer',
    });
    const refusals: KeywardError[] = [];
    const deadline = Date.now() + 5 * LOCK_TTL_MS; // bounded wait: a few lock TTLs
    let result: RewrapResult | undefined;
    while (result === undefined) {
      try {
        result = await job.run();
      } catch (err) {
        if (!isKeywardError(err, 'lock_not_acquired') || Date.now() > deadline) throw err;
        refusals.push(err);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    for (const refusal of refusals) {
      expect(refusal.details?.holder).toBe(`rewrap-worker:${killed.pid}`);
      expect(refusal.message).toContain(`rewrap-worker:${killed.pid}`);
      expect(refusal.details?.heldForMs).toBeTypeOf('number');
    }
    expect(result.resumed).toBe(true);
    expect(result.scanned).toBeLessThan(COUNT);
    expect(result.scanned).toBe(COUNT - 5_000); // 20 full batches of 250 were saved before the kill
    expect(result.rewrapped).toBeLessThanOrEqual(result.scanned);
    expect(result.remainingByKid).toEqual({});
    expect(result.retired).toEqual([oldKid]);

    const cipher = createDataCipher(resumedCore);
    const resumedSecrets = createSecretService(resumedCore);
    let page = await store.scan('secret:', { limit: 1000 });
    let seen = 0;
    for (;;) {
      for (const e of page.entries) {
        expect(cipher.isCurrent((JSON.parse(e.value) as { value: string }).value)).toBe(true);
        seen += 1;
      }
      if (!page.cursor) break;
      page = await store.scan('secret:', { limit: 1000, cursor: page.cursor });
    }
    expect(seen).toBe(COUNT);
    for (const i of [0, 4_999, 5_050, 5_100, 9_999])
      expect(await resumedSecrets.get(`o${i % 10}`, `s${i}`)).toBe(`v${i}`);
    expect(await store.get('rewrap:cursor:data')).toBeNull();
    expect(await store.get('rewrap:holder:data')).toBeNull();
    await resumedCore.close();
    await core.close();
    await store.close();
  }, 120_000);
});
