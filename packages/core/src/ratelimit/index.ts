export {
  createRateLimiter,
  DEFAULT_RATE_LIMITS,
  type RateLimitDecision,
  type RateLimitedRoute,
  type RateLimiter,
  type RateLimiterOptions,
  type RateLimitOptions,
  type RateLimitRule,
  type RateLimitSubject,
  resolveRateLimits,
} from './limiter.js';
