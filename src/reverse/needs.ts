/**
 * What a reverse session keeps of the binary's permissions, apart from its
 * command so that the light entry a session starts by (platform/
 * session_main.ts) revokes the same without loading the command line parser.
 * @module
 */

import type { Needs } from "../cli/needs.ts";
import { LIBC_PATHS } from "../process/libraries.ts";

/**
 * Config, keys and known_hosts; balancer state and log files; the host key probe and the DNAT
 * service's socket; logger(1) for syslog, sudo for the DNAT call while the service is down; FFI on
 * libc for the exec into ssh; the uid, to tell whether ssh will accept a key's mode.
 */
export const REVERSE_NEEDS: Needs = {
  read: true,
  write: true,
  net: true,
  env: true,
  sys: true,
  ffi: LIBC_PATHS,
  run: ["logger", "sudo"],
};
