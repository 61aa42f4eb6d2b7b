import { createKeyward } from '@keyward/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, keyward } from './cli.js';
import type { StoreTarget } from './key-commands.js';

interface ListedKey {
  kid: string;
  use: string;
  state: string;
}

/** `apikeys` and `secrets rewrap` against one store. */
export function describeServiceCommands(name: string, makeTarget: () => StoreTarget): void {
  describe(`keyward apikeys and secrets rewrap (${name})`, () => {
    let target: StoreTarget;
    const run = (args: string[]) => keyward([...target.args, ...args]);

    beforeAll(async () => {
      await buildOnce();
      target = makeTarget();
      expect((await run(['init'])).code).toBe(0);
    });
    afterAll(() => target.cleanup());

    it('apikeys create prints the key once; list and revoke never show it', async () => {
      const created = await run([
        'apikeys',
        'create',
        '--owner',
        'svc_1',
        '--name',
        'cron',
        '--scopes',
        'a,b',
      ]);
      expect(created.code, created.stderr).toBe(0);
      const key = created.stdout.trim();
      expect(key).toMatch(/^kw_/);
      const listed = await run(['apikeys', 'list', '--owner', 'svc_1', '--json']);
      const [info] = JSON.parse(listed.stdout) as Array<{
        id: string;
        scopes: string[];
        revokedAt: number | null;
      }>;
      expect(info).toMatchObject({ scopes: ['a', 'b'], revokedAt: null });
      const secretPart = key.slice(`kw_${info!.id}_`.length);
      expect(listed.stdout).not.toContain(secretPart);
      const revoked = await run(['apikeys', 'revoke', info!.id]);
      expect(revoked.code, revoked.stderr).toBe(0);
      const after = JSON.parse(
        (await run(['apikeys', 'list', '--owner', 'svc_1', '--json'])).stdout,
      ) as Array<{
        revokedAt: number | null;
      }>;
      expect(after[0]!.revokedAt).not.toBeNull();
      const unknown = await run(['apikeys', 'revoke', 'nope']);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr.trim()).toBe('keyward: no API key with id "nope" [not_found]');
    });

    it('secrets rewrap moves every secret to the new data key and retires the old one', async () => {
      const open = () =>
        createKeyward({ ...target.keywardOptions, logger: false, audit: false, scheduler: false });
      let kw = await open();
      for (const name of ['github', 'slack', 'stripe'])
        await kw.secrets.put('user_1', name, `value-of-${name}`);
      await kw.close();
      const oldKid = (
        (JSON.parse((await run(['keys', 'list', '--json'])).stdout) as ListedKey[]).find(
          (k) => k.use === 'data' && k.state === 'active',
        ) as ListedKey
      ).kid;
      expect((await run(['keys', 'rotate', '--use', 'data'])).code).toBe(0);

      const result = await run(['secrets', 'rewrap', '--settle', '0', '--batch-size', '2']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/3 of 3 rewrapped/);
      expect(result.stdout).toContain(`retired data keys: ${oldKid}`);
      expect(result.stderr).toMatch(/rewrap secret:.*\(done\)/);
      expect(result.stdout + result.stderr).not.toContain('value-of-');

      const keys = JSON.parse((await run(['keys', 'list', '--json'])).stdout) as ListedKey[];
      expect(keys.find((k) => k.kid === oldKid)?.state).toBe('retired');
      kw = await open();
      try {
        expect(await kw.secrets.get('user_1', 'stripe')).toBe('value-of-stripe');
      } finally {
        await kw.close();
      }
      const again = await run(['secrets', 'rewrap']);
      expect(again.stdout).toMatch(/0 of 3 rewrapped/);
    });
  });
}
