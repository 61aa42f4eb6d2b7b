export { createHealth, type HealthCallOptions, type HealthOptions } from './health.js';
export type { HealthCheck, HealthReport, HealthStatus } from './types.js';
