/**
 * Just enough PromQL for the dashboard check: the metric names an expression selects, and the
 * metric families a /metrics page exports. Not a parser: it strips what cannot be a metric name
 * (strings, label matchers, ranges, grouping label lists, function calls, keywords) and keeps the
 * identifiers left, which in PromQL are exactly the selected metric names. promtool parses every
 * expression for real in dashboards.test.ts, so a query this reading gets wrong cannot pass.
 */

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan', 'atan2']);

/** Metric names selected by a PromQL expression (Grafana variables already substituted). */
export function metricNames(expression: string): string[] {
  const stripped = expression
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = match[0];
    const rest = stripped.slice((match.index ?? 0) + name.length);
    if (/^\s*\(/.test(rest)) continue;
    if (KEYWORDS.has(name.toLowerCase())) continue;
    // A number's exponent or a duration's unit ("1e3", "5m") starts right after a digit.
    const before = stripped[(match.index ?? 0) - 1] ?? ' ';
    if (/[0-9.]/.test(before)) continue;
    names.add(name);
  }
  return [...names].sort();
}

/**
 * The series names a Prometheus text exposition can produce: each `# TYPE` family, and for
 * histograms and summaries the _bucket, _sum and _count series. A family with labels but no
 * children yet (a counter nothing incremented) still has its TYPE line, so it counts as exported.
 */
export function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const match of exposition.matchAll(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/gm)) {
    const [, name, type] = match as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(`${name}${suffix}`);
  }
  return names;
}

/** Grafana's variables in an expression, replaced by values that keep it valid PromQL. */
export function substituteGrafanaVariables(expression: string): string {
  return expression
    .replace(/\$__rate_interval|\$__interval|\$__range/g, '5m')
    .replace(/\$\{?(\w+)\}?/g, (_whole, name: string) => (name === 'job' ? '.*' : `test-${name}`));
}
