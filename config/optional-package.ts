import { createRequire } from 'node:module';

/**
 * The packages Stockade uses only for a feature that is configured: optional peer dependencies
 * (package.json), so that an embedder's `npm install stockade` brings the engine and the file
 * journal and nothing native. Each is loaded where its feature starts; a feature whose package
 * is missing fails at once, naming the package and the command that installs it. The ranges
 * are package.json's `peerDependencies` (a test keeps them equal).
 */
export const OPTIONAL_PACKAGES = {
  '@trufflesuite/uws-js-unofficial': '^20.30.0-unofficial.0',
  kafkajs: '2.2.4',
  mysql2: '^3.24.6',
  mongodb: '^6.22.0',
  ioredis: '^5.11.1',
  'onnxruntime-node': '^1.30.0',
  sharp: '^0.35.5',
  piscina: '^5.3.2',
} as const;

export type OptionalPackage = keyof typeof OPTIONAL_PACKAGES;

/** A configured feature needs a package that is not installed. */
export class MissingPackageError extends Error {
  readonly code = 'package_missing';
  readonly retriable = false;
  constructor(
    readonly packages: readonly OptionalPackage[],
    feature: string,
    options?: { cause?: unknown },
  ) {
    const install = packages.map((p) => `${p}@${OPTIONAL_PACKAGES[p]}`).join(' ');
    super(
      `${feature} needs ${packages.length === 1 ? 'the package' : 'the packages'} ` +
        `${packages.join(', ')}, not installed: npm install ${install}`,
      options,
    );
    this.name = 'MissingPackageError';
  }
}

const require = createRequire(import.meta.url);

/** Throws MissingPackageError unless every one of `packages` can be loaded. */
export function requirePackages(packages: readonly OptionalPackage[], feature: string): void {
  const missing = packages.filter((name) => {
    try {
      require.resolve(name);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) throw new MissingPackageError(missing, feature);
}

/** Loads a CommonJS optional package, or throws MissingPackageError naming it. */
export function loadPackage<T>(name: OptionalPackage, feature: string, subpath = ''): T {
  requirePackages([name], feature);
  return require(`${name}${subpath}`) as T;
}
