// The optional peer dependencies: their ranges are package.json's, and a missing one is named
// with the command that installs it.
import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  MissingPackageError,
  OPTIONAL_PACKAGES,
  loadPackage,
  requirePackages,
} from '../../config/index.js';

const manifest = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};

t.test(
  'every optional package is an optional peer, installed for the project itself',
  async (t) => {
    t.same(manifest.peerDependencies, OPTIONAL_PACKAGES, 'the same packages and ranges');
    for (const name of Object.keys(OPTIONAL_PACKAGES)) {
      t.equal(manifest.peerDependenciesMeta[name]?.optional, true, `${name} is optional`);
      t.equal(
        manifest.devDependencies[name],
        manifest.peerDependencies[name],
        `${name}: npm ci installs it for the project's own tests and server`,
      );
      t.notOk(name in manifest.dependencies, `${name} is not installed for an embedder`);
    }
  },
);

t.test('a missing package is named, with the command that installs it', async (t) => {
  const e = new MissingPackageError(['kafkajs'], 'The Kafka journal');
  t.equal(e.code, 'package_missing');
  t.equal(e.retriable, false);
  t.equal(
    e.message,
    'The Kafka journal needs the package kafkajs, not installed: npm install kafkajs@2.2.4',
  );
  const two = new MissingPackageError(['piscina', 'sharp'], 'Image moderation');
  t.match(
    two.message,
    /needs the packages piscina, sharp, not installed: npm install piscina@\S+ sharp@\S+$/,
  );
  // Installed here: nothing is thrown, and the module is the package's.
  t.doesNotThrow(() => requirePackages(['kafkajs', 'sharp'], 'x'));
  t.type(loadPackage<{ Kafka: unknown }>('kafkajs', 'x').Kafka, 'function');
});
