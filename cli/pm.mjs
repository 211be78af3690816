#!/usr/bin/env node
// The `pm` bin: loads tsx so cli/main.ts runs from source, as `npm run pm` does.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
