import { fileURLToPath } from 'node:url';
import { describeAdapterContract, startExampleProcess } from '../../packages/testing/src/index.js';

const example = fileURLToPath(new URL('../../examples/express', import.meta.url));

describeAdapterContract('express', { start: (env) => startExampleProcess(example, env), redisDb: 1 });
