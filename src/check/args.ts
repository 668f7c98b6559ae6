/**
 * `xferproxy check`'s arguments: what to look at, and how to print it.
 * @module
 */

import {
  CONFIG_OPTION,
  type ConfigArg,
  parseStrict,
  UsageError,
  withConfig,
} from "../cli/parse.ts";

/** What `xferproxy check` can look at. */
export const CHECK_TOPICS = ["config", "defaults", "system", "users", "upstreams"] as const;
/** One of `CHECK_TOPICS`, or everything. */
export type CheckTopic = (typeof CHECK_TOPICS)[number] | "all";

/** `xferproxy check`'s arguments. */
export interface CheckArgs extends ConfigArg {
  readonly topic: CheckTopic;
  readonly json: boolean;
  readonly root?: string;
  readonly sshdConfig?: string;
  /** `check upstreams`: the account to log in as where a rule uses each user's own. */
  readonly user?: string;
}

/**
 * Parses the words after `xferproxy check`.
 * @throws {UsageError}
 */
export function parseCheckArgs(args: readonly string[]): CheckArgs {
  const options = {
    ...CONFIG_OPTION,
    json: { type: "boolean" },
    root: { type: "string" },
    "sshd-config": { type: "string" },
    user: { type: "string" },
  } as const;
  const { values, positionals } = parseStrict(args, "check", options, true);
  const [topicText, extra] = positionals;
  if (extra !== undefined) {
    throw new UsageError(`unexpected argument "${extra}" for check`, "check");
  }
  if (topicText !== undefined && !isTopic(topicText)) {
    throw new UsageError(
      `unknown check "${topicText}"; expected one of: ${CHECK_TOPICS.join(", ")}`,
      "check",
    );
  }
  const topic: CheckTopic = topicText ?? "all";
  if (values.root !== undefined && !values.root.startsWith("/")) {
    throw new UsageError(`--root must be an absolute path, got "${values.root}"`, "check");
  }
  if (topic === "upstreams" && values.root !== undefined) {
    throw new UsageError(
      "check upstreams logs in to live servers: it does not take --root",
      "check",
    );
  }
  if (values.user !== undefined && topic !== "upstreams") {
    throw new UsageError("--user goes with check upstreams", "check");
  }
  const sshdConfig = values["sshd-config"];
  return withConfig({
    topic,
    json: values.json ?? false,
    ...(values.root !== undefined ? { root: values.root } : {}),
    ...(values.user !== undefined ? { user: values.user } : {}),
    ...(sshdConfig !== undefined ? { sshdConfig } : {}),
  }, values.config);
}

function isTopic(text: string): text is (typeof CHECK_TOPICS)[number] {
  return (CHECK_TOPICS as readonly string[]).includes(text);
}
