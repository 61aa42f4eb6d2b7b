/** One check of an `application/health+json` report (draft-inadarei-api-health-check). */
export interface HealthCheck {
  componentId?: string;
  componentType?: string;
  status: HealthStatus;
  observedValue?: number | string;
  observedUnit?: string;
  time?: string;
  output?: string;
}

/** `pass`, `warn` or `fail`. */
export type HealthStatus = 'pass' | 'warn' | 'fail';

/** An `application/health+json` report. */
export interface HealthReport {
  status: HealthStatus;
  version?: string;
  serviceId?: string;
  description?: string;
  checks: Record<string, HealthCheck[]>;
}
