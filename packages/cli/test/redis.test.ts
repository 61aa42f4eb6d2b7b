import { expect, it } from 'vitest';
import { describeWithRedis, dropRedisPrefix, redisTestUrl, uniquePrefix } from '../../testing/src/redis.js';
import { buildOnce, keyward, tempDir } from './cli.js';
import { describeImportLegacy } from './import-legacy.js';
import { describeKeyCommands, type StoreTarget } from './key-commands.js';
import { describeServiceCommands } from './service-commands.js';

function onRedis(): StoreTarget {
  const url = redisTestUrl()!;
  const prefix = `{${uniquePrefix('cli')}}`;
  const { dir, cleanup } = tempDir();
  return {
    args: ['--dir', dir, '--redis', url, '--redis-prefix', prefix],
    dir,
    keywardOptions: { dir, redisUrl: url, redisPrefix: prefix },
    async cleanup() {
      await dropRedisPrefix(url, prefix);
      cleanup();
    },
  };
}

describeWithRedis('redis', () => {
  describeKeyCommands('redis', onRedis);
  describeServiceCommands('redis', onRedis);
  describeImportLegacy('redis', onRedis);

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
