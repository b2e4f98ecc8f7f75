/**
 * Validates a `ModerationSettings` object where the pool is created. `loadConfig()` has checked
 * each field already, but tests and embedders may build settings by hand, and the rules that
 * tie fields together (and to the machine) can only be checked here.
 */
import { availableParallelism } from 'node:os';
import { checkField, configFields, ConfigError } from '../config/index.js';
import type { ModerationSettings } from '../config/index.js';
import type { ModelSpec } from './model-dir.js';

const fields = configFields.filter((f) => f.key.startsWith('moderation.'));

/**
 * Throws a `ConfigError` naming the offending keys. `cores` defaults to
 * `os.availableParallelism()`; pass the CPU quota when the process is limited by a cgroup.
 */
export function validateModerationSettings(
  s: ModerationSettings,
  cores = availableParallelism(),
): void {
  for (const f of fields) {
    const name = f.key.slice('moderation.'.length) as keyof ModerationSettings;
    checkField(f, s[name], '');
  }
  // Each worker's session runs intraOpThreads threads flat out; more than the cores in total
  // only adds context switches, and it would starve the gateway and shard threads.
  const total = s.threads * s.intraOpThreads;
  if (total > cores) {
    throw new ConfigError(
      `config.moderation.threads × config.moderation.intraOpThreads must be at most the ` +
        `${cores} available cores, got ${s.threads} × ${s.intraOpThreads} = ${total}`,
    );
  }
  if (s.reviewThreshold > s.blockThreshold) {
    throw new ConfigError(
      `config.moderation.reviewThreshold (${s.reviewThreshold}) must not exceed ` +
        `config.moderation.blockThreshold (${s.blockThreshold})`,
    );
  }
  if (s.unsafeLabels.length === 0) {
    // An empty list would allow every image: fail closed rather than moderate nothing.
    throw new ConfigError('config.moderation.unsafeLabels must name at least one label');
  }
}

/** The unsafe labels must exist in the model, or a typo would silently allow everything. */
export function unsafeIndicesOf(s: ModerationSettings, model: ModelSpec): number[] {
  return s.unsafeLabels.map((label) => {
    const i = model.labels.indexOf(label);
    if (i < 0) {
      throw new ConfigError(
        `config.moderation.unsafeLabels names '${label}', which the model in ${model.dir} ` +
          `does not have; its labels are: ${model.labels.join(', ')}`,
      );
    }
    return i;
  });
}
