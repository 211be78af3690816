/**
 * Once per test run (integration and conformance projects): the project-local Python virtual
 * environment with the PVE clients nobody here wrote (proxmoxer, Ansible with
 * community.proxmox), made by the project's own script. The script is idempotent: the first
 * run installs (a few minutes), later runs only compare a checksum.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The bin directory of .tools/venv: python, ansible-playbook. */
    pythonBin: string;
  }
}

const script = fileURLToPath(new URL('../scripts/python-venv.sh', import.meta.url));

export default async function setup(project: TestProject): Promise<void> {
  const { stdout } = await promisify(execFile)('bash', [script], { maxBuffer: 1024 * 1024 });
  project.provide('pythonBin', stdout.trim().split('\n').at(-1)!);
}
