import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeywardCore } from '../core.js';
import { MasterKey } from '../keys/master-key.js';
import { createSecretService, SECRETS_REWRAP_TARGET } from '../secrets/service.js';
import { createSqliteStore } from '../store/sqlite.js';
import { createDataCipher } from './cipher.js';
import { createRewrapJob } from './rewrap.js';

const COUNT = 10_000;
const FREEZE_AT = 5_100;
const worker = fileURLToPath(new URL('./__fixtures__/rewrap-worker.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kw-rewrap-kill-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts the worker, waits until it reports `frozen` mid-batch, then kills it with SIGKILL. */
function runAndKill(path: string, masterKey: string): Promise<NodeJS.Signals | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@keyward/source', '--import', 'tsx', worker, path, String(FREEZE_AT)],
      { env: { ...process.env, KW_MASTER_KEY: masterKey }, stdio: ['ignore', 'pipe', 'pipe'] },
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
      signal ? resolve(signal) : reject(new Error(`worker exited ${code}: ${stderr}`)),
    );
  });
}

describe('rewrap job, killed with SIGKILL halfway (sqlite)', () => {
  it('resumes from its saved cursor, and every secret still decrypts under the new key', async () => {
    const path = join(dir, 'kill.db');
    const masterKey = MasterKey.generate().exportText();
    const store = createSqliteStore({ path });
    const core = await createKeywardCore({ store, masterKey, logger: false, audit: false, scheduler: false });
    const secrets = createSecretService(core);
    for (let i = 0; i < COUNT; i++) await secrets.put(`o${i % 10}`, `s${i}`, `v${i}`);
    const oldKid = core.keys.snapshot().dataKey().kid;
    const { kid: newKid } = await core.keys.rotate({ use: 'data' });

    expect(await runAndKill(path, masterKey)).toBe('SIGKILL');
    const saved = JSON.parse((await store.get('rewrap:cursor:data'))!) as {
      cursor: string;
      activeKid: string;
    };
    expect(saved.activeKid).toBe(newKid);

    // The killed worker still holds the job lock; a store whose clock is past the lock TTL takes over.
    const later = createSqliteStore({ path, now: () => Date.now() + 120_000 });
    const resumedCore = await createKeywardCore({
      store: later,
      masterKey,
      logger: false,
      audit: false,
      scheduler: false,
    });
    const result = await createRewrapJob(resumedCore, {
      ...SECRETS_REWRAP_TARGET,
      batchSize: 250,
      settleMs: 0,
    }).run();
    expect(result.resumed).toBe(true);
    expect(result.scanned).toBeLessThan(COUNT);
    expect(result.scanned).toBe(COUNT - 5_000); // 20 full batches of 250 were saved before the kill
    expect(result.rewrapped).toBeLessThanOrEqual(result.scanned);
    expect(result.remainingByKid).toEqual({});
    expect(result.retired).toEqual([oldKid]);

    const cipher = createDataCipher(resumedCore);
    const resumedSecrets = createSecretService(resumedCore);
    let page = await later.scan('secret:', { limit: 1000 });
    let seen = 0;
    for (;;) {
      for (const e of page.entries) {
        expect(cipher.isCurrent((JSON.parse(e.value) as { value: string }).value)).toBe(true);
        seen += 1;
      }
      if (!page.cursor) break;
      page = await later.scan('secret:', { limit: 1000, cursor: page.cursor });
    }
    expect(seen).toBe(COUNT);
    for (const i of [0, 4_999, 5_050, 5_100, 9_999])
      expect(await resumedSecrets.get(`o${i % 10}`, `s${i}`)).toBe(`v${i}`);
    expect(await later.get('rewrap:cursor:data')).toBeNull();
    await resumedCore.close();
    await later.close();
    await core.close();
    await store.close();
  }, 120_000);
});
