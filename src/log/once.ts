/**
 * Saying a repeated failure once: a failure met at every session (a refused
 * system call, a lookup that fails) is logged the first time each kind is met.
 * @module
 */

/**
 * A filter that lets each text through the first time only, and at most `max` distinct texts:
 * a failure whose text varies without end cannot grow the set or the log.
 */
export function firstTimes(max: number): (text: string) => boolean {
  const said = new Set<string>();
  return (text) => {
    if (said.has(text) || said.size >= max) return false;
    said.add(text);
    return true;
  };
}
