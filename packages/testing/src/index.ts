export { describeWithRedis, redisTestUrl, uniquePrefix } from './redis.js';
