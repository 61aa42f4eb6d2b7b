/** A stored secret's metadata (never its value). */
export interface SecretInfo {
  name: string;
  description?: string;
  updatedAt: number;
}

/** Secrets per owner, Fernet-encrypted under the active data key. Values never reach a log. */
export interface SecretService {
  put(owner: string, name: string, value: string, options?: { description?: string }): Promise<void>;
  /** The value, or `undefined` when absent. */
  get(owner: string, name: string): Promise<string | undefined>;
  list(owner: string): Promise<SecretInfo[]>;
  /** Resolves false when absent. */
  delete(owner: string, name: string): Promise<boolean>;
}
