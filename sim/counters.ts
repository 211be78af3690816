/**
 * What the simulator was asked to do, so reliability tests can prove that nothing ran twice:
 * API calls per endpoint (and per guest), tasks per type (and per guest).
 */
export interface CounterSnapshot {
  /** `<endpoint name>` and `<endpoint name>:<vmid>` -> calls. */
  calls: Record<string, number>;
  /** `<task type>` and `<task type>:<id>` -> tasks started. */
  tasks: Record<string, number>;
  /** `<node>` -> SSH commands run, and `<node>:<program>` (e.g. `pve01:qm`). */
  ssh: Record<string, number>;
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

export class Counters {
  readonly #calls = new Map<string, number>();
  readonly #tasks = new Map<string, number>();
  readonly #ssh = new Map<string, number>();

  recordCall(endpoint: string, vmid?: number): void {
    bump(this.#calls, endpoint);
    if (vmid !== undefined) bump(this.#calls, `${endpoint}:${vmid}`);
  }

  recordTask(type: string, id: string): void {
    bump(this.#tasks, type);
    if (id) bump(this.#tasks, `${type}:${id}`);
  }

  recordSsh(node: string, program: string): void {
    bump(this.#ssh, node);
    bump(this.#ssh, `${node}:${program}`);
  }

  /** API calls to an endpoint (by its lib/pve/registry.ts name), optionally for one guest. */
  calls(endpoint: string, vmid?: number): number {
    return this.#calls.get(vmid === undefined ? endpoint : `${endpoint}:${vmid}`) ?? 0;
  }

  /** Tasks of a type started (e.g. `qmigrate`), optionally for one guest. */
  tasks(type: string, vmid?: number | string): number {
    return this.#tasks.get(vmid === undefined ? type : `${type}:${vmid}`) ?? 0;
  }

  sshCommands(node: string, program?: string): number {
    return this.#ssh.get(program === undefined ? node : `${node}:${program}`) ?? 0;
  }

  snapshot(): CounterSnapshot {
    return {
      calls: Object.fromEntries(this.#calls),
      tasks: Object.fromEntries(this.#tasks),
      ssh: Object.fromEntries(this.#ssh),
    };
  }

  reset(): void {
    this.#calls.clear();
    this.#tasks.clear();
    this.#ssh.clear();
  }
}
