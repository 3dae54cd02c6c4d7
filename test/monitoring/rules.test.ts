/**
 * The dynamokv alerts (charts/dynamokv-operator/files/prometheus-rules.yaml) checked by promtool
 * from Debian's prometheus package: the file is valid (`promtool check rules`), and the unit tests
 * in rules.test.yaml pass (`promtool test rules`) - synthetic series under which each alert fires,
 * and others under which it stays silent. This file also proves the unit tests cover every alert
 * both ways, and that they bite: a copy of the rules with one threshold changed fails them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { helmBinary, yamlMapToJson } from '../helm/helm';
import { REPO_ROOT } from '../support/nodeProcess';
import { promtool, promtoolBinary } from './promtool';

const RULES = join(REPO_ROOT, 'charts', 'dynamokv-operator', 'files', 'prometheus-rules.yaml');
const RULE_TESTS = join(REPO_ROOT, 'test', 'monitoring', 'rules.test.yaml');

const alertNames = [...readFileSync(RULES, 'utf8').matchAll(/^\s*- alert: (\w+)$/gm)].map((m) => m[1] as string);

interface RuleTests {
  readonly tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] | null }> }>;
}

beforeAll(() => {
  promtoolBinary();
  helmBinary();
}, 15 * 60_000);

test('the issue\'s alerts are all there', () => {
  for (const name of ['DynamokvNodeDown', 'DynamokvRingMembersMismatch', 'DynamokvScaleOperationStuck', 'DynamokvHintBacklogGrowing', 'DynamokvLatencyHigh', 'DynamokvDiskNearlyFull', 'DynamokvReconcileErrors']) {
    expect(alertNames).toContain(name);
  }
});

test('promtool check rules accepts the rule file', async () => {
  const result = await promtool(['check', 'rules', RULES]);
  expect(result.output).toContain(`SUCCESS: ${alertNames.length} rules found`);
  expect(result.code).toBe(0);
});

test('promtool test rules passes the synthetic-series unit tests', async () => {
  const result = await promtool(['test', 'rules', RULE_TESTS]);
  expect(result.output).toContain('SUCCESS');
  expect(result.code).toBe(0);
});

test('every alert has a unit test where it fires and one where it does not', async () => {
  const ruleTests = (await yamlMapToJson(RULE_TESTS)) as RuleTests;
  const cases = ruleTests.tests.flatMap((t) => t.alert_rule_test ?? []);
  for (const name of alertNames) {
    const own = cases.filter((c) => c.alertname === name);
    expect({ name, fires: own.some((c) => (c.exp_alerts ?? []).length > 0) }).toEqual({ name, fires: true });
    expect({ name, silent: own.some((c) => (c.exp_alerts ?? []).length === 0) }).toEqual({ name, silent: true });
  }
});

test('the unit tests fail when a rule changes: a latency threshold of 2 s no longer fires at 995 ms', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dkv-rules-'));
  try {
    const rules = readFileSync(RULES, 'utf8');
    expect(rules).toContain(') > 0.5\n');
    writeFileSync(join(dir, 'rules.yaml'), rules.replace(') > 0.5\n', ') > 2\n'));
    const tests = readFileSync(RULE_TESTS, 'utf8').replace('../../charts/dynamokv-operator/files/prometheus-rules.yaml', 'rules.yaml');
    writeFileSync(join(dir, 'rules.test.yaml'), tests);
    const result = await promtool(['test', 'rules', 'rules.test.yaml'], dir);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('alertname: DynamokvLatencyHigh');
    // Only the changed alert fails.
    expect(result.output.match(/alertname: /g)).toHaveLength(1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
