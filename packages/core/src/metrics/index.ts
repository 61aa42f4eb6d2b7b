export {
  type Alert,
  type AlertName,
  type AlertRules,
  type Alerts,
  type AlertsOptions,
  createAlerts,
  DEFAULT_ALERT_RULES,
} from './alerts.js';
export {
  type AuditStatsSource,
  createKeywardMetrics,
  type KeywardMetrics,
  type KeywardMetricsOptions,
  SYNC_LAG_BUCKETS,
  VERIFY_LATENCY_BUCKETS,
} from './metrics.js';
export type { AlertWebhookOptions, WebhookDelivery } from './webhook.js';
