import { describe, expect, it } from 'vitest';
import { timelineModel } from '../ui/timeline.js';
import type { KeyRow, Plan } from '../ui/types.js';

const DAY = 86_400_000;
const now = Date.parse('2026-06-01T00:00:00Z');
const iso = (t: number) => new Date(t).toISOString();

describe('timelineModel', () => {
  it("draws each key's pending, active and retiring spans from the keyring and the planner's steps", () => {
    const keys: KeyRow[] = [
      {
        kid: 'old',
        use: 'sig',
        alg: 'ES256',
        state: 'retiring',
        createdAt: iso(now - 60 * DAY),
        activatedAt: iso(now - 60 * DAY),
        verifyUntil: iso(now + DAY),
      },
      {
        kid: 'cur',
        use: 'sig',
        alg: 'ES256',
        state: 'active',
        createdAt: iso(now - 40 * DAY),
        activatedAt: iso(now - 30 * DAY),
      },
      {
        kid: 'next',
        use: 'sig',
        alg: 'ES256',
        state: 'pending',
        createdAt: iso(now - 2 * DAY),
        activatedAt: iso(now + 10 * DAY),
      },
      { kid: 'gone', use: 'sig', alg: 'ES256', state: 'revoked', createdAt: iso(now - 90 * DAY) },
    ];
    const plan: Plan = {
      from: iso(now),
      horizonDays: 120,
      steps: [
        { at: iso(now), actions: [], jwksKids: ['cur', 'next', 'old'] },
        { at: iso(now + DAY), actions: [{ type: 'retire', kid: 'old' }], jwksKids: ['cur', 'next'] },
        {
          at: iso(now + 10 * DAY),
          actions: [
            { type: 'activate', kid: 'next', use: 'sig', demote: 'cur', verifyUntil: iso(now + 11 * DAY) },
            { type: 'generate', use: 'sig', alg: 'ES256', activateAt: iso(now + 40 * DAY) },
          ],
          jwksKids: ['next', 'sim-sig-1', 'cur'],
        },
        {
          at: iso(now + 11 * DAY),
          actions: [{ type: 'retire', kid: 'cur' }],
          jwksKids: ['next', 'sim-sig-1'],
        },
      ],
    };
    const model = timelineModel(keys, plan);
    expect(model.now).toBe(now);
    expect(model.end).toBe(now + 120 * DAY);
    const row = (kid: string) => model.rows.find((r) => r.kid === kid);
    expect(row('gone')).toBeUndefined();
    const spans = (kid: string) => row(kid)?.spans.map((s) => [s.state, s.from, s.to]);
    // The retiring key: active until its successor took over, retiring until the planner retires it.
    expect(spans('old')).toEqual([
      ['active', now - 60 * DAY, now - 30 * DAY],
      ['retiring', now - 30 * DAY, now + DAY],
    ]);
    expect(spans('cur')).toEqual([
      ['active', now - 30 * DAY, now + 10 * DAY],
      ['retiring', now + 10 * DAY, now + 11 * DAY],
    ]);
    expect(spans('next')).toEqual([
      ['pending', now - 2 * DAY, now + 10 * DAY],
      ['active', now + 10 * DAY, now + 120 * DAY],
    ]);
    // The key the planner will create: pending from its step to the horizon, shown as planned.
    expect(row('planned sig key 1')).toMatchObject({ planned: true });
    expect(spans('planned sig key 1')).toEqual([['pending', now + 10 * DAY, now + 120 * DAY]]);
    expect(model.rotations).toEqual([{ at: now + 10 * DAY, label: 'sig: next signs' }]);
    // The picture starts at the earliest activation, at most half the horizon back.
    expect(model.start).toBe(now - 60 * DAY);
    expect(timelineModel(keys, { ...plan, horizonDays: 30 }).start).toBe(now - 15 * DAY);
  });
});
