import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { describeWithRedis, redisTestUrl, uniquePrefix } from '../../testing/src/redis.js';
import { buildOnce, keyward, tempDir } from './cli.js';
import { describeKeyCommands } from './key-commands.js';

function deletePrefix(url: string, prefix: string): void {
  const keys = spawnSync('redis-cli', ['-u', url, '--scan', '--pattern', `${prefix}*`], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean);
  if (keys.length > 0) spawnSync('redis-cli', ['-u', url, 'DEL', ...keys]);
}

describeWithRedis('redis', () => {
  describeKeyCommands('redis', () => {
    const url = redisTestUrl()!;
    const prefix = `{${uniquePrefix('cli')}}`;
    const { dir, cleanup } = tempDir();
    return {
      args: ['--dir', dir, '--redis', url, '--redis-prefix', prefix],
      dir,
      cleanup() {
        deletePrefix(url, prefix);
        cleanup();
      },
    };
  });

  it('an unreachable Redis is store_unavailable in one line, without the URL', async () => {
    await buildOnce();
    const { dir, cleanup } = tempDir();
    try {
      const key = (await keyward(['fernet', 'generate-key'])).stdout.trim();
      const result = await keyward(
        ['--dir', dir, '--redis', 'redis://:hunter2@127.0.0.1:1', 'keys', 'list'],
        {
          env: { KEYWARD_MASTER_KEY: key },
        },
      );
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain('[store_unavailable]');
      expect(result.stderr).not.toContain('hunter2');
    } finally {
      cleanup();
    }
  });
});
