/**
 * The `stockade` command (the entry point is stockade.ts): `serve`, where everything is wired
 * together, and the operator commands `tail`, `migrate` and `project`.
 */
export { tail, TAIL_USAGE } from './tail.js';
export type { TailOptions } from './tail.js';
export { migrateCommand, MIGRATE_USAGE } from './migrate.js';
export { crowd, crowdCommand, CROWD_USAGE } from './crowd.js';
export type { CrowdReport } from './crowd.js';
export { projectCommand, PROJECT_USAGE, projectorFromConfig } from './project.js';
export type { CommandOptions } from './command.js';
export { servedShardThreads } from './shard-threads.js';
export { CatalogService } from './catalog-service.js';
export type { CatalogOptions } from './catalog-service.js';
export { openCatalog } from './open-catalog.js';
export type { OpenCatalog } from './open-catalog.js';
