import { fileURLToPath } from 'node:url';
import { describeAdapterContract, startExampleProcess } from '../../packages/testing/src/index.js';

const example = fileURLToPath(new URL('../../examples/hono', import.meta.url));

describeAdapterContract('hono', { start: (env) => startExampleProcess(example, env), redisDb: 4 });
