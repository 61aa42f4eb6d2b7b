import { fileURLToPath } from 'node:url';
import { describeAdapterContract, startExampleProcess } from '../../packages/testing/src/index.js';

const example = fileURLToPath(new URL('../../examples/nestjs', import.meta.url));

for (const [platform, redisDb] of [
  ['express', 4],
  ['fastify', 5],
] as const) {
  describeAdapterContract(`nestjs (${platform})`, {
    start: (env) => startExampleProcess(example, { ...env, NEST_PLATFORM: platform }),
    redisDb,
  });
}
