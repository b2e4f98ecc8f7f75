/**
 * Faults of the MySQL projection. The codes are in the one catalogue (engine/errors.ts), which
 * persistence/ may not import; as with `JournalError`, branch on `code`, never on `instanceof`.
 */
export type ProjectionErrorCode =
  | 'projection_unavailable'
  | 'projection_corrupt'
  | 'migration_locked'
  | 'migration_unsupported';

const RETRIABLE: Record<ProjectionErrorCode, boolean> = {
  projection_unavailable: true,
  projection_corrupt: false,
  migration_locked: true,
  migration_unsupported: false,
};

export class ProjectionError extends Error {
  readonly code: ProjectionErrorCode;
  readonly retriable: boolean;
  constructor(code: ProjectionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProjectionError';
    this.code = code;
    this.retriable = RETRIABLE[code];
  }
}
