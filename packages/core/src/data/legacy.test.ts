import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { hasTool, python } from '../../../testing/src/tools.js';
import type { KeywardCore } from '../core.js';
import { isKeywardError } from '../errors.js';
import { legacyKid } from '../keys/legacy.js';
import { makeCore } from './__fixtures__/core.js';
import { createDataCipher } from './cipher.js';
import { isLegacySecretValue, migrateLegacySecret, readLegacySecret } from './legacy.js';

interface LegacyFixture {
  jwtSecret: string;
  stored: string;
  plaintext: string;
  now: number;
}
const fixture = (
  JSON.parse(readFileSync(new URL('../fernet/__fixtures__/python.json', import.meta.url), 'utf8')) as {
    legacy: LegacyFixture;
  }
).legacy;

const cores: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});
async function setup(jwtSecret?: string) {
  const t = await makeCore(jwtSecret ? { jwtSecret } : {});
  cores.push(t.core);
  return t.core;
}

const hasPython = hasTool('python-cryptography');

describe('legacy secrets (reference system)', () => {
  it('reads the value the reference system stored (Python cryptography fixture)', async () => {
    const core = await setup(fixture.jwtSecret);
    expect(isLegacySecretValue(fixture.stored)).toBe(true);
    expect(readLegacySecret(core, fixture.stored)).toBe(fixture.plaintext);
  });

  it('migrates it under the active data key, keeping the original timestamp', async () => {
    const core = await setup(fixture.jwtSecret);
    const migrated = migrateLegacySecret(core, fixture.stored);
    const cipher = createDataCipher(core);
    const active = core.keys.snapshot().dataKey();
    expect(cipher.kidOf(migrated)).toBe(active.kid);
    expect(cipher.isCurrent(migrated)).toBe(true);
    expect(isLegacySecretValue(migrated)).toBe(false);
    expect(cipher.decryptString(migrated)).toBe(fixture.plaintext);
    expect(active.fernet.extractTimestamp(migrated.slice(migrated.lastIndexOf(':') + 1))).toBe(fixture.now);
  });

  it('the legacy data key is in the keyring as `<legacyKid>.data`, retiring, and never encrypts', async () => {
    const core = await setup(fixture.jwtSecret);
    const kid = `${await legacyKid(fixture.jwtSecret)}.data`;
    expect(core.keys.snapshot().record(kid)?.state).toBe('retiring');
    expect(createDataCipher(core).kidOf(createDataCipher(core).encrypt('x'))).not.toBe(kid);
  });

  it('without the JWT secret the value cannot be read: fernet_token_invalid', async () => {
    const core = await setup();
    const err = (() => {
      try {
        readLegacySecret(core, fixture.stored);
      } catch (e) {
        return e;
      }
    })();
    expect(isKeywardError(err, 'fernet_token_invalid')).toBe(true);
    expect(
      isKeywardError(
        (() => {
          try {
            readLegacySecret(core, 'not base64 at all!');
          } catch (e) {
            return e;
          }
        })(),
        'fernet_token_invalid',
      ),
    ).toBe(true);
  });

  it.runIf(hasPython)('reads and migrates a value Python encrypts now with a random JWT_SECRET', async () => {
    const secret = randomBytes(24).toString('base64');
    const script = [
      'import base64, hashlib, sys',
      'from cryptography.fernet import Fernet',
      'key = base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest())',
      'print(base64.b64encode(Fernet(key).encrypt("xoxb-ünïcode-token".encode())).decode())',
    ].join('\n');
    const out = spawnSync(python, ['-c', script, secret], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    const stored = out.stdout.trim();
    const core = await setup(secret);
    expect(readLegacySecret(core, stored)).toBe('xoxb-ünïcode-token');
    expect(createDataCipher(core).decryptString(migrateLegacySecret(core, stored))).toBe(
      'xoxb-ünïcode-token',
    );
  });
});
