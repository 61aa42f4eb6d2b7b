import type { Keyward } from '@keyward/core';
import { Inject, Injectable } from '@nestjs/common';
import { KEYWARD } from './keyward.constants.js';

/** A result in @nestjs/terminus's `HealthIndicatorResult` shape. */
export type KeywardHealthResult = Record<
  string,
  { status: 'up' | 'down'; keyward: 'pass' | 'warn' | 'fail'; checks: Record<string, unknown> }
>;

/**
 * A health indicator for @nestjs/terminus (without importing it): `up` while keyward's readiness
 * is `pass` or `warn`, `down` on `fail`. Terminus reports a `down` result as an error (503).
 *
 * @example
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.keyward.isHealthy('keyward')]) }
 * ```
 */
@Injectable()
export class KeywardHealthIndicator {
  constructor(@Inject(KEYWARD) private readonly kw: Pick<Keyward, 'health'>) {}

  async isHealthy(key = 'keyward'): Promise<KeywardHealthResult> {
    const report = await this.kw.health({ ready: true });
    const status = report.status === 'fail' ? 'down' : 'up';
    return { [key]: { status, keyward: report.status, checks: report.checks } };
  }
}
