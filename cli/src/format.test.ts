/**
 * Output formatting: fixed inputs, checked against the exact text a user sees.
 */
import type { MemberInfo } from '../../client/src/index';
import { getJson, handoffText, looksTextual, pendingSummary, pendingText, progressBar, ringText, siblingsText, statusText, table } from './format';

const at = new Date('2026-11-25T10:00:00.000Z');

test('siblings are numbered with content type, time and size, followed by the context and how to resolve', () => {
  const text = siblingsText('b', 'k', {
    found: true,
    context: 'CTX',
    values: [
      { value: Buffer.from('red\n'), contentType: 'text/plain', lastModified: at },
      { value: Buffer.from([0, 255, 1]), contentType: 'application/octet-stream', lastModified: at },
    ],
  });
  expect(text).toBe(
    [
      'b/k has 2 siblings (concurrent values):',
      '',
      '[1] text/plain  2026-11-25T10:00:00.000Z  4 bytes',
      'red',
      '',
      '[2] application/octet-stream  2026-11-25T10:00:00.000Z  3 bytes',
      '<binary, 3 bytes; use --json to see it as base64>',
      '',
      'context: CTX',
      'Resolve with: dynamokv put b k <value> --context CTX',
      '',
    ].join('\n'),
  );
});

test('JSON output shows text as UTF-8 and binary as base64, with the context', () => {
  const out = JSON.parse(getJson({ found: true, context: 'C', values: [{ value: Buffer.from([0, 1]), contentType: 'application/octet-stream', lastModified: at }] })) as unknown;
  expect(out).toEqual({ found: true, context: 'C', values: [{ contentType: 'application/octet-stream', lastModified: '2026-11-25T10:00:00.000Z', encoding: 'base64', value: 'AAE=' }] });
  expect(JSON.parse(getJson({ found: false, context: undefined, values: [] }))).toEqual({ found: false, context: null, values: [] });
});

test('text detection trusts textual content types and otherwise looks for clean UTF-8', () => {
  expect(looksTextual({ value: Buffer.from([0]), contentType: 'application/json', lastModified: at })).toBe(true);
  expect(looksTextual({ value: Buffer.from('plain words'), contentType: 'application/octet-stream', lastModified: at })).toBe(true);
  expect(looksTextual({ value: Buffer.from([0xff, 0xfe, 0x00]), contentType: 'application/octet-stream', lastModified: at })).toBe(false);
  expect(looksTextual({ value: Buffer.from('GIF89a'), contentType: 'image/gif', lastModified: at })).toBe(false);
});

test('the ring table shows id, state, liveness, ownership and addresses in aligned columns', () => {
  const member = (id: string, up: boolean | undefined, ownership: number | undefined, self = false): MemberInfo => ({
    id, clientUrl: `http://127.0.0.1:808${id.slice(1)}`, peerUrl: undefined, state: 'normal', up, phi: undefined, ownership, self,
  });
  const text = ringText({ version: 4, partitionCount: 64, replicationFactor: 3, members: [member('n1', true, 1 / 3, true), member('n2', false, 0.3333), member('n3', undefined, undefined)], raw: {} }, 'http://127.0.0.1:8080');
  expect(text).toBe(
    [
      'ring version 4, 64 partitions, N=3 (as seen by http://127.0.0.1:8080)',
      'ID  STATE   LIVENESS   OWNERSHIP  CLIENT                 PEER',
      'n1  normal  up (self)  33.3%      http://127.0.0.1:8081  -',
      'n2  normal  down       33.3%      http://127.0.0.1:8082  -',
      'n3  normal  -          -          http://127.0.0.1:8083  -',
      '',
    ].join('\n'),
  );
});

test('status flattens nested fields into dotted lines', () => {
  expect(statusText({ nodeId: 'n1', version: '0.1.0', uptimeSeconds: 5, raw: { nodeId: 'n1', storage: { keys: 3, bytes: 10 }, tags: ['a'] } })).toBe('nodeId: n1\nstorage.keys: 3\nstorage.bytes: 10\ntags: ["a"]\n');
});

test('table pads every column but the last', () => {
  expect(table(['A', 'BB'], [['xyz', 'q']])).toBe('A    BB\nxyz  q');
});

test('handoff progress: a bar per transfer with keys, bytes, rate and ETA; done transfers are full', () => {
  expect(progressBar(5, 20, 10)).toBe('[###-------]  25%');
  expect(progressBar(0, 0, 4)).toBe('[????]    ?');
  const text = handoffText([
    { partition: 3, from: 'n1', to: 'n4', state: 'waiting', role: 'sending', keysDone: 50, keysTotal: 100, bytesDone: 51200, bytesPerSecond: 2048, etaSeconds: 25 },
    { partition: 7, from: 'n2', to: 'n4', state: 'done' },
  ]);
  expect(text).toContain('1 of 2 transfers waiting');
  expect(text).toMatch(/3 +n1 +n4 +waiting +\[#{10}-{10}\] {2}50% +50\/100 +50\.0 KiB +2\.0 KiB\/s +25s/);
  expect(text).toMatch(/7 +n2 +n4 +done +\[#{20}\] 100%/);
  expect(handoffText([])).toBe('no transfers pending\n');
});

test('the pending change: who joins or leaves, how many transfers are done, the next owners and the transfers', () => {
  const pending = {
    joining: ['n4'],
    leaving: [],
    transfersTotal: 2,
    transfersDone: 1,
    partitions: [
      { partition: 3, owners: ['n1', 'n4', 'n2'] },
      { partition: 7, owners: ['n4', 'n3', 'n1'] },
    ],
    transfers: [
      { partition: 3, from: 'n1', to: 'n4', state: 'streaming', role: 'sending', keysDone: 5, keysTotal: 10 },
      { partition: 7, from: 'n2', to: 'n4', state: 'done' },
    ],
  };
  expect(pendingSummary(pending)).toBe('pending change: joining n4; 1 of 2 transfers done, 2 partitions changing owners (abort with `dynamokv abort`)\n');
  const text = pendingText(pending);
  expect(text).toMatch(/^pending change: joining n4;/);
  expect(text).toMatch(/PARTITION +NEXT OWNERS\n3 +n1, n4, n2\n7 +n4, n3, n1\n/);
  expect(text).toMatch(/1 of 2 transfers waiting/);
  expect(text).toMatch(/3 +n1 +n4 +streaming +\[#{10}-{10}\] {2}50%/);
  expect(pendingSummary(null)).toBe('');
  expect(pendingText(null)).toBe('no membership change pending\n');
});
