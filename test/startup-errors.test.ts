import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyward, MasterKey } from '../packages/core/src/index.js';

const OLD = MasterKey.generate();
const NEW = MasterKey.generate();

/** Runs an example until it exits on its own (or is killed once it listens), with only `env`. */
function runExample(
  name: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('KEYWARD_') && k !== 'REDIS_URL' && k !== 'DATABASE_URL' && k !== 'JWT_SECRET',
    ),
  );
  const child = spawn(process.execPath, ['--conditions=@keyward/source', '--import', 'tsx', 'src/main.ts'], {
    cwd: fileURLToPath(new URL(`../examples/${name}`, import.meta.url)),
    env: { ...inherited, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
    if (stdout.includes('listening on')) child.kill('SIGKILL');
  });
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('an example started with only the old master key after a rekey', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-startup-'));
    const options = { dir, logger: false as const, audit: false as const, scheduler: false as const };
    const old = await createKeyward({ ...options, masterKey: OLD.exportText() });
    await old.close();
    const rolled = await createKeyward({
      ...options,
      masterKey: NEW.exportText(),
      previousMasterKeys: [OLD.exportText()],
    });
    await rolled.keys.rekey();
    await rolled.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const name of ['express', 'fastify', 'hono', 'nestjs']) {
    it(`${name}: refuses to start with one line naming master_key_mismatch, no stack trace`, async () => {
      const result = await runExample(name, { KEYWARD_DIR: dir, KEYWARD_MASTER_KEY: OLD.exportText() });
      expect(result.code).toBe(1);
      expect(result.stdout).not.toContain('listening on');
      const lines = result.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^keyward: the keyring was sealed by master key mk_\w+, .*\[master_key_mismatch\]$/,
      );
      expect(result.stderr).not.toContain(OLD.exportText());
    });
  }

  it('express: starts with the new key and the old one as previous, and with the new key alone', async () => {
    const both: Record<string, string> = {
      KEYWARD_MASTER_KEY: NEW.exportText(),
      KEYWARD_MASTER_KEY_PREVIOUS: OLD.exportText(),
    };
    for (const env of [both, { KEYWARD_MASTER_KEY: NEW.exportText() }]) {
      const result = await runExample('express', { KEYWARD_DIR: dir, ...env });
      expect(result.stdout, result.stderr).toContain('listening on');
    }
  });
});

describe('regression #11: an example with a bad configuration prints one line with the code and exits non-zero', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kw-startup-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const masterKey = MasterKey.generate().exportText();
  for (const name of ['express', 'fastify', 'hono', 'nestjs']) {
    for (const [variable, value, code] of [
      ['LOG_LEVEL', 'loud', 'config_invalid'],
      ['KEYWARD_SIGNING_ALG', 'none', 'alg_unsupported'],
      // Read by keywardOptionsFromEnv() itself (it threw before createKeyward: an uncaught stack).
      ['KEYWARD_LEGACY_SIGNING', 'maybe', 'config_invalid'],
      // Cookie mode is read beside them: a bad cookie name is the same one line.
      ['KEYWARD_COOKIE', 'bad name;', 'config_invalid'],
    ] as const) {
      it(`${name}: an invalid ${variable} is one line naming ${code}, no stack trace`, async () => {
        const result = await runExample(name, {
          KEYWARD_DIR: dir,
          KEYWARD_MASTER_KEY: masterKey,
          [variable]: value,
        });
        expect(result.code).toBe(1);
        expect(result.stdout).not.toContain('listening on');
        const lines = result.stderr.trim().split('\n');
        expect(lines, result.stderr).toHaveLength(1);
        expect(lines[0]).toMatch(new RegExp(`^keyward: .*\\[${code}\\]$`));
        expect(result.stderr).not.toMatch(/\n\s+at |node_modules/);
        expect(result.stderr).not.toContain(masterKey);
      });
    }
  }

  it('nestjs: an invalid NEST_PLATFORM is one line, no stack trace', async () => {
    const result = await runExample('nestjs', {
      KEYWARD_DIR: dir,
      KEYWARD_MASTER_KEY: masterKey,
      NEST_PLATFORM: 'koa',
    });
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^keyward: .*NEST_PLATFORM/);
  });

  it('LOG_LEVEL is honoured: "error" silences the warning of a generated master key, "warn" keeps it', async () => {
    // Without KEYWARD_MASTER_KEY, keyward generates one in the directory and warns about it.
    const warned = async (level: string) => {
      const fresh = mkdtempSync(join(tmpdir(), 'kw-startup-level-'));
      try {
        const result = await runExample('express', { KEYWARD_DIR: fresh, LOG_LEVEL: level });
        expect(result.stdout, result.stderr).toContain('listening on');
        return result.stdout
          .split('\n')
          .filter((line) => line.includes('"name":"keyward"') && line.includes('"level":40')).length;
      } finally {
        rmSync(fresh, { recursive: true, force: true });
      }
    };
    expect(await warned('warn')).toBeGreaterThan(0);
    expect(await warned('error')).toBe(0);
  });
});
