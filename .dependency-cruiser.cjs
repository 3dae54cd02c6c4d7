// dependency-cruiser rules: the module-level half of the layering check (ESLint guards the
// syntax inside node/src/core; this file guards which files may import which).
//
// Layers, lowest first; imports only point down (docs/architecture.md):
//   core -> storage -> transport -> cluster -> api -> wiring (node/src/*.ts: server, main, ...)
// client/ and cli/ talk to nodes over HTTP only, so neither side imports the other.
//
// Type-only imports count too (tsPreCompilationDeps): a type from an upper layer in the core is
// still a dependency on that layer's design.

const CORE = '^node/src/core/';
const OPERATOR_CORE = '^operator/src/core/';
const TEST_FILE = '\\.test\\.ts$';
// Modules directly in node/src are the wiring (server.ts, main.ts, clusterWiring.ts, config.ts)
// and the API's helpers (log.ts, metrics.ts): all above storage, transport and cluster.
const TOP_LEVEL = '^node/src/[^/]+\\.ts$';
const ABOVE_STORAGE = ['^node/src/(transport|cluster|api)/', TOP_LEVEL];
const ABOVE_TRANSPORT = ['^node/src/(cluster|api)/', TOP_LEVEL];
const ABOVE_CLUSTER = ['^node/src/api/', TOP_LEVEL];
// The one node module the client may import: pure (core), and the definition of key placement.
const CLIENT_SHARED_CORE = '^node/src/core/partition\\.ts$';
// The API may use the logger, the metrics registry and the configuration types, nothing else of the wiring.
const API_HELPERS = '^node/src/(log|metrics|config)\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'core-is-self-contained',
      comment: 'node/src/core is pure: it may import only other core modules (no packages, no other layers).',
      severity: 'error',
      from: { path: CORE, pathNot: TEST_FILE },
      to: { pathNot: CORE },
    },
    {
      name: 'core-tests-are-self-contained',
      comment: 'Core tests may add only the property-testing library to what the core itself may import.',
      severity: 'error',
      from: { path: `${CORE}.*${TEST_FILE}` },
      to: { pathNot: [CORE, '(^|/)node_modules/fast-check/'] },
    },
    {
      name: 'core-no-node-builtins',
      comment: 'node/src/core does no I/O, so it never imports a Node builtin, not even in tests.',
      severity: 'error',
      from: { path: CORE },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'storage-below-transport',
      comment: 'Storage is below transport, cluster, api and the server wiring.',
      severity: 'error',
      from: { path: '^node/src/storage/' },
      to: { path: ABOVE_STORAGE },
    },
    {
      name: 'transport-below-cluster',
      comment: 'Transport is below cluster, api and the server wiring.',
      severity: 'error',
      from: { path: '^node/src/transport/' },
      to: { path: ABOVE_TRANSPORT },
    },
    {
      name: 'cluster-below-api',
      comment: 'Cluster coordination is below the HTTP API and the server wiring.',
      severity: 'error',
      from: { path: '^node/src/cluster/' },
      to: { path: ABOVE_CLUSTER },
    },
    {
      name: 'api-below-server',
      comment: 'The API never reaches into the wiring that builds it (log, metrics and config types excepted).',
      severity: 'error',
      from: { path: '^node/src/api/' },
      to: { path: TOP_LEVEL, pathNot: API_HELPERS },
    },
    {
      name: 'node-not-to-client-or-cli',
      comment: 'The node does not depend on its own client or CLI.',
      severity: 'error',
      from: { path: '^node/' },
      to: { path: '^(client|cli)/' },
    },
    {
      name: 'client-not-to-node-or-cli',
      comment:
        'The client talks HTTP only; it must not import node internals or the CLI. One exception: the pure partition module, ' +
        'so a partition-aware client hashes keys exactly as the nodes do (a copy of the hash could drift).',
      severity: 'error',
      from: { path: '^client/' },
      to: { path: '^(node|cli)/', pathNot: CLIENT_SHARED_CORE },
    },
    {
      name: 'cli-not-to-node',
      comment: 'The CLI talks HTTP through the client and starts nodes as processes; it never imports node internals.',
      severity: 'error',
      from: { path: '^cli/' },
      to: { path: '^node/' },
    },
    {
      name: 'operator-core-is-self-contained',
      comment: 'operator/src/core is pure: the CRD schema, builders and state machine import only each other.',
      severity: 'error',
      from: { path: OPERATOR_CORE, pathNot: TEST_FILE },
      to: { pathNot: OPERATOR_CORE },
    },
    {
      name: 'operator-core-tests-are-self-contained',
      comment: 'Operator core tests may add only the property-testing library to what the core may import.',
      severity: 'error',
      from: { path: `${OPERATOR_CORE}.*${TEST_FILE}` },
      to: { pathNot: [OPERATOR_CORE, '(^|/)node_modules/fast-check/'] },
    },
    {
      name: 'operator-core-no-node-builtins',
      comment: 'operator/src/core does no I/O, so it never imports a Node builtin, not even in tests.',
      severity: 'error',
      from: { path: OPERATOR_CORE },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'operator-one-module-talks-to-kubernetes',
      comment: 'Only operator/src/kube talks to the Kubernetes API; the reconciler sees it through that module.',
      severity: 'error',
      from: { path: '^operator/', pathNot: '^operator/src/kube/' },
      to: { path: '(^|/)node_modules/@kubernetes/' },
    },
    {
      name: 'operator-talks-http-to-nodes',
      comment: 'The operator drives nodes through their admin API over HTTP; it never imports node, client or CLI code.',
      severity: 'error',
      from: { path: '^operator/' },
      to: { path: '^(node|client|cli)/' },
    },
    {
      name: 'nothing-imports-the-operator',
      comment: 'The node, client and CLI do not depend on the operator.',
      severity: 'error',
      from: { path: '^(node|client|cli)/' },
      to: { path: '^operator/' },
    },
    {
      name: 'no-circular',
      comment: 'A runtime import cycle makes load order matter and layers meaningless. Type-only cycles are erased at compile time and allowed.',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'no-unresolvable',
      comment: 'An import that cannot be resolved would also escape every rule above.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['main', 'types', 'typings'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
