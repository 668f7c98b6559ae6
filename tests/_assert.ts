/**
 * The few assertions the tests use, on node:assert/strict (JSR's @std/assert
 * is not reachable from our machines).
 * @module
 */

import assert from "node:assert/strict";

/** Deep, strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assert.deepEqual(actual, expected, message);
}

/** Strict inequality. */
export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  assert.notDeepEqual(actual, expected, message);
}

/** The value is truthy. */
export function assertOk(value: unknown, message?: string): asserts value {
  assert.ok(value, message);
}

/** The text matches the pattern. */
export function assertMatch(actual: string, pattern: RegExp, message?: string): void {
  assert.match(actual, pattern, message);
}

/** The text does not match the pattern. */
export function assertNotMatch(actual: string, pattern: RegExp, message?: string): void {
  assert.doesNotMatch(actual, pattern, message);
}

/** The text contains the fragment. */
export function assertIncludes(actual: string, fragment: string, message?: string): void {
  assert.ok(
    actual.includes(fragment),
    message ?? `expected ${JSON.stringify(actual)} to include ${JSON.stringify(fragment)}`,
  );
}

/** `fn` throws an error of the class whose message includes `fragment`; returns it. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  errorClass: new (...args: never[]) => E,
  fragment?: string,
): E {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof errorClass, `expected ${errorClass.name}, got ${String(error)}`);
    if (fragment !== undefined) assertIncludes(error.message, fragment);
    return error;
  }
  throw new assert.AssertionError({ message: `expected ${errorClass.name} to be thrown` });
}

/** `fn` rejects with an error of the class whose message includes `fragment`; returns it. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  errorClass: new (...args: never[]) => E,
  fragment?: string,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof errorClass, `expected ${errorClass.name}, got ${String(error)}`);
    if (fragment !== undefined) assertIncludes(error.message, fragment);
    return error;
  }
  throw new assert.AssertionError({ message: `expected ${errorClass.name} to be rejected` });
}
