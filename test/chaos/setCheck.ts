/**
 * The pure half of the real-process set test, in the manner of Jepsen's set checker: what a
 * client writes (the union of every sibling's elements plus one new element) and how the final
 * value of a key is judged against what clients attempted and what was acknowledged.
 *
 * Values are JSON arrays of strings. The simulator's checker (test/sim/checker.ts) applies the
 * same rules to stored objects; this one works on the sibling texts a client reads, because a
 * real cluster is only looked at through its API.
 */

/** What the clients did to one key. */
export interface SetHistory {
  /** Every element some client tried to add (acknowledged or not: a failed put may still land). */
  readonly attempted: Set<string>;
  /** Elements whose put answered 2xx: these must survive in a siblings-mode bucket. */
  readonly acknowledged: Set<string>;
}

/** The judgement of one key's final value, with counts in Jepsen's vocabulary. */
export interface SetVerdict {
  readonly total: number;
  readonly acknowledged: number;
  /** Acknowledged but absent from the final value. */
  readonly lost: string[];
  /** Present in the final value but never attempted by any client. */
  readonly unexpected: string[];
  /** Attempted, not acknowledged (the outcome was unknown), and present after all. */
  readonly recovered: number;
  /** Sibling values that are not JSON arrays of strings: nothing a client wrote looks like that. */
  readonly malformed: number;
}

export function emptyHistory(): SetHistory {
  return { attempted: new Set(), acknowledged: new Set() };
}

/** The elements of one sibling's text, or undefined when it is not a JSON array of strings. */
export function parseElements(text: string): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed) && parsed.every((e) => typeof e === 'string')) return parsed as string[];
  } catch {
    // Not JSON; the caller counts it as malformed.
  }
  return undefined;
}

/** The union of the elements of every sibling, and how many siblings could not be parsed. */
export function unionOfSiblings(texts: readonly string[]): { elements: Set<string>; malformed: number } {
  const elements = new Set<string>();
  let malformed = 0;
  for (const text of texts) {
    const parsed = parseElements(text);
    if (parsed === undefined) malformed++;
    else for (const element of parsed) elements.add(element);
  }
  return { elements, malformed };
}

/**
 * The value an add writes: every element any sibling holds, plus `element`, sorted. Merging all
 * siblings is what makes the write with the read's context safe: it replaces exactly what it saw
 * and carries all of it forward. Malformed siblings are dropped here and reported at the end.
 */
export function addedValue(siblingTexts: readonly string[], element: string): string {
  const { elements } = unionOfSiblings(siblingTexts);
  elements.add(element);
  return JSON.stringify([...elements].sort());
}

/** Judges the final sibling texts of one key against its history. */
export function judgeSet(history: SetHistory, finalTexts: readonly string[]): SetVerdict {
  const { elements, malformed } = unionOfSiblings(finalTexts);
  const lost = [...history.acknowledged].filter((e) => !elements.has(e)).sort();
  const unexpected = [...elements].filter((e) => !history.attempted.has(e)).sort();
  let recovered = 0;
  for (const element of elements) if (history.attempted.has(element) && !history.acknowledged.has(element)) recovered++;
  return { total: history.attempted.size, acknowledged: history.acknowledged.size, lost, unexpected, recovered, malformed };
}

/** Figures of a whole bucket: the sum of its keys' verdicts. */
export interface SetFigures {
  keys: number;
  total: number;
  acknowledged: number;
  lost: number;
  unexpected: number;
  recovered: number;
  malformed: number;
}

export function emptyFigures(): SetFigures {
  return { keys: 0, total: 0, acknowledged: 0, lost: 0, unexpected: 0, recovered: 0, malformed: 0 };
}

export function addVerdict(figures: SetFigures, verdict: SetVerdict): void {
  figures.keys++;
  figures.total += verdict.total;
  figures.acknowledged += verdict.acknowledged;
  figures.lost += verdict.lost.length;
  figures.unexpected += verdict.unexpected.length;
  figures.recovered += verdict.recovered;
  figures.malformed += verdict.malformed;
}
