/** The MySQL/MariaDB projection: schema migrations, the pool, the projector. */
export { MIGRATIONS, migrate } from './migrations.js';
export type { Migration } from './migrations.js';
export { openMysqlPool, withDatabase } from './pool.js';
export type { MysqlPoolOptions } from './pool.js';
export { ProjectionError } from './projection-error.js';
export type { ProjectionErrorCode } from './projection-error.js';
export { migrateCommand, MIGRATE_USAGE } from './migrate-command.js';
export type { CommandOptions } from '../command.js';
export { MysqlProjector } from './projector.js';
export type { MysqlProjectorOptions, ProjectorStats, ShardLag } from './projector.js';
export { foldSku, sameCounters, FoldError } from './sku-fold.js';
export type { SkuRow, ReservationRow, ReservationStatus } from './sku-fold.js';
export { projectCommand, PROJECT_USAGE, projectorFromConfig } from './project-command.js';
