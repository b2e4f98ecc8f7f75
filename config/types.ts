/** The validated, frozen configuration every part of Stockade reads. See `fields.ts`. */
export interface EngineSettings {
  readonly shards: number;
  readonly shardThreads: 'auto' | 'workers' | 'inline';
  readonly shardQueueMax: number;
  readonly batchSizeMax: number;
  readonly qtyMax: number;
  readonly holdTtlMsDefault: number;
  readonly timerTickMs: number;
  readonly eventsBufferMax: number;
}

export type JournalKind = 'file' | 'kafka' | 'none';

export interface JournalSettings {
  readonly kind: JournalKind;
  readonly dir: string;
  readonly durability: 'fsync' | 'os';
  readonly preallocBytes: number;
  readonly restartDelayMs: number;
}

export interface KafkaSettings {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly clientId: string;
  readonly appendTimeoutMs: number;
  readonly connectionTimeoutMs: number;
  readonly replicationFactor: number;
  readonly requireReplication: boolean;
  readonly fencing: boolean;
  readonly messageBytesMax: number;
  readonly fetchBytesMax: number;
}

export interface ClusterSettings {
  readonly enabled: boolean;
  readonly nodeId: string;
  readonly listen: string;
  readonly advertise: string;
  readonly secret: string;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly forwardTimeoutMs: number;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LogSettings {
  readonly level: LogLevel;
}

export interface ModerationSettings {
  readonly modelDir: string;
  readonly threads: number;
  readonly intraOpThreads: number;
  readonly priority: 'idle' | 'low' | 'normal';
  readonly queueMax: number;
  readonly taskTimeoutMs: number;
  readonly batchSizeMax: number;
  readonly batchWaitMs: number;
  readonly maxBytes: number;
  readonly maxPixels: number;
  readonly unsafeLabels: readonly string[];
  readonly reviewThreshold: number;
  readonly blockThreshold: number;
}

export type GatewayAuth = 'jwt' | 'none';

export interface GatewaySettings {
  readonly port: number;
  readonly host: string;
  readonly threads: number;
  readonly threadPorts: 'shared' | 'consecutive';
  readonly bodyBytesMax: number;
  readonly bodyTimeoutMs: number;
  readonly inflightMax: number;
  readonly wsConnectionsMax: number;
  readonly wsIdleTimeoutS: number;
  readonly wsBackpressureBytesMax: number;
  readonly wsStockUpdatesPerS: number;
  readonly skusTrackedMax: number;
  readonly auth: GatewayAuth;
  readonly jwtSecret: string;
  readonly jwtPublicKey: string;
  readonly jwtLeewayS: number;
  readonly rateLimitPerS: number;
  readonly rateLimitBurst: number;
  readonly rateLimitUsersMax: number;
  readonly rateLimitStore: 'memory' | 'redis';
}

export interface AuditSettings {
  readonly enabled: boolean;
  readonly bufferMax: number;
  readonly batchMax: number;
  readonly flushMs: number;
  readonly ttlDays: number;
  readonly collection: string;
}

export interface ProductsSettings {
  readonly enabled: boolean;
  readonly moderation: boolean;
  readonly requireModeration: boolean;
  readonly cacheTtlS: number;
  readonly cacheKeyPrefix: string;
}

export interface ProjectionSettings {
  readonly mysql: boolean;
  readonly batchEventsMax: number;
  readonly flushMs: number;
  readonly retryMsMax: number;
  readonly skuCacheMax: number;
}

export interface UrlSettings {
  readonly url: string;
}

export interface StockadeConfig {
  readonly engine: EngineSettings;
  readonly journal: JournalSettings;
  readonly kafka: KafkaSettings;
  readonly cluster: ClusterSettings;
  readonly log: LogSettings;
  readonly moderation: ModerationSettings;
  readonly gateway: GatewaySettings;
  readonly mysql: UrlSettings;
  readonly redis: UrlSettings;
  readonly mongo: UrlSettings;
  readonly projection: ProjectionSettings;
  readonly products: ProductsSettings;
  readonly audit: AuditSettings;
}

/** Any subset of the configuration, as accepted by overrides and JSON files. */
export type ConfigInput = {
  [S in keyof StockadeConfig]?: { -readonly [K in keyof StockadeConfig[S]]?: StockadeConfig[S][K] };
};
