import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MasterKey } from '../../core/src/keys/master-key.js';
import { describeWithRedis, dropRedisPrefix, redisTestUrl, uniquePrefix } from '../../testing/src/redis.js';
import { buildOnce, type CliResult, keyward, tempDir } from './cli.js';

interface Target {
  args: string[];
  dir: string;
  cleanup(): Promise<void> | void;
}

interface ListedKey {
  kid: string;
  state: string;
}

/** `keyward rekey` and restore across master keys, on a fresh keyring per test. */
function describeRekeyCommands(name: string, makeTarget: () => Target): void {
  describe(`keyward rekey (${name})`, () => {
    let target: Target;
    const [OLD, NEW, OTHER] = [0, 1, 2].map(() => MasterKey.generate().exportText()) as [
      string,
      string,
      string,
    ];
    const cleanups: Array<() => Promise<void> | void> = [];
    const outputs: CliResult[] = [];

    const run = async (args: string[], env: Record<string, string> = {}) => {
      const result = await keyward([...target.args, ...args], { env });
      outputs.push(result);
      return result;
    };
    const kidsWith = async (env: Record<string, string>) => {
      const result = await run(['keys', 'list', '--json'], env);
      expect(result.code, result.stderr).toBe(0);
      return (JSON.parse(result.stdout) as ListedKey[]).map((k) => `${k.kid}:${k.state}`).sort();
    };
    const keyFile = async (key: string) => {
      const file = join(target.dir, `probe-${Math.random().toString(36).slice(2)}.key`);
      writeFileSync(file, key, { mode: 0o600 });
      return file;
    };
    const expectOneLine = (result: CliResult, code: string, exit: number) => {
      expect(result.code).toBe(exit);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain(`[${code}]`);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    };
    /** Everything the CLI printed and wrote to its audit file holds no master key. */
    const expectNoKeyMaterial = () => {
      let audit = '';
      try {
        audit = readFileSync(join(target.dir, 'audit.jsonl'), 'utf8');
      } catch {
        // no audit file: nothing to scan
      }
      const text = `${outputs.map((o) => o.stdout + o.stderr).join('\n')}\n${audit}`;
      for (const key of [OLD, NEW, OTHER]) {
        expect(text).not.toContain(key);
        expect(text).not.toContain(key.replace(/=+$/, ''));
      }
    };

    beforeAll(async () => {
      await buildOnce();
    });
    const setup = async () => {
      target = makeTarget();
      cleanups.push(() => target.cleanup());
      const init = await run(['init'], { KEYWARD_MASTER_KEY: OLD });
      expect(init.code, init.stderr).toBe(0);
    };
    afterEach(async () => {
      expectNoKeyMaterial();
      outputs.length = 0;
      for (const fn of cleanups.splice(0)) await fn();
    });

    it('re-seals under the new key: same keys, the old key alone is refused in one line, audited once', async () => {
      await setup();
      const before = await kidsWith({ KEYWARD_MASTER_KEY: OLD });
      const newFile = await keyFile(NEW);
      const rekey = await run(['rekey', '--new-key-file', newFile], { KEYWARD_MASTER_KEY: OLD });
      expect(rekey.code, rekey.stderr).toBe(0);
      expect(rekey.stdout).toMatch(/re-sealed \d+ keys/);
      const tail = await run(['audit', 'tail', '-n', '1'], { KEYWARD_MASTER_KEY: NEW });
      expect((JSON.parse(tail.stdout) as { type: string }).type).toBe('key.rekeyed');

      expectOneLine(await run(['keys', 'list'], { KEYWARD_MASTER_KEY: OLD }), 'master_key_mismatch', 1);
      expect(await kidsWith({ KEYWARD_MASTER_KEY: NEW })).toEqual(before);
      expect(await kidsWith({ KEYWARD_MASTER_KEY: NEW, KEYWARD_MASTER_KEY_PREVIOUS: OLD })).toEqual(before);

      // Again: nothing to do, nothing written.
      const again = await run(['rekey', '--new-key-file', newFile], { KEYWARD_MASTER_KEY: OLD });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain('already sealed');

      const lines = readFileSync(join(target.dir, 'audit.jsonl'), 'utf8').trim().split('\n');
      const rekeyed = lines
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((e) => e.type === 'key.rekeyed');
      expect(rekeyed).toHaveLength(1);
      expect(rekeyed[0]).toMatchObject({
        outcome: 'success',
        masterKeyId: MasterKey.parse(NEW).id,
        previousMasterKeyId: MasterKey.parse(OLD).id,
      });
      const verify = await run(['audit', 'verify'], { KEYWARD_MASTER_KEY: NEW });
      expect(verify.code, verify.stderr).toBe(0);
    });

    it('works from an operator environment already rolled to new + previous, and can be undone', async () => {
      await setup();
      const before = await kidsWith({ KEYWARD_MASTER_KEY: OLD });
      const rekey = await run(['rekey', '--new-key-file', await keyFile(NEW)], {
        KEYWARD_MASTER_KEY: NEW,
        KEYWARD_MASTER_KEY_PREVIOUS: OLD,
      });
      expect(rekey.code, rekey.stderr).toBe(0);
      expect(await kidsWith({ KEYWARD_MASTER_KEY: NEW })).toEqual(before);
      // The documented undo, while the instances still hold both keys.
      const undo = await run(['rekey', '--new-key-file', await keyFile(OLD)], { KEYWARD_MASTER_KEY: NEW });
      expect(undo.code, undo.stderr).toBe(0);
      expect(await kidsWith({ KEYWARD_MASTER_KEY: OLD })).toEqual(before);
      expectOneLine(await run(['keys', 'list'], { KEYWARD_MASTER_KEY: NEW }), 'master_key_mismatch', 1);
    });

    it('refuses a key that does not open the keyring, and a bad key file, in one line', async () => {
      await setup();
      expectOneLine(
        await run(['rekey', '--new-key-file', await keyFile(NEW)], { KEYWARD_MASTER_KEY: OTHER }),
        'master_key_mismatch',
        1,
      );
      const bad = await run(['rekey', '--new-key-file', await keyFile('not-a-key-0123456789')], {
        KEYWARD_MASTER_KEY: OLD,
      });
      expectOneLine(bad, 'master_key_invalid', 2);
      expect(bad.stderr).not.toContain('not-a-key-0123456789');
      expectOneLine(
        await run(['rekey', '--new-key-file', join(target.dir, 'missing.key')], { KEYWARD_MASTER_KEY: OLD }),
        'invalid_argument',
        2,
      );
      // Nothing changed: the old key still opens it.
      expect((await kidsWith({ KEYWARD_MASTER_KEY: OLD })).length).toBeGreaterThan(0);
    });

    it('backup under the old key (backup key) → restore --force under a new master key', async () => {
      await setup();
      const before = await kidsWith({ KEYWARD_MASTER_KEY: OLD });
      const backupKey = join(target.dir, 'backup.key');
      writeFileSync(backupKey, (await keyward(['fernet', 'generate-key'])).stdout, { mode: 0o600 });
      const out = join(target.dir, 'kr.json');
      const backup = await run(['backup', '--out', out, '--backup-key-file', backupKey], {
        KEYWARD_MASTER_KEY: OLD,
      });
      expect(backup.code, backup.stderr).toBe(0);
      const restored = await run(['restore', out, '--backup-key-file', backupKey, '--force'], {
        KEYWARD_MASTER_KEY: NEW,
      });
      expect(restored.code, restored.stderr).toBe(0);
      expect(restored.stdout).toContain('master_key_mismatch');
      expect(await kidsWith({ KEYWARD_MASTER_KEY: NEW })).toEqual(before);
      expectOneLine(await run(['keys', 'list'], { KEYWARD_MASTER_KEY: OLD }), 'master_key_mismatch', 1);
    });

    it('backup sealed under the old master key restores under a new one when the old is a previous key', async () => {
      await setup();
      const before = await kidsWith({ KEYWARD_MASTER_KEY: OLD });
      const out = join(target.dir, 'kr.json');
      expect((await run(['backup', '--out', out], { KEYWARD_MASTER_KEY: OLD })).code).toBe(0);
      expectOneLine(
        await run(['restore', out, '--force'], { KEYWARD_MASTER_KEY: NEW }),
        'master_key_mismatch',
        1,
      );
      const restored = await run(['restore', out, '--force'], {
        KEYWARD_MASTER_KEY: NEW,
        KEYWARD_MASTER_KEY_PREVIOUS: OLD,
      });
      expect(restored.code, restored.stderr).toBe(0);
      expect(await kidsWith({ KEYWARD_MASTER_KEY: NEW })).toEqual(before);
    });
  });
}

describeRekeyCommands('embedded store', () => {
  const { dir, cleanup } = tempDir();
  return { args: ['--dir', dir], dir, cleanup };
});

describeWithRedis('redis', () => {
  describeRekeyCommands('redis', () => {
    const url = redisTestUrl() as string;
    const prefix = `{${uniquePrefix('cli-rekey')}}`;
    const { dir, cleanup } = tempDir();
    return {
      args: ['--dir', dir, '--redis', url, '--redis-prefix', prefix],
      dir,
      async cleanup() {
        await dropRedisPrefix(url, prefix);
        cleanup();
      },
    };
  });
});
