import { afterEach, expect, it } from 'vitest';
import { createApiKeyService } from '../apikeys/service.js';
import type { KeywardCore } from '../core.js';
import { SECRETS_REWRAP_TARGET } from '../secrets/service.js';
import { makeCore } from './__fixtures__/core.js';
import { createRewrapJob } from './rewrap.js';

const cores: KeywardCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

// Regression: API keys are hashed under a data key's pepper and cannot be rewrapped (only the
// holder knows the secret); retiring that data key would lock every such key out.
it('keeps a data key retiring while live API keys are still hashed under it', async () => {
  const { core } = await makeCore();
  cores.push(core);
  const apiKeys = await createApiKeyService(core);
  const created = await apiKeys.create({ owner: 'alice', name: 'ci' });
  const oldKid = core.keys.snapshot().dataKey().kid;
  await core.keys.rotate({ use: 'data' });

  const first = await createRewrapJob(core, { ...SECRETS_REWRAP_TARGET, settleMs: 0 }).run();
  expect(first.retired).toEqual([]);
  expect(first.remainingByKid).toEqual({ [oldKid]: 1 });
  expect(core.keys.list().find((r) => r.kid === oldKid)?.state).toBe('retiring');
  expect((await apiKeys.verify(created.key)).owner).toBe('alice'); // still works, and is rehashed

  const second = await createRewrapJob(core, { ...SECRETS_REWRAP_TARGET, settleMs: 0 }).run();
  expect(second.retired).toEqual([oldKid]);
  expect((await apiKeys.verify(created.key)).owner).toBe('alice');
});
