/**
 * Rehearse on your own inventory: a simulated copy of a real cluster, with the whole stack
 * (Temporal, worker, API) and a ready configuration pinned to it, so any operation can be
 * tried on the copy first.
 *
 *   npm run rehearse -- --dump cluster-resources.json      # pvesh get /cluster/resources --output-format json
 *   npm run rehearse -- --from-env home [--config FILE]     # reads the environment, GETs only
 *     [--out data/rehearse] [--prepare-only] [-- <scripts/demo.sh options>]
 *
 * It writes the inventory (`--from-env`) and the list of everything the import had to guess to
 * the output directory, prints the guesses, then starts scripts/dev-stack.ts on the inventory:
 * the demo's stack, with its configuration (per-node TLS and SSH pins, tokens) under
 * `<out>/stack/demo/`. `--prepare-only` stops after writing the files.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../lib/config/load.js';
import { createPveClientForEnvironment } from '../lib/pve/client.js';
import { readRehearsalInventory } from '../lib/rehearsal.js';
import { importInventory } from '../sim/scenario-import.js';
import { ScenarioError } from '../sim/scenario.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const usage = `usage: npm run rehearse -- (--dump FILE | --from-env NAME [--config FILE]) [--out DIR] [--prepare-only] [-- demo options]
  --dump FILE       a cluster/resources dump: pvesh get /cluster/resources --output-format json > FILE
  --from-env NAME   read environment NAME of the configuration (PM_CONFIG or --config) with GETs only:
                    resources, guest configs, storage contents, HA rules
  --out DIR         where the inventory, the guesses and the stack's data go (default data/rehearse)
  --prepare-only    write the files and stop; start the copy later with ./scripts/demo.sh --scenario <inventory>
  after --, options for scripts/demo.sh (--speed N, --api-port N, ...)`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const split = argv.indexOf('--');
  const { values } = parseArgs({
    args: split === -1 ? argv : argv.slice(0, split),
    options: {
      dump: { type: 'string' },
      'from-env': { type: 'string' },
      config: { type: 'string' },
      out: { type: 'string', default: 'data/rehearse' },
      'prepare-only': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (Boolean(values.dump) === Boolean(values['from-env']))
    throw new UsageError(`give --dump FILE or --from-env NAME\n${usage}`);
  const out = resolve(values.out);
  await mkdir(out, { recursive: true });

  let inventoryPath: string;
  if (values.dump) {
    inventoryPath = resolve(values.dump);
  } else {
    inventoryPath = join(out, 'inventory.json');
    const name = values['from-env']!;
    const config = loadConfig(values.config ? resolve(values.config) : undefined);
    const env = config.environments[name];
    if (!env)
      throw new UsageError(`--from-env: no environment '${name}' (${Object.keys(config.environments).join(', ')})`);
    console.log(`==> Reading environment '${name}' (GETs only)`);
    const client = await createPveClientForEnvironment(env);
    try {
      await writeFile(inventoryPath, `${JSON.stringify(await readRehearsalInventory(client))}\n`, { mode: 0o600 });
    } finally {
      await client.close();
    }
  }

  const { scenario, guesses } = importInventory(JSON.parse(await readFile(inventoryPath, 'utf8')), {}, inventoryPath);
  const guessesPath = join(out, 'guesses.txt');
  await writeFile(guessesPath, guesses.map((g) => `- ${g}\n`).join(''));
  console.log(
    `==> Inventory ${shown(inventoryPath)}: ${scenario.nodes.length} nodes, ${scenario.guests.length} guests, ${scenario.storages.length} storages`,
  );
  console.log(`==> Guessed (also in ${shown(guessesPath)}):`);
  for (const g of guesses) console.log(`  - ${g}`);
  if (values['prepare-only']) {
    console.log(`==> Start the copy with: ./scripts/demo.sh --scenario ${shown(inventoryPath)}`);
    return 0;
  }

  const demoArgs = split === -1 ? [] : argv.slice(split + 1);
  const stack = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'scripts/dev-stack.ts'),
      '--scenario',
      inventoryPath,
      '--data-dir',
      join(out, 'stack'),
      ...demoArgs,
    ],
    { cwd: repoRoot, stdio: 'inherit' },
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => stack.kill(signal));
  return new Promise((done) => stack.on('exit', (code) => done(code ?? 1)));
}

function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') ? path : rel;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError || err instanceof ScenarioError || err instanceof ConfigError)
      console.error(err.message);
    else console.error(err);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
