/**
 * A small YAML emitter for plain JSON data (objects, arrays, strings, numbers, booleans, null),
 * enough to write the generated CRD in the form people read and review. Keys keep their insertion
 * order, so the output is deterministic. Strings that YAML could read as something else (numbers,
 * booleans, null, things with special characters) are double-quoted with JSON escapes, which are
 * valid in YAML's double-quoted style.
 */
import type { Json } from './types';

const PLAIN_STRING = /^[A-Za-z_/.][A-Za-z0-9_ ./()'-]*$/;
const YAML_WORDS = /^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|~)$/;
const DEPTH_MAX = 64;
/** Plain scalars YAML would read as numbers: .5, .inf, .nan. */
const NUMBER_LIKE = /^\.([0-9]|inf$|nan$)/i;

export function toYaml(value: Json): string {
  return `${emit(value, 0, 0).replace(/^\n/, '')}\n`;
}

function emit(value: Json, indent: number, depth: number): string {
  if (depth > DEPTH_MAX) throw new RangeError(`YAML nesting deeper than ${DEPTH_MAX}`);
  if (Array.isArray(value)) return emitArray(value, indent, depth);
  if (value !== null && typeof value === 'object') return emitObject(value, indent, depth);
  return ` ${scalar(value)}`;
}

function emitObject(object: { [key: string]: Json }, indent: number, depth: number): string {
  const entries = Object.entries(object);
  if (entries.length === 0) return ' {}';
  const pad = ' '.repeat(indent);
  return entries.map(([key, child]) => `\n${pad}${scalarKey(key)}:${emit(child, indent + 2, depth + 1)}`).join('');
}

function emitArray(items: Json[], indent: number, depth: number): string {
  if (items.length === 0) return ' []';
  const pad = ' '.repeat(indent);
  return items
    .map((item) => {
      if (item !== null && typeof item === 'object' && !Array.isArray(item) && Object.keys(item).length > 0) {
        // The first key sits on the dash line; the rest align under it.
        const body = emitObject(item, indent + 2, depth + 1);
        return `\n${pad}- ${body.slice(indent + 3)}`;
      }
      return `\n${pad}-${emit(item, indent + 2, depth + 1)}`;
    })
    .join('');
}

function scalarKey(key: string): string {
  return PLAIN_STRING.test(key) && !YAML_WORDS.test(key) && !NUMBER_LIKE.test(key) && !key.includes(' ') ? key : JSON.stringify(key);
}

function scalar(value: null | boolean | number | string): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError('YAML output of a non-finite number');
    return String(value);
  }
  const plain = PLAIN_STRING.test(value) && !YAML_WORDS.test(value) && !NUMBER_LIKE.test(value) && !value.endsWith(' ') && !value.includes(': ') && !value.includes(' #');
  return plain ? value : JSON.stringify(value);
}
