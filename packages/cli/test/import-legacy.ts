import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { legacyKid } from '@keyward/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, keyward } from './cli.js';
import type { StoreTarget } from './key-commands.js';

interface ListedKey {
  kid: string;
  alg: string;
  state: string;
  origin: string;
  verifyUntil?: number;
}

/** `import-legacy` against one store. */
export function describeImportLegacy(name: string, makeTarget: () => StoreTarget): void {
  describe(`keyward import-legacy (${name})`, () => {
    const target = makeTarget();
    const { dir } = target;
    const cleanup = () => target.cleanup();
    const run = (args: string[], env: Record<string, string> = {}) =>
      keyward([...target.args, ...args], { env });
    const list = async () => JSON.parse((await run(['keys', 'list', '--json'])).stdout) as ListedKey[];
    const keysFile = join(dir, 'reference.keys');
    const secret = 'reference-jwt-secret-0123456789abcdef';

    beforeAll(async () => {
      await buildOnce();
      expect((await run(['init'])).code).toBe(0);
      writeFileSync(
        keysFile,
        JSON.stringify([
          {
            id: 'old-1',
            key: 'Zq3kR8xY1mN4pW7tV2bC5dF9gH0jL6sA',
            active: false,
            notes: 'first',
            created_at: '2024-01-01T00:00:00Z',
          },
          {
            id: 'cur-2',
            key: 'Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0Kk',
            active: true,
            notes: 'current',
            created_at: '2024-06-01T00:00:00Z',
          },
        ]),
      );
    });
    afterAll(cleanup);

    it('refuses a masked key file and imports nothing', async () => {
      const masked = join(dir, 'masked.keys');
      writeFileSync(
        masked,
        JSON.stringify([
          { id: 'm1', key: '**********', active: true, notes: '', created_at: '2024-01-01T00:00:00Z' },
        ]),
      );
      const before = await list();
      const result = await run(['import-legacy', '--keys-file', masked]);
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain('m1');
      expect(result.stderr).toContain('[legacy_key_masked]');
      expect(await list()).toEqual(before);
    });

    it('imports JWT_SECRET and .keys as verify-only HS256 keys keeping their kids, without printing them', async () => {
      const result = await run(['import-legacy', '--keys-file', keysFile, '--verify-for', '7d'], {
        JWT_SECRET: secret,
      });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout + result.stderr).not.toContain(secret);
      expect(result.stdout + result.stderr).not.toContain('Zq3kR8xY1mN4pW7tV2bC5dF9gH0jL6sA');
      const keys = await list();
      const secretKid = await legacyKid(secret);
      for (const kid of [secretKid, 'old-1', 'cur-2']) {
        const key = keys.find((k) => k.kid === kid);
        expect(key, kid).toMatchObject({ alg: 'HS256', state: 'retiring', origin: 'imported' });
        expect(key!.verifyUntil! - Date.now()).toBeGreaterThan(6 * 86_400_000);
      }
      const again = await run(['import-legacy', '--keys-file', keysFile], { JWT_SECRET: secret });
      expect(again.stdout).toContain('imported 0');
    });

    it('--activate makes the reference system signing key active; a later rotation still works', async () => {
      const other = makeTarget();
      try {
        const runOther = (args: string[]) => keyward([...other.args, ...args]);
        await runOther(['init']);
        const result = await runOther(['import-legacy', '--keys-file', keysFile, '--activate']);
        expect(result.code, result.stderr).toBe(0);
        const keys = JSON.parse((await runOther(['keys', 'list', '--json'])).stdout) as ListedKey[];
        expect(keys.find((k) => k.kid === 'cur-2')?.state).toBe('active');
        expect(keys.find((k) => k.kid === 'old-1')?.state).toBe('retiring');
        expect((await runOther(['keys', 'rotate', '--reason', 'leave HS256'])).code).toBe(0);
      } finally {
        await other.cleanup();
      }
    });

    it('audit verify reports a tampered audit file at the broken line', async () => {
      const audit = join(dir, 'audit.jsonl');
      const { readFileSync } = await import('node:fs');
      const lines = readFileSync(audit, 'utf8').trim().split('\n');
      lines[1] = lines[1]!.replace('"key.generated"', '"key.retired"');
      writeFileSync(audit, `${lines.join('\n')}\n`);
      const result = await run(['audit', 'verify']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/line 2: .*\[audit_chain_broken\]/);
    });
  });
}
