/**
 * `npm run bench -- <scenario> [flags]`: runs one benchmark scenario and prints its report.
 * Every scenario measures its own baseline in the same run and writes JSON with `--json FILE`.
 */
type Scenario = (argv: string[]) => Promise<void>;

const scenarios: Record<string, () => Promise<Scenario>> = {
  engine: async () => (await import('./engine-bench.js')).run,
  'kafka-journal': async () => (await import('./kafka-journal.js')).run,
  http: async () => (await import('./http.js')).run,
  moderation: async () => (await import('./moderation.js')).run,
  projection: async () => (await import('./projection.js')).run,
  'moderation-load': async () => (await import('./moderation-load.js')).run,
  recovery: async () => (await import('./recovery.js')).run,
  cluster: async () => (await import('./cluster.js')).run,
};
// The suite's scenarios (bench/suite.ts): Stockade beside the designs a user would pick instead.
for (const name of ['flash', 'steady', 'lifecycle', 'ws', 'read', 'rate', 'all'])
  scenarios[name] = async () => {
    const { runSuite } = await import('./suite.js');
    return (argv) => runSuite(name, argv);
  };

async function main(): Promise<void> {
  const [name, ...rest] = process.argv.slice(2);
  if (!name || name === '--help' || !(name in scenarios)) {
    const known = Object.keys(scenarios).join(', ');
    process.stderr.write(
      `usage: npm run bench -- <scenario> [--json FILE] [...]\nscenarios: ${known}\n`,
    );
    process.exit(name && name !== '--help' ? 2 : 0);
  }
  const run = await scenarios[name]();
  await run(rest);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
