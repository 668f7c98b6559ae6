/**
 * A small JSON document shared by concurrent processes: every update holds an
 * exclusive flock on a side lock file, and the document is replaced
 * atomically (write to a temporary file, then rename), so a crash never
 * leaves it half-written.
 * @module
 */

/** Read-modify-write of one shared JSON value. */
export interface SharedJson {
  /** Runs `change` on the current value (undefined when missing or unparsable) under the lock. */
  update<T>(change: (current: unknown) => { value: unknown; result: T }): Promise<T>;
}

/** The shared JSON file `<dir>/<name>.json`, locked through `<dir>/<name>.lock`; files are group-writable. */
export function openSharedJson(dir: string, name: string): SharedJson {
  const path = `${dir}/${name}.json`;
  const lockPath = `${dir}/${name}.lock`;
  return {
    async update(change) {
      using lock = await openShared(lockPath);
      await lock.lock(true);
      let current: unknown;
      try {
        current = JSON.parse(await Deno.readTextFile(path));
      } catch {
        current = undefined; // missing or corrupt: start afresh
      }
      const { value, result } = change(current);
      const temp = `${path}.${Deno.pid}.tmp`;
      await Deno.writeTextFile(temp, JSON.stringify(value), { mode: 0o660 });
      await Deno.chmod(temp, 0o660);
      await Deno.rename(temp, path);
      return result;
    },
  };
}

async function openShared(path: string): Promise<Deno.FsFile> {
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o660 });
  // Whoever creates it, every member of the state directory's group must be able to lock it.
  await Deno.chmod(path, 0o660).catch(() => {});
  return file;
}
