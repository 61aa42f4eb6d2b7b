import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { hasTool, python as pythonBin } from '../../testing/src/tools.js';
import { buildOnce, keyward } from './cli.js';

const python = (code: string, input: string) =>
  spawnSync(pythonBin, ['-c', code], { input, encoding: 'utf8' });

describe('keyward fernet', () => {
  beforeAll(buildOnce);

  it('generate-key, encrypt and decrypt round-trip text and stdin bytes', async () => {
    const key = (await keyward(['fernet', 'generate-key'])).stdout.trim();
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    const token = (await keyward(['fernet', 'encrypt', '--key', key, 'hello world'])).stdout.trim();
    const plain = await keyward(['fernet', 'decrypt', '--ttl', '60', token], { env: { FERNET_KEY: key } });
    expect(plain.stdout).toBe('hello world');
    const fromStdin = await keyward(['fernet', 'encrypt', '--key', key], { input: 'line\n' });
    const back = await keyward(['fernet', 'decrypt', '--key', key, '-'], { input: fromStdin.stdout });
    expect(back.stdout).toBe('line\n');
  });

  it.runIf(hasTool('python-cryptography'))(
    "interoperates with Python's cryptography.fernet both ways",
    async () => {
      const key = (await keyward(['fernet', 'generate-key'])).stdout.trim();
      const ours = (await keyward(['fernet', 'encrypt', '--key', key, 'from node'])).stdout.trim();
      const read = python(
        'import sys; from cryptography.fernet import Fernet; k, t = sys.stdin.read().split(); print(Fernet(k).decrypt(t.encode()).decode(), end="")',
        `${key} ${ours}`,
      );
      expect(read.stdout).toBe('from node');
      const theirs = python(
        'import sys; from cryptography.fernet import Fernet; print(Fernet(sys.stdin.read().strip()).encrypt(b"from python").decode())',
        key,
      ).stdout.trim();
      expect((await keyward(['fernet', 'decrypt', '--key', key, theirs])).stdout).toBe('from python');
    },
  );

  it('a malformed token, a wrong key or a bad key exit 1 with one line and no key material', async () => {
    const key = (await keyward(['fernet', 'generate-key'])).stdout.trim();
    const other = (await keyward(['fernet', 'generate-key'])).stdout.trim();
    const token = (await keyward(['fernet', 'encrypt', '--key', key, 'x'])).stdout.trim();
    const cases = [
      { args: ['fernet', 'decrypt', '--key', key, 'not-a-token'], code: /fernet_token_invalid/ },
      { args: ['fernet', 'decrypt', '--key', other, token], code: /fernet_token_invalid/ },
      { args: ['fernet', 'encrypt', '--key', 'short', 'x'], code: /fernet_key_invalid|config_invalid/ },
    ];
    for (const c of cases) {
      const result = await keyward(c.args);
      expect(result.code, c.args.join(' ')).not.toBe(0);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(c.code);
      expect(result.stderr).not.toContain(key);
      expect(result.stdout).toBe('');
    }
    const noKey = await keyward(['fernet', 'encrypt', 'x']);
    expect(noKey.code).toBe(2);
  });
});

describe('keyward --help', () => {
  beforeAll(buildOnce);

  it('every command has help with an example', async () => {
    const commands = [
      ['init'],
      ['keys', 'list'],
      ['keys', 'rotate'],
      ['keys', 'revoke'],
      ['keys', 'plan'],
      ['jwks'],
      ['fernet', 'generate-key'],
      ['fernet', 'encrypt'],
      ['fernet', 'decrypt'],
      ['backup'],
      ['restore'],
      ['import-legacy'],
      ['apikeys', 'create'],
      ['apikeys', 'list'],
      ['apikeys', 'revoke'],
      ['secrets', 'rewrap'],
      ['audit', 'tail'],
      ['audit', 'verify'],
    ];
    const results = await Promise.all(commands.map((command) => keyward([...command, '--help'])));
    results.forEach((result, i) => {
      const name = commands[i]!.join(' ');
      expect(result.code, name).toBe(0);
      expect(result.stdout, name).toMatch(/Examples?:\n\s+\$ (\S+=\S+ )*keyward /);
      expect(result.stdout, name).toContain('--dir');
    });
  });

  it('a usage error exits 2 with one line', async () => {
    const result = await keyward(['keys', 'rotate', '--use', 'everything']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
