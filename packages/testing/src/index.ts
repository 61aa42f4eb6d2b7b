export {
  type AdapterContractTarget,
  describeAdapterContract,
  expectProblem,
  type Reply,
  type RunningApp,
  startExampleProcess,
} from './adapter-contract.js';
export {
  AUTH_OPTIONS_REALM,
  AUTH_OPTIONS_TOKEN_HEADER,
  AUTH_OPTIONS_USERS,
  type AuthOptionsApp,
  type AuthOptionsMode,
  authOptionsHook,
  describeAuthOptionsContract,
} from './adapter-contract-auth-options.js';
export { codeOf, expectKeywardError } from './errors.js';
export { startTestIdp, type TestIdp, type TestIdpKey, type TestIdpMode } from './idp.js';
export { describeWithPostgres, postgresTestUrl } from './postgres.js';
export { describeWithRedis, dropRedisPrefix, redisTestUrl, uniquePrefix } from './redis.js';
export {
  type RedisNode,
  startCluster,
  startSentinels,
  type TestCluster,
  type TestSentinels,
  testPort,
} from './redis-ha.js';
export { describeStoreContract, type StoreContractFactory } from './store-contract.js';
export { freePort, hasTool, python } from './tools.js';
