/**
 * Faults of the MySQL projection and its migrations (codes in the one catalogue, actors/errors.ts).
 */
import { StockadeError } from '../../actors/index.js';

export type ProjectionErrorCode =
  'projection_unavailable' | 'projection_corrupt' | 'migration_locked' | 'migration_unsupported';

export class ProjectionError extends StockadeError<ProjectionErrorCode> {
  constructor(code: ProjectionErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ProjectionError';
  }
}
