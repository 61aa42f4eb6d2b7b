import { describe, expect, it } from 'vitest';
import { expectKeywardError } from '../../../testing/src/errors.js';
import type { KeywardError } from '../errors.js';
import {
  algorithmFor,
  computeVerifyUntil,
  formatDuration,
  parseDuration,
  resolveRotationPolicy,
  rotationPeriod,
  validateRotationPolicy,
} from './rotation-policy.js';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;

const configError = (fn: () => unknown) => expectKeywardError<KeywardError>(fn, 'config_invalid');

describe('parseDuration', () => {
  it.each([
    ['90d', 90 * DAY],
    ['15m', 15 * MIN],
    ['1h', 60 * MIN],
    ['30s', 30_000],
    ['250ms', 250],
    ['2w', 14 * DAY],
    [' 1.5h ', 90 * MIN],
    [1234, 1234],
  ])('%j → %d ms', (input, ms) => {
    expect(parseDuration(input, 'x')).toBe(ms);
  });

  it.each(['', '15', 'fifteen minutes', '10 years', '-5m', '1e3s', '5m5s'])(
    'rejects %j naming the option',
    (input) => {
      const err = configError(() => parseDuration(input, 'maxTokenTtl'));
      expect(err.message).toContain('maxTokenTtl');
      expect(err.details).toEqual({ option: 'maxTokenTtl' });
    },
  );

  it.each([Number.NaN, Number.POSITIVE_INFINITY, -1])('rejects the number %d', (input) => {
    expect(configError(() => parseDuration(input, 'grace')).message).toContain('grace');
  });

  it('does not echo an arbitrarily long garbage string', () => {
    const err = configError(() => parseDuration('x'.repeat(500), 'publishLead'));
    expect(err.message.length).toBeLessThan(200);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [26 * MIN, '26m'],
    [90_000, '1m30s'],
    [DAY + 6 * 60 * MIN, '1d6h'],
    [1500, '1s500ms'],
    [-5 * MIN, '-5m'],
  ])('%d → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('resolveRotationPolicy', () => {
  it('fills documented defaults', () => {
    const p = resolveRotationPolicy();
    expect(p).toEqual({
      sigRotateEvery: 90 * DAY,
      encRotateEvery: 90 * DAY,
      dataRotateEvery: 30 * DAY,
      publishLead: DAY,
      maxTokenTtl: 15 * MIN,
      clockSkew: MIN,
      jwksMaxAge: 10 * MIN,
      grace: 5 * MIN,
      retainFor: 31 * MIN,
      signingAlg: 'ES256',
      uses: ['sig', 'enc', 'data'],
      maxRetiringKeys: 5,
      retiredRetention: 30 * DAY,
    });
    expect(Object.isFrozen(p)).toBe(true);
  });

  it('bounds the keyring: maxRetiringKeys is a whole number ≥ 1, retiredRetention a positive duration', () => {
    expect(resolveRotationPolicy({ maxRetiringKeys: 2, retiredRetention: '7d' })).toMatchObject({
      maxRetiringKeys: 2,
      retiredRetention: 7 * DAY,
    });
    for (const bad of [0, 1.5, -1, Number.NaN])
      expect(configError(() => resolveRotationPolicy({ maxRetiringKeys: bad })).details).toEqual({
        option: 'maxRetiringKeys',
      });
    expect(configError(() => resolveRotationPolicy({ retiredRetention: 0 })).details).toEqual({
      option: 'retiredRetention',
    });
  });

  it('lets enc follow sig and derives retainFor from the configured parts', () => {
    const p = resolveRotationPolicy({ sigRotateEvery: '30d', maxTokenTtl: '1h', grace: 0 });
    expect(p.encRotateEvery).toBe(30 * DAY);
    expect(p.retainFor).toBe(60 * MIN + MIN + 10 * MIN);
  });

  it('keeps a chosen alg, Ed25519 (RFC 9864) and EdDSA each as given', () => {
    expect(resolveRotationPolicy({ signingAlg: 'Ed25519' }).signingAlg).toBe('Ed25519');
    expect(resolveRotationPolicy({ signingAlg: 'EdDSA' }).signingAlg).toBe('EdDSA');
    expect(resolveRotationPolicy({ signingAlg: 'RS256' }).signingAlg).toBe('RS256');
  });

  it('rejects garbage durations naming the option', () => {
    expect(configError(() => resolveRotationPolicy({ dataRotateEvery: 'monthly' })).message).toMatch(
      /^dataRotateEvery must be/,
    );
  });
});

describe('validateRotationPolicy', () => {
  const base = resolveRotationPolicy();

  it('refuses a publishLead shorter than the JWKS cache age, with the numbers', () => {
    const err = configError(() => validateRotationPolicy({ ...base, publishLead: 5 * MIN }));
    expect(err.message).toBe('publishLead (5m) must be at least jwksMaxAge (10m)');
    expect(err.details).toEqual({ option: 'publishLead' });
  });

  it('refuses a retainFor shorter than token life + skew + JWKS cache age', () => {
    const err = configError(() => validateRotationPolicy({ ...base, retainFor: 20 * MIN }));
    expect(err.message).toBe('retainFor (20m) must be ≥ maxTokenTtl + clockSkew + jwksMaxAge (26m)');
  });

  it('refuses a retainFor set explicitly below a raised maxTokenTtl', () => {
    expect(() => resolveRotationPolicy({ maxTokenTtl: '1h', retainFor: '30m' })).toThrow(
      'retainFor (30m) must be ≥ maxTokenTtl + clockSkew + jwksMaxAge (1h11m)',
    );
  });

  it.each(['sigRotateEvery', 'encRotateEvery', 'dataRotateEvery'] as const)(
    'refuses %s not longer than publishLead',
    (option) => {
      const err = configError(() => validateRotationPolicy({ ...base, [option]: 12 * 60 * MIN }));
      expect(err.message).toBe(`${option} (12h) must be longer than publishLead (1d)`);
    },
  );

  it('lists every problem at once', () => {
    const err = configError(() => validateRotationPolicy({ ...base, publishLead: MIN, retainFor: MIN }));
    expect(err.message).toContain('publishLead (1m)');
    expect(err.message).toContain('retainFor (1m)');
  });

  it.each([
    ['maxTokenTtl', 0, 'maxTokenTtl must be positive, got 0'],
    ['jwksMaxAge', -1, 'jwksMaxAge must be positive, got -1'],
    ['clockSkew', -1, 'clockSkew must be non-negative, got -1'],
    ['publishLead', Number.NaN, 'publishLead must be finite, got NaN'],
    ['sigRotateEvery', Number.POSITIVE_INFINITY, 'sigRotateEvery must be finite, got Infinity'],
  ] as const)('refuses %s = %d', (option, value, message) => {
    expect(configError(() => validateRotationPolicy({ ...base, [option]: value })).message).toContain(
      message,
    );
  });

  it('accepts zero clock skew and zero grace', () => {
    expect(() => resolveRotationPolicy({ clockSkew: 0, grace: 0 })).not.toThrow();
  });

  it('refuses an unknown signing algorithm and unknown or repeated uses', () => {
    expect(
      configError(() => validateRotationPolicy({ ...base, signingAlg: 'none' as 'EdDSA' })).message,
    ).toMatch(/^signingAlg must be one of ES256, EdDSA, Ed25519,/);
    expect(() => resolveRotationPolicy({ uses: ['sig', 'jwe' as 'enc'] })).toThrow('uses must list only');
    expect(() => resolveRotationPolicy({ uses: ['sig', 'sig'] })).toThrow('uses must not repeat');
  });
});

describe('policy helpers', () => {
  const p = resolveRotationPolicy({ signingAlg: 'ES256' });
  it('computes verifyUntil as rotation time + retainFor', () => {
    expect(computeVerifyUntil(1_000_000, p)).toBe(1_000_000 + 31 * MIN);
  });
  it('gives each use its rotation period and algorithm', () => {
    expect([rotationPeriod(p, 'sig'), rotationPeriod(p, 'enc'), rotationPeriod(p, 'data')]).toEqual([
      90 * DAY,
      90 * DAY,
      30 * DAY,
    ]);
    expect([algorithmFor('sig', p), algorithmFor('enc', p), algorithmFor('data', p)]).toEqual([
      'ES256',
      'A256GCM',
      'fernet',
    ]);
  });
});
