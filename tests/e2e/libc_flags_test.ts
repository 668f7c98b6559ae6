/**
 * The open flags the service's /proc reads use mean, on this host's architecture, what they say:
 * O_NOFOLLOW refuses a symlink, O_DIRECTORY a file (a wrong number would be O_DIRECT or
 * O_LARGEFILE, accepted silently, or make every /proc listing fail).
 */
import { assertEquals } from "../_assert.ts";
import { cPath, errno, libc, LINUX } from "../../src/platform/libc.ts";
import { tempDir } from "../testbed/paths.ts";

const ELOOP = 40;
const ENOTDIR = 20;

function openErrno(path: string, flags: number): number {
  const c = libc();
  const fd = c.open(cPath(path), LINUX.O_RDONLY | LINUX.O_CLOEXEC | flags, 0);
  if (fd < 0) return errno();
  c.close(fd);
  return 0;
}

Deno.test("O_NOFOLLOW and O_DIRECTORY refuse what they name on this architecture", async () => {
  const dir = await tempDir();
  try {
    const file = `${dir.path}/file`;
    await Deno.writeTextFile(file, "x");
    await Deno.symlink(file, `${dir.path}/link`);
    assertEquals(
      [
        openErrno(`${dir.path}/link`, LINUX.O_NOFOLLOW),
        openErrno(file, LINUX.O_NOFOLLOW),
        openErrno(file, LINUX.O_DIRECTORY),
        openErrno(dir.path, LINUX.O_DIRECTORY),
      ],
      [ELOOP, 0, ENOTDIR, 0],
    );
  } finally {
    await dir.remove();
  }
});
