// ESLint flat config. `npm run lint` fails CI on any error reported here.
//
// Type-aware linting is deliberately off: it needs a full TypeScript program per run and would
// make lint several times slower on a 2-core machine, while the checks we rely on (unused names,
// `any`, strict equality and the purity of node/src/core) are all syntactic.
const { defineConfig, globalIgnores } = require('eslint/config');
const { builtinModules } = require('node:module');
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

const TS_SOURCES = [
  'node/src/**/*.ts',
  'client/src/**/*.ts',
  'cli/src/**/*.ts',
  'operator/src/**/*.ts',
  'test/**/*.ts',
  'bench/**/*.ts',
];
const TEST_FILES = ['**/*.test.ts', 'test/**/*.ts'];

// Every Node builtin, with and without the `node:` scheme, including subpaths such as
// `fs/promises` (builtinModules lists those too). The core must do no I/O of any kind.
const BUILTIN_NAMES = builtinModules
  .filter((name) => !name.startsWith('_'))
  .map((name) => name.replace(/^node:/, ''));

const CORE_PURITY_MESSAGE =
  'node/src/core is pure and deterministic: time, randomness, timers and I/O come in as arguments.';

const OPERATOR_CORE_MESSAGE =
  'operator/src/core is pure and deterministic: the clock, randomness and the Kubernetes API stay in the adapters.';

// The core may never reach up (see docs/architecture.md). dependency-cruiser checks resolved
// paths exactly; these patterns catch the same mistakes in the editor. They assume the core is
// one flat directory: from node/src/core/x.ts, `../<name>` is a top-level module of node/src
// (server, config, log, ...) and `../../` leaves node/src altogether.
const OUTSIDE_CORE_PATTERNS = [
  { regex: '(^|/)(storage|transport|cluster|api)(/|$)', message: 'node/src/core may not import the layers above it.' },
  { regex: '^\\.\\./[^/]+$', message: 'node/src/core may not import the wiring or other top-level modules of node/src.' },
  { regex: '^\\.\\./\\.\\./', message: 'node/src/core may not import anything outside node/src/core.' },
];

module.exports = defineConfig([
  globalIgnores(['dist/**', 'node_modules/**', 'coverage/**', 'data/**', 'bench/results/**', 'bench/.venv/**']),

  {
    files: TS_SOURCES,
    extends: [js.configs.recommended, tseslint.configs.recommended],
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      // `x == null` is the one loose comparison allowed: it reads as "null or undefined".
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },

  {
    // Tests may use `any` to poke at malformed inputs on purpose.
    files: TEST_FILES,
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },

  {
    // The few CommonJS configuration files at the repository root.
    files: ['*.js', '*.cjs'],
    extends: [js.configs.recommended],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly' },
    },
  },

  {
    // The purity wall around node/src/core: no builtins, no upper layers, no clock, no randomness,
    // no timers, no process. Tests in the core obey the same rules, so they stay deterministic.
    files: ['node/src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^node:', message: CORE_PURITY_MESSAGE },
            { regex: `^(${BUILTIN_NAMES.map(escapeRegex).join('|')})(/|$)`, message: CORE_PURITY_MESSAGE },
            ...OUTSIDE_CORE_PATTERNS,
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...['setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'clearTimeout', 'clearInterval', 'clearImmediate',
          'process', 'performance', 'require', 'fetch', 'crypto', 'Buffer', 'global', '__dirname', '__filename']
          .map((name) => ({ name, message: CORE_PURITY_MESSAGE })),
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: CORE_PURITY_MESSAGE },
        { object: 'Math', property: 'random', message: CORE_PURITY_MESSAGE },
        { object: 'performance', property: 'now', message: CORE_PURITY_MESSAGE },
        { object: 'globalThis', message: CORE_PURITY_MESSAGE },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: `new Date() reads the clock. ${CORE_PURITY_MESSAGE}` },
        { selector: "CallExpression[callee.name='Date']", message: `Date() reads the clock. ${CORE_PURITY_MESSAGE}` },
        { selector: "CallExpression[callee.name='require']", message: CORE_PURITY_MESSAGE },
        { selector: 'ImportExpression', message: `Dynamic import() is I/O. ${CORE_PURITY_MESSAGE}` },
        { selector: 'TSExternalModuleReference', message: `import = require() is I/O. ${CORE_PURITY_MESSAGE}` },
      ],
    },
  },
  {
    // The purity wall around operator/src/core, the same rules as node/src/core's: the CRD
    // schema, the builders and the scaling state machine are functions of their arguments, so
    // the choreography is table-tested and a decision replays exactly. Only one directory
    // (operator/src/kube) talks to the Kubernetes API; dependency-cruiser checks that part.
    files: ['operator/src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^node:', message: OPERATOR_CORE_MESSAGE },
            { regex: `^(${BUILTIN_NAMES.map(escapeRegex).join('|')})(/|$)`, message: OPERATOR_CORE_MESSAGE },
            { regex: '^@kubernetes/', message: OPERATOR_CORE_MESSAGE },
            { regex: '^\\.\\./', message: 'operator/src/core may not import anything outside operator/src/core.' },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...['setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'clearTimeout', 'clearInterval', 'clearImmediate',
          'process', 'performance', 'require', 'fetch', 'crypto', 'Buffer', 'global', '__dirname', '__filename']
          .map((name) => ({ name, message: OPERATOR_CORE_MESSAGE })),
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: OPERATOR_CORE_MESSAGE },
        { object: 'Math', property: 'random', message: OPERATOR_CORE_MESSAGE },
        { object: 'performance', property: 'now', message: OPERATOR_CORE_MESSAGE },
        { object: 'globalThis', message: OPERATOR_CORE_MESSAGE },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: `new Date() reads the clock. ${OPERATOR_CORE_MESSAGE}` },
        { selector: "CallExpression[callee.name='Date']", message: `Date() reads the clock. ${OPERATOR_CORE_MESSAGE}` },
        { selector: "CallExpression[callee.name='require']", message: OPERATOR_CORE_MESSAGE },
        { selector: 'ImportExpression', message: `Dynamic import() is I/O. ${OPERATOR_CORE_MESSAGE}` },
        { selector: 'TSExternalModuleReference', message: `import = require() is I/O. ${OPERATOR_CORE_MESSAGE}` },
      ],
    },
  },
]);

function escapeRegex(text) {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
