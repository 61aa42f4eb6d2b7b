import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createKeyward } from '@keyward/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, keyward, tempDir } from './cli.js';

/** Where a suite keeps its keyring: the global options to pass, and a cleanup. */
export interface StoreTarget {
  args: string[];
  dir: string;
  /** Options for `createKeyward` to open the same keyring from a test. */
  keywardOptions: { dir: string; redisUrl?: string; redisPrefix?: string; databaseUrl?: string };
  cleanup(): Promise<void> | void;
}

interface ListedKey {
  kid: string;
  use: string;
  alg: string;
  state: string;
  verifyUntil?: number;
  destroyedAt?: number;
  rewrap?: { state: string; toRewrap?: number; rewrapped: number; remaining?: number };
}

/** The key commands (init, keys list/rotate/revoke/plan, jwks, backup/restore) against one store. */
export function describeKeyCommands(
  name: string,
  makeTarget: () => Promise<StoreTarget> | StoreTarget,
): void {
  describe(`key commands (${name})`, () => {
    let target: StoreTarget;
    const run = (args: string[], input?: string) =>
      keyward([...target.args, ...args], input === undefined ? {} : { input });
    const list = async (): Promise<ListedKey[]> => {
      const result = await run(['keys', 'list', '--json']);
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as ListedKey[];
    };
    const active = async (use: string) => (await list()).find((k) => k.use === use && k.state === 'active')!;

    beforeAll(async () => {
      await buildOnce();
      target = await makeTarget();
    });
    afterAll(async () => target.cleanup());

    it('refuses key commands before init, with one line', async () => {
      const result = await run(['keys', 'list']);
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/master_key_missing|keyring_missing/);
    });

    it('init creates a master key file and a keyring without printing the key', async () => {
      const result = await run(['init']);
      expect(result.code, result.stderr).toBe(0);
      const keyFile = join(target.dir, 'master.key');
      const masterKey = readFileSync(keyFile, 'utf8').trim();
      expect(result.stdout).toContain(keyFile);
      expect(result.stdout).toContain('secret manager');
      expect(result.stdout).not.toContain(masterKey);
      const again = await run(['init']);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('already exists');
    });

    it('keys list shows one active key per use, as a table and as JSON', async () => {
      const keys = await list();
      expect(
        keys
          .filter((k) => k.state === 'active')
          .map((k) => k.use)
          .sort(),
      ).toEqual(['data', 'enc', 'sig']);
      expect(JSON.stringify(keys)).not.toMatch(/"(d|k|sealed)":/);
      const table = await run(['keys', 'list']);
      expect(table.stdout.split('\n')[0]).toMatch(/^KID\s+USE\s+ALG\s+STATE/);
      expect(table.stdout).toContain(keys[0]!.kid);
    });

    it('keys rotate makes a new active key; the old one verifies until a verifyUntil', async () => {
      const before = await active('sig');
      const result = await run(['keys', 'rotate', '--use', 'sig', '--reason', 'test rotation']);
      expect(result.code, result.stderr).toBe(0);
      const keys = await list();
      const after = keys.find((k) => k.use === 'sig' && k.state === 'active')!;
      expect(after.kid).not.toBe(before.kid);
      const old = keys.find((k) => k.kid === before.kid)!;
      expect(old.state).toBe('retiring');
      expect(old.verifyUntil).toBeGreaterThan(Date.now());
      expect(result.stdout).toContain(after.kid);
      // The standby made with the keyring took over: published, so no warning.
      expect(result.stdout).not.toContain('warning');
      expect(keys.filter((k) => k.use === 'sig' && k.state === 'pending')).toHaveLength(1);
    });

    it('jwks publishes the active and the retiring signing key, public parts only', async () => {
      const result = await run(['jwks']);
      expect(result.code, result.stderr).toBe(0);
      const jwks = JSON.parse(result.stdout) as { keys: Array<Record<string, string>> };
      const sig = (await list()).filter((k) => k.use === 'sig' && k.state !== 'revoked').map((k) => k.kid);
      expect(jwks.keys.map((k) => k.kid).sort()).toEqual(sig.sort());
      for (const key of jwks.keys) expect(key.d).toBeUndefined();
    });

    it('keys revoke refuses without --yes off a terminal, and rejects an unknown kid', async () => {
      const sig = await active('sig');
      // `--` before the kid: a base64url kid may start with '-', which commander would read as an option.
      const refused = await run(['keys', 'revoke', '--reason', 'leak', '--', sig.kid]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('--yes');
      expect((await active('sig')).kid).toBe(sig.kid);
      const unknown = await run(['keys', 'revoke', 'no-such-kid', '--reason', 'leak', '--yes']);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr.trim()).toBe('keyward: no key with kid "no-such-kid" [key_not_found]');
    });

    it('keys revoke --yes revokes the active key and promotes a replacement', async () => {
      const sig = await active('sig');
      const result = await run(['keys', 'revoke', '--reason', 'leaked in CI', '--yes', '--', sig.kid]);
      expect(result.code, result.stderr).toBe(0);
      const keys = await list();
      expect(keys.find((k) => k.kid === sig.kid)!.state).toBe('revoked');
      const replacement = keys.find((k) => k.use === 'sig' && k.state === 'active')!;
      expect(result.stdout).toContain(replacement.kid);
      // The standby promoted here was made by the rotation a moment ago (less than jwksMaxAge).
      expect(result.stdout).toContain('warning: no published standby existed');
      const jwks = JSON.parse((await run(['jwks'])).stdout) as { keys: Array<{ kid: string }> };
      expect(jwks.keys.map((k) => k.kid)).not.toContain(sig.kid);
    });

    it('keys revoke of a data key reports the records to rewrap; keys list shows the progress, then destroyed', async () => {
      const open = () =>
        createKeyward({
          ...target.keywardOptions,
          logger: false,
          audit: false,
          scheduler: false,
          dataKeyRewrap: { background: false, settleMs: 0 },
        });
      let kw = await open();
      for (const name of ['one', 'two']) await kw.secrets.put('cli_user', name, `value-${name}`);
      await kw.close();
      const data = await active('data');
      const result = await run(['keys', 'revoke', '--reason', 'leaked', '--yes', '--', data.kid]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('2 records are still under it');
      const listed = (await list()).find((k) => k.kid === data.kid)!;
      expect(listed).toMatchObject({
        state: 'revoked',
        rewrap: { state: 'rewrapping', toRewrap: 2, remaining: 2 },
      });
      expect((await run(['keys', 'list'])).stdout).toMatch(/revoked \(rewrap 0\/2\)/);

      kw = await open();
      try {
        await kw.dataRewrap.run();
        expect(await kw.secrets.get('cli_user', 'one')).toBe('value-one');
      } finally {
        await kw.close();
      }
      const destroyed = (await list()).find((k) => k.kid === data.kid)!;
      expect(destroyed.destroyedAt).toBeTypeOf('number');
      expect(destroyed.rewrap).toMatchObject({ state: 'destroyed', remaining: 0 });
      expect((await run(['keys', 'list'])).stdout).toMatch(/revoked \(destroyed\)/);
    });

    it('keys plan shows the next scheduled rotation and the JWKS after it', async () => {
      const result = await run(['keys', 'plan', '--days', '100', '--json']);
      expect(result.code, result.stderr).toBe(0);
      const steps = JSON.parse(result.stdout) as Array<{
        actions: Array<{ type: string; use?: string }>;
        jwksKids: string[];
      }>;
      const sigGenerate = steps.find((s) => s.actions.some((a) => a.type === 'generate' && a.use === 'sig'));
      expect(sigGenerate?.jwksKids).toContain('sim-sig-1');
      const text = await run(['keys', 'plan', '--days', '100']);
      expect(text.stdout).toMatch(/generate sig ES256, published now, active from/);
      const bad = await run(['keys', 'plan', '--days', 'soon']);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    });

    it('a wrong master key is master_key_mismatch, one line, no key material', async () => {
      const other = (await keyward(['fernet', 'generate-key'])).stdout.trim();
      const result = await keyward([...target.args, 'keys', 'list'], { env: { KEYWARD_MASTER_KEY: other } });
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain('[master_key_mismatch]');
      expect(result.stderr).not.toContain(other);
    });

    it('backup then restore brings a lost keyring back; restore refuses to overwrite without --force', async () => {
      const backups = tempDir();
      try {
        const out = join(backups.dir, 'keyring.json');
        const before = await list();
        const backup = await run(['backup', '--out', out]);
        expect(backup.code, backup.stderr).toBe(0);
        expect(existsSync(out)).toBe(true);
        const refused = await run(['restore', out]);
        expect(refused.code).toBe(2);
        expect(refused.stderr).toContain('--force');
        await run(['keys', 'rotate', '--use', 'enc']);
        const restored = await run(['restore', out, '--force']);
        expect(restored.code, restored.stderr).toBe(0);
        expect((await list()).map((k) => `${k.kid}:${k.state}`)).toEqual(
          before.map((k) => `${k.kid}:${k.state}`),
        );
      } finally {
        backups.cleanup();
      }
    });

    it('writes its key events to <dir>/audit.jsonl with an intact chain', async () => {
      const verify = await run(['audit', 'verify']);
      expect(verify.code, verify.stderr).toBe(0);
      expect(verify.stdout).toMatch(/\d+ events, hash chain intact/);
      const tail = await run(['audit', 'tail', '-n', '50']);
      const types = tail.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { type: string }).type);
      expect(types).toEqual(expect.arrayContaining(['key.generated', 'key.rotated', 'key.revoked']));
    });
  });
}
