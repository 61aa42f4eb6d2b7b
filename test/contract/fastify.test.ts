import { fileURLToPath } from 'node:url';
import { describeAdapterContract, startExampleProcess } from '../../packages/testing/src/index.js';

const example = fileURLToPath(new URL('../../examples/fastify', import.meta.url));

describeAdapterContract('fastify', { start: (env) => startExampleProcess(example, env), redisDb: 2 });
