/**
 * One configuration setting: where it lives, what it accepts, its default, the environment
 * variable that sets it and a sentence of documentation. The whole configuration is a table of
 * these; validation, env parsing and the README's config table are all read from it.
 */
export type FieldKind = 'int' | 'number' | 'string' | 'enum' | 'bool' | 'list';

export interface FieldSpec {
  /** Dotted path in the configuration object, e.g. `engine.shards`. */
  readonly key: string;
  readonly kind: FieldKind;
  /** Inclusive bounds for `int` and `number`; length bounds for `string`. */
  readonly min?: number;
  readonly max?: number;
  /** Accepted values for `enum`. */
  readonly values?: readonly string[];
  /** Extra rule for `string` values, with a description used in error messages. */
  readonly pattern?: RegExp;
  readonly patternDoc?: string;
  /** Default value, or a function of the machine (e.g. CPU count). */
  readonly default: unknown;
  readonly env: string;
  readonly doc: string;
}

export function field(spec: FieldSpec): FieldSpec {
  return spec;
}
