export { describeWithRedis, redisTestUrl, uniquePrefix } from './redis.js';
export { describeStoreContract, type StoreContractFactory } from './store-contract.js';
