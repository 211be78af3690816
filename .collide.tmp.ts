import { createActivities } from './activities/index.js';
import { createMigrationActivities } from './activities/migration.js';
const deps = { config: {} as never, pve: (() => {}) as never, audit: {} as never, sshTarget: (() => {}) as never };
const a = Object.keys(createActivities(deps as never));
const m = Object.keys(createMigrationActivities(deps as never));
console.log('collisions', m.filter((k) => a.includes(k)), 'migration', m);
