import { assertIncludes } from "../_assert.ts";
import { refusalText } from "../../src/platform/held_sockets.ts";

Deno.test("refusalText() says what to do about each refusal of pidfd_getfd", () => {
  assertIncludes(refusalText(38), "Linux 5.6+");
  const eperm = refusalText(1);
  for (const cause of ["CAP_SYS_PTRACE", "SystemCallFilter=pidfd_getfd", "ptrace_scope"]) {
    assertIncludes(eperm, cause);
  }
  assertIncludes(refusalText(24), "errno 24");
});
