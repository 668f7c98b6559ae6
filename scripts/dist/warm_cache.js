/**
 * Fills root's Deno caches with every module of the program (part of the single file's payload;
 * its header runs it as root once, after unpacking, before sealing a copy for the other users):
 * each chunk of app/ is imported, which loads, analyzes and compiles it and the runtime modules
 * it uses (node:fs, node:net, …), without running any mode. A chunk that cannot load outside its
 * mode (a permission it lacks) is skipped: its analysis is cached all the same.
 */
const app = new URL("./app/", import.meta.url);
for (const entry of Deno.readDirSync(app)) {
  if (entry.isFile && entry.name.endsWith(".js")) {
    await import(new URL(entry.name, app).href).catch(() => {});
  }
}
