import { describeWithRedis, dropRedisPrefix, redisTestUrl, uniquePrefix } from '../../testing/src/redis.js';
import { tempDir } from './cli.js';
import { describeKeyImport } from './key-import.js';

describeKeyImport('embedded store', () => {
  const { dir, cleanup } = tempDir();
  return { args: ['--dir', dir], dir, keywardOptions: { dir }, cleanup };
});

describeWithRedis('redis', () => {
  describeKeyImport('redis', () => {
    const url = redisTestUrl()!;
    const prefix = `{${uniquePrefix('cli-import')}}`;
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
  });
});
