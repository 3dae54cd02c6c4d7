/**
 * The pure part of `dynamokv dev`: option validation and each node's command line.
 */
import { UsageError } from './args';
import { banner, cliInvocation, devNodes, devOptionsFrom, nodeArgs } from './devPlan';

const BIN = '/repo/dist/node/src/main.js';

test('defaults: 3 nodes on 8080.. and 9080.., N=3, data under ./data, the built node binary', () => {
  const options = devOptionsFrom({}, '/home/u/proj', BIN);
  expect(options).toMatchObject({ nodes: 3, portBase: 8080, peerPortBase: 9080, replication: 3, dataDir: '/home/u/proj/data', nodeBin: BIN, quiet: false });
  expect(devNodes(options).map((n) => [n.id, n.url, n.peerPort, n.dataDir])).toEqual([
    ['n1', 'http://127.0.0.1:8080', 9080, '/home/u/proj/data/n1'],
    ['n2', 'http://127.0.0.1:8081', 9081, '/home/u/proj/data/n2'],
    ['n3', 'http://127.0.0.1:8082', 9082, '/home/u/proj/data/n3'],
  ]);
});

test('a cluster node gets peer port, seeds and ring settings on its command line', () => {
  const options = devOptionsFrom({ nodes: '2', partitions: '16', r: '1', w: '2', 'data-dir': 'd' }, '/p', BIN);
  const second = devNodes(options)[1]!;
  expect(nodeArgs(options, second, false)).toEqual([
    BIN, '--node-id', 'n2', '--host', '127.0.0.1', '--port', '8081', '--data-dir', '/p/d/n2',
    '--peer-port', '9081', '--seeds', '127.0.0.1:9080', '--partitions', '16', '--replication', '2', '--r', '1', '--w', '2',
  ]);
});

test('a single node gets only single-node flags unless the node build knows the cluster flags', () => {
  const options = devOptionsFrom({ nodes: '1', 'port-base': '18080' }, '/p', BIN);
  const only = devNodes(options)[0]!;
  expect(nodeArgs(options, only, false)).toEqual([BIN, '--node-id', 'n1', '--host', '127.0.0.1', '--port', '18080', '--data-dir', '/p/data/n1']);
  expect(nodeArgs(options, only, true)).toContain('--peer-port');
  expect(nodeArgs(options, only, true)).toContain('19080');
});

test('impossible settings are usage errors', () => {
  expect(() => devOptionsFrom({ nodes: '0' }, '/p', BIN)).toThrow(UsageError);
  expect(() => devOptionsFrom({ nodes: '2', replication: '3' }, '/p', BIN)).toThrow(/at least that many/);
  expect(() => devOptionsFrom({ partitions: '12' }, '/p', BIN)).toThrow(/power of two/);
  expect(() => devOptionsFrom({ r: '4' }, '/p', BIN)).toThrow(/exceeds the replication factor 3/);
  expect(() => devOptionsFrom({ 'port-base': '65535' }, '/p', BIN)).toThrow(/no room/);
  expect(() => devOptionsFrom({ 'port-base': '8080', 'peer-port-base': '8081' }, '/p', BIN)).toThrow(/overlap/);
});

test('the banner lists every node with its endpoint and pid, how to use it, and how to stop it', () => {
  const options = devOptionsFrom({}, '/p', BIN);
  const text = banner(options, devNodes(options), [11, 12, 13], true);
  expect(text).toContain('n2  http://127.0.0.1:8081  peer 127.0.0.1:9081  pid 12  data /p/data/n2');
  expect(text).toContain('  dynamokv get demo hello');
  expect(banner(options, devNodes(options), [11, 12, 13], true, 'node dist/cli/src/main.js')).toContain('  node dist/cli/src/main.js put demo hello "world"');
  expect(text).toContain('DYNAMOKV_ENDPOINTS=http://127.0.0.1:8080,http://127.0.0.1:8081,http://127.0.0.1:8082');
  expect(text).toContain('ctrl-c');
});

test('the banner names the CLI as it can be run again from the current directory', () => {
  expect(cliInvocation('/repo/dist/cli/src/main.js', '/repo')).toBe('node dist/cli/src/main.js');
  expect(cliInvocation('/repo/dist/cli/src/main.js', '/elsewhere')).toBe('node /repo/dist/cli/src/main.js');
  expect(cliInvocation(undefined, '/repo')).toBe('dynamokv');
});
