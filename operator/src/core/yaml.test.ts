/** The YAML emitter writes plain data readably and quotes every string YAML would misread. */
import { toYaml } from './yaml';

test('nested objects and arrays', () => {
  expect(toYaml({ a: { b: [1, 'x', { c: true, d: null }], e: [] }, f: {} })).toBe(
    ['a:', '  b:', '    - 1', '    - x', '    - c: true', '      d: null', '  e: []', 'f: {}', ''].join('\n'),
  );
});

test.each([
  ['true', '"true"'], ['no', '"no"'], ['10Gi', '"10Gi"'], ['.5', '".5"'], ['a: b', '"a: b"'], ['x #y', '"x #y"'],
  ['', '""'], ['self == oldSelf', '"self == oldSelf"'], ["it's", "it's"], ['.spec.replicas', '.spec.replicas'], ['line\nbreak', '"line\\nbreak"'],
])('the string %j is written as %s', (input, output) => {
  expect(toYaml({ k: input })).toBe(`k: ${output}\n`);
});

test('keys that need it are quoted too', () => {
  expect(toYaml({ 'x-kubernetes-validations': 1, 'config.json': 2, yes: 3 })).toBe('x-kubernetes-validations: 1\nconfig.json: 2\n"yes": 3\n');
});
