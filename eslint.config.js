/**
 * Lint rules that catch bugs a type-check does not; layout is Prettier's job (.prettierrc.json),
 * so no rule here is about style.
 *
 * - Everywhere: ESLint's and typescript-eslint's recommended sets, plus the type-aware promise
 *   rules: a promise nobody awaits loses its error (an activity "done" before its write is), and
 *   a promise passed where a plain callback is expected is never awaited by its caller.
 * - workflows/: workflow code runs in Temporal's deterministic sandbox and is replayed after
 *   every worker restart, so it may not import Node built-ins, the Temporal client/worker/activity
 *   SDKs, HTTP/SSH libraries, or any module of ours that does I/O. Those are reached only through
 *   activities, whose *types* a workflow imports (`import type`), never their code.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

const nodeBuiltins = builtinModules.filter((name) => !name.startsWith('_'));

/** Packages whose code must never run inside a workflow. */
const nonDeterministicPackages = [
  ...nodeBuiltins,
  ...nodeBuiltins.map((name) => `node:${name}`),
  '@temporalio/activity',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/testing',
  'undici',
  'ssh2',
  '@hono/node-server',
];

/**
 * Modules of ours that do I/O (or need Node) themselves: every lib/ file that imports one of the
 * packages above. Computed, so a new or renamed module is covered without editing this file;
 * the workflow bundler catches what they import indirectly, at bundle time.
 */
const importsNonDeterministic = new RegExp(
  String.raw`from '(?:${nonDeterministicPackages.map((name) => name.replace(/[/.]/g, '\\$&')).join('|')})'`,
);
const ioLibModules = readdirSync('lib', { recursive: true, encoding: 'utf8' })
  .filter((file) => file.endsWith('.ts') && importsNonDeterministic.test(readFileSync(`lib/${file}`, 'utf8')))
  .map((file) => `**/lib/${file.replace(/\.ts$/, '.js')}`)
  .sort();

export default defineConfig(
  globalIgnores(['node_modules/', '.tools/', 'data/', 'coverage/', 'test/fixtures/']),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // `let [, key, value] = match` where only `key` is reassigned stays one declaration.
      'prefer-const': ['error', { destructuring: 'all' }],
      // `_`-prefixed parameters name a position a callback signature requires.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Every worker registers the keep-alive interceptor: worker/create.ts is the one place that builds one.
      'no-restricted-properties': [
        'error',
        { object: 'Worker', property: 'create', message: 'Build workers with createWorker() from worker/create.ts.' },
      ],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nonDeterministicPackages.map((name) => ({
            name,
            message: 'Workflow code is replayed in a deterministic sandbox: do I/O in an activity.',
          })),
          patterns: [
            {
              group: ['**/activities/**', '**/api/**', '**/worker/**', '**/sim/**', ...ioLibModules],
              allowTypeImports: true,
              message:
                'This module does I/O or needs Node: a workflow calls it through proxyActivities and imports only its types (`import type`).',
            },
          ],
        },
      ],
    },
  },
  {
    // Tests type API answers loosely on purpose: the assertions check their shape.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Files outside tsconfig.json (the `pm` bin shim) get the rules that need no type information.
    files: ['**/*.mjs', '**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
