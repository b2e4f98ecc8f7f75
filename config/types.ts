/** The validated, frozen configuration every part of Stockade reads. See `fields.ts`. */
export interface EngineSettings {
  readonly shards: number;
  readonly shardQueueMax: number;
  readonly batchSizeMax: number;
  readonly qtyMax: number;
  readonly holdTtlMsDefault: number;
  readonly timerTickMs: number;
  readonly eventsBufferMax: number;
}

export type JournalKind = 'none';

export interface JournalSettings {
  readonly kind: JournalKind;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LogSettings {
  readonly level: LogLevel;
}

export interface ModerationSettings {
  readonly modelDir: string;
  readonly threads: number;
  readonly intraOpThreads: number;
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

export interface StockadeConfig {
  readonly engine: EngineSettings;
  readonly journal: JournalSettings;
  readonly log: LogSettings;
  readonly moderation: ModerationSettings;
}

/** Any subset of the configuration, as accepted by overrides and JSON files. */
export type ConfigInput = {
  [S in keyof StockadeConfig]?: { -readonly [K in keyof StockadeConfig[S]]?: StockadeConfig[S][K] };
};
