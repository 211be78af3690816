/**
 * The `pm` process: real stdin/stdout/stderr around runPm.
 *   PM_URL=http://127.0.0.1:8080 PM_TOKEN=... npx pm ops --pending
 */
import { createInterface } from 'node:readline/promises';
import { runPm } from './pm.js';

async function prompt(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}

const code = await runPm(process.argv.slice(2), {
  env: process.env,
  stdout: { write: (text) => void process.stdout.write(text), isTTY: Boolean(process.stdout.isTTY) },
  stderr: { write: (text) => void process.stderr.write(text), isTTY: Boolean(process.stderr.isTTY) },
  prompt,
});
process.exitCode = code;
