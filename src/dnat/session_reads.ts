/**
 * Files a decided session reads for the service, as itself (its keyfile,
 * known_hosts): over the session's own connection, one read at a time (the
 * session answers its lines in order), a few per decision, each within a
 * time limit. Pure: the connection is the caller's.
 * @module
 */

import {
  type FileAnswer,
  MAX_READS,
  parseFileAnswer,
  protocolLine,
} from "../reverse/decide_protocol.ts";

/** How long a session may take to read a file for its decision. */
export const READ_TIMEOUT_MS = 10_000;

/** The lines of a session's connection (service_sessions.ts's `SessionConnection` fits). */
export interface ReadingConnection {
  nextLine(timeoutMs: number): Promise<string | undefined>;
  send(line: string): void;
}

/** Has the session read files; each read rejects when the session does not answer it. */
export function sessionReads(connection: ReadingConnection): (path: string) => Promise<FileAnswer> {
  let reads = 0;
  let turn: Promise<unknown> = Promise.resolve();
  return (path) => {
    const asked = turn.then(async () => {
      if (++reads > MAX_READS) throw new Error("the decision asked for too many reads");
      connection.send(protocolLine({ op: "read", path }));
      const answer = parseFileAnswer((await connection.nextLine(READ_TIMEOUT_MS)) ?? "");
      if (!answer) throw new Error(`the session did not answer the read of ${path}`);
      return answer;
    });
    turn = asked.catch(() => {});
    return asked;
  };
}
