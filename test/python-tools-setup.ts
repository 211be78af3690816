/**
 * Once per test run (integration and conformance projects): the project-local Python virtual
 * environment with the PVE clients nobody here wrote (proxmoxer, Ansible with
 * community.proxmox), made by the project's own script. The script is idempotent: the first
 * run installs (a few minutes), later runs only compare a checksum.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The bin directory of .tools/venv: python, ansible-playbook. */
    pythonBin: string;
  }
}

const script = fileURLToPath(new URL('../scripts/python-venv.sh', import.meta.url));

export default async function setup(project: TestProject): Promise<void> {
  // stderr passes through, so a first run says it is installing.
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`scripts/python-venv.sh failed (exit ${code}); see its output above`);
  project.provide('pythonBin', stdout.trim().split('\n').at(-1)!);
}
