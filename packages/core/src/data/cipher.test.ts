import { afterEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../../testing/src/errors.js';
import type { KeywardCore } from '../core.js';
import { Fernet } from '../fernet/fernet.js';
import { makeCore } from './__fixtures__/core.js';
import { createDataCipher } from './cipher.js';

const cores: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});
async function setup() {
  const t = await makeCore();
  cores.push(t.core);
  return { ...t, cipher: createDataCipher(t.core) };
}

describe('createDataCipher', () => {
  it('stores `<active kid>:<fernet token>` and decrypts strings and bytes', async () => {
    const { core, cipher } = await setup();
    const kid = core.keys.snapshot().dataKey().kid;
    const stored = cipher.encrypt('ghp_value');
    expect(stored.startsWith(`${kid}:gAAAAA`)).toBe(true);
    expect(cipher.decryptString(stored)).toBe('ghp_value');
    expect(Array.from(cipher.decrypt(cipher.encrypt(new Uint8Array([0, 255, 7]))))).toEqual([0, 255, 7]);
    expect(cipher.kidOf(stored)).toBe(kid);
    expect(cipher.isCurrent(stored)).toBe(true);
  });

  it('decrypts a bare Fernet token by trying every data key, newest first', async () => {
    const { core, cipher } = await setup();
    const oldKey = core.keys.snapshot().dataKey();
    const bare = oldKey.fernet.encrypt('bare value');
    await core.keys.rotate({ use: 'data' });
    expect(cipher.decryptString(bare)).toBe('bare value');
    expect(cipher.kidOf(bare)).toBe(oldKey.kid);
    expect(cipher.isCurrent(bare)).toBe(false);
  });

  it('after a rotation, old values still decrypt and rewrap moves them to the new key keeping the timestamp', async () => {
    const { core, cipher, clock } = await setup();
    const firstKid = core.keys.snapshot().dataKey().kid;
    const stored = cipher.encrypt('rotate me');
    const stampedAt = Math.floor(clock.now / 1000);
    clock.now += 86_400_000;
    const { kid: newKid } = await core.keys.rotate({ use: 'data' });
    expect(newKid).not.toBe(firstKid);
    expect(cipher.isCurrent(stored)).toBe(false);
    expect(cipher.decryptString(stored)).toBe('rotate me');
    const rewrapped = cipher.rewrap(stored);
    expect(cipher.kidOf(rewrapped)).toBe(newKid);
    expect(cipher.isCurrent(rewrapped)).toBe(true);
    expect(cipher.decryptString(rewrapped)).toBe('rotate me');
    const token = rewrapped.slice(rewrapped.lastIndexOf(':') + 1);
    expect(core.keys.snapshot().dataKey().fernet.extractTimestamp(token)).toBe(stampedAt);
    expect(cipher.rewrap(rewrapped)).toBe(rewrapped);
  });

  it('rewrap turns a bare token under the active key into the prefixed form', async () => {
    const { core, cipher } = await setup();
    const key = core.keys.snapshot().dataKey();
    const rewrapped = cipher.rewrap(key.fernet.encrypt('x'));
    expect(rewrapped.startsWith(`${key.kid}:`)).toBe(true);
    expect(cipher.decryptString(rewrapped)).toBe('x');
  });

  it('rejects unknown kids, destroyed keys, tampered and foreign tokens with stable codes', async () => {
    const { core, cipher } = await setup();
    const stored = cipher.encrypt('secret-plaintext');
    const token = stored.slice(stored.indexOf(':') + 1);
    expect(codeOf(() => cipher.decrypt(`nope:${token}`))).toBe('data_key_unavailable');
    expect(codeOf(() => cipher.decrypt(`${stored.slice(0, -6)}AAAAA=`))).toBe('fernet_token_invalid');
    expect(codeOf(() => cipher.decrypt(new Fernet(Fernet.generateKey()).encrypt('x')))).toBe(
      'fernet_token_invalid',
    );
    expect(codeOf(() => cipher.decrypt(':abc'))).toBe('fernet_token_invalid');
    expect(codeOf(() => cipher.decrypt(42 as unknown as string))).toBe('fernet_token_invalid');
    expect(codeOf(() => cipher.encrypt({} as unknown as string))).toBe('invalid_argument');
    expect(cipher.kidOf('garbage')).toBeUndefined();
    const leaked = core.keys.snapshot().dataKey().kid;
    await core.keys.revoke(leaked, 'leaked');
    // A revoked data key never encrypts again but still decrypts, so the rewrap can move its data.
    expect(cipher.kidOf(cipher.encrypt('next'))).not.toBe(leaked);
    expect(cipher.decryptString(stored)).toBe('secret-plaintext');
    expect(await core.keys.destroyDataKey(leaked)).toBe(true);
    expect(await core.keys.destroyDataKey(leaked)).toBe(false);
    expect(codeOf(() => cipher.decrypt(stored))).toBe('data_key_unavailable');
    expect(core.keys.snapshot().record(leaked)).toMatchObject({ state: 'revoked', use: 'data' });
    expect(core.keys.snapshot().record(leaked)?.destroyedAt).toBeTypeOf('number');
  });

  it('never puts the plaintext or the token into an error message', async () => {
    const { cipher } = await setup();
    const stored = cipher.encrypt('secret-plaintext');
    const token = stored.slice(stored.indexOf(':') + 1);
    for (const bad of [`unknown:${token}`, `${stored}x`, token.slice(0, 40)]) {
      try {
        cipher.decrypt(bad);
        expect.unreachable();
      } catch (err) {
        expect(String((err as Error).message)).not.toContain(token.slice(0, 20));
        expect(String((err as Error).message)).not.toContain('secret-plaintext');
      }
    }
  });

  it('decryptString refuses non-UTF-8 plaintext with fernet_token_invalid', async () => {
    const { cipher } = await setup();
    expect(codeOf(() => cipher.decryptString(cipher.encrypt(new Uint8Array([0xff, 0xfe]))))).toBe(
      'fernet_token_invalid',
    );
  });
});
