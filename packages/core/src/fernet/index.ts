export { Fernet, type FernetDecryptOptions, type FernetEncryptOptions } from './fernet.js';
export { decodeLegacySecretValue, encodeLegacySecretValue, legacyFernetKey } from './legacy.js';
export { MultiFernet } from './multi.js';
