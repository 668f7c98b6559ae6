/**
 * `xferproxy forward user add|del|list` (Aspera Proxy's asnodeadmin).
 * @module
 */

import type { ForwardCommand } from "./args.ts";
import { hashPassword, type UsersFile } from "./users.ts";

/** Where users are kept and how to talk to the administrator. */
export interface UserStore {
  load(): Promise<UsersFile>;
  save(users: UsersFile): Promise<void>;
  readStdin(): Promise<string>;
  generatePassword(): string;
  out(text: string): void;
}

/** Runs a user command; returns the exit status. */
export async function manageUsers(
  command: Extract<ForwardCommand, { action: "user-add" | "user-del" | "user-list" }>,
  store: UserStore,
): Promise<number> {
  const file = await store.load();
  switch (command.action) {
    case "user-list": {
      const names = [...file.users.keys()].sort();
      if (names.length === 0) store.out("no API users\n");
      for (const name of names) {
        const u = file.users.get(name)!;
        store.out(
          `${name}${u.admin ? " (admin)" : ""}  allow: ${
            u.allow.length ? u.allow.join(",") : "(nothing)"
          }\n`,
        );
      }
      return 0;
    }
    case "user-del": {
      if (!file.users.has(command.name)) {
        store.out(`no API user "${command.name}"\n`);
        return 1;
      }
      const rest = new Map(file.users);
      rest.delete(command.name);
      await store.save({ version: 1, users: rest });
      store.out(`removed API user "${command.name}"\n`);
      return 0;
    }
    case "user-add": {
      let password: string;
      let generated = false;
      if (command.passwordStdin) {
        password = (await store.readStdin()).replace(/\r?\n$/, "");
        if (password === "") {
          store.out("the password on stdin is empty\n");
          return 1;
        }
      } else {
        password = store.generatePassword();
        generated = true;
      }
      const verb = file.users.has(command.name) ? "updated" : "added";
      const users = new Map(file.users).set(command.name, {
        ...hashPassword(password),
        allow: command.allow,
        admin: command.admin,
      });
      await store.save({ version: 1, users });
      store.out(
        `${verb} API user "${command.name}"${generated ? `; password: ${password}` : ""}\n`,
      );
      return 0;
    }
  }
}
