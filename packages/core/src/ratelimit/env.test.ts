import { describe, expect, it } from 'vitest';
import { keywardOptionsFromEnv } from '../options.js';

describe('KEYWARD_RATE_LIMIT* (regression #11: the examples configure the limiter from the environment)', () => {
  it('reads off, login and refresh limits', () => {
    expect(keywardOptionsFromEnv({}).rateLimit).toBeUndefined();
    expect(keywardOptionsFromEnv({ KEYWARD_RATE_LIMIT: 'off' }).rateLimit).toBe(false);
    expect(keywardOptionsFromEnv({ KEYWARD_RATE_LIMIT: 'on' }).rateLimit).toBeUndefined();
    expect(
      keywardOptionsFromEnv({ KEYWARD_RATE_LIMIT_LOGIN: '5/50/300', KEYWARD_RATE_LIMIT_REFRESH: 'off' })
        .rateLimit,
    ).toEqual({ login: { perUser: 5, perAddress: 50, windowSec: 300 }, refresh: false });
    expect(keywardOptionsFromEnv({ KEYWARD_RATE_LIMIT_REFRESH: '30/60' }).rateLimit).toEqual({
      refresh: { perAddress: 30, windowSec: 60 },
    });
  });

  it('refuses malformed values with config_invalid', () => {
    for (const env of [
      { KEYWARD_RATE_LIMIT: 'maybe' },
      { KEYWARD_RATE_LIMIT_LOGIN: '5/50' },
      { KEYWARD_RATE_LIMIT_LOGIN: '5/-1/60' },
      { KEYWARD_RATE_LIMIT_REFRESH: '1.5/60' },
    ]) {
      expect(() => keywardOptionsFromEnv(env)).toThrow(expect.objectContaining({ code: 'config_invalid' }));
    }
  });
});
