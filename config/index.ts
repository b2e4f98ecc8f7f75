export {
  loadConfig,
  withOverrides,
  checkField,
  splitList,
  ConfigError,
  CONFIG_FILE_ENV,
} from './load.js';
export type { LoadConfigOptions } from './load.js';
export { configFields } from './fields.js';
export { redactedUrl } from './redact.js';
export type { FieldSpec, FieldKind } from './field.js';
export type * from './types.js';
export {
  configTableMarkdown,
  withConfigTable,
  CONFIG_TABLE_START,
  CONFIG_TABLE_END,
} from './docs.js';
export {
  OPTIONAL_PACKAGES,
  MissingPackageError,
  requirePackages,
  loadPackage,
} from './optional-package.js';
export type { OptionalPackage } from './optional-package.js';
