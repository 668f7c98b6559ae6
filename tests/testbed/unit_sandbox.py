#!/usr/bin/env python3
"""Runs a command under the process restrictions a systemd unit file asks for, without systemd.

Usage: unit_sandbox.py UNIT_FILE -- COMMAND [ARG...]

The test beds start the DNAT service and the forward daemon through this, reading the units the
packages ship (packaging/systemd/), so every end-to-end test that runs them runs them as
restricted as systemd would on these points: a session of its own, Nice, CapabilityBoundingSet (root keeps only those
capabilities after exec), NoNewPrivileges, UMask, SystemCallArchitectures=native,
SystemCallFilter (groups expanded by `systemd-analyze syscall-filter`, `~` lines removing) with
SystemCallErrorNumber, and RestrictAddressFamilies (socket() of any other family fails).
Namespaces and mounts (ProtectSystem, PrivateDevices, ProtectHome, ...) are not reproduced.
It prints one line to stderr saying what it applied.
"""
import ctypes
import ctypes.util
import errno
import os
import socket
import subprocess
import sys

CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ = 4


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def unit_settings(path):
    """The [Service] settings, each key with the list of its values in order."""
    settings, section = {}, None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]" and "=" in line:
                key, value = line.split("=", 1)
                settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def expand(name, seen=None):
    """The system calls of a name: itself, or a @group's members, recursively."""
    seen = set() if seen is None else seen
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], check=True,
                         capture_output=True, text=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        word = line.strip()
        if word and not word.startswith("#"):
            calls |= expand(word, seen)
    return calls


def syscall_set(lines):
    """SystemCallFilter lines in order: the first allow-list, then ~ lines remove."""
    allowed = None
    for line in lines:
        deny = line.startswith("~")
        names = set()
        for word in line.lstrip("~").split():
            names |= expand(word)
        if allowed is None:
            allowed = set() if deny else names
            if deny:
                raise SystemExit("unit_sandbox: a deny-list filter is not supported")
        elif deny:
            allowed -= names
        else:
            allowed |= names
    return allowed


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        raise SystemExit(__doc__)
    settings = unit_settings(sys.argv[1])
    command = sys.argv[3:]
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    applied = []

    # A session of its own, as systemd starts a service: with the kernel's autogroups that is
    # also a scheduling group of its own, not the test's (with hundreds of clients in a bench).
    try:
        os.setsid()
        applied.append("setsid")
    except PermissionError:
        pass  # it leads a process group already (started by a shell with job control)
    if "Nice" in settings:
        os.setpriority(os.PRIO_PROCESS, 0, int(settings["Nice"][-1]))
        applied.append("Nice=" + settings["Nice"][-1])
    if "UMask" in settings:
        os.umask(int(settings["UMask"][-1], 8))
        applied.append("UMask=" + settings["UMask"][-1])
    if "CapabilityBoundingSet" in settings:
        keep = set(" ".join(settings["CapabilityBoundingSet"]).split())
        for number, name in enumerate(CAPS):
            if name not in keep and libc.prctl(PR_CAPBSET_DROP, number, 0, 0, 0) != 0:
                err = ctypes.get_errno()
                if err != errno.EINVAL:  # EINVAL: this kernel has no such capability
                    raise OSError(err, "PR_CAPBSET_DROP " + name)
        applied.append("CapabilityBoundingSet=" + ",".join(sorted(keep)))
    if settings.get("NoNewPrivileges", ["no"])[-1] == "yes" or "SystemCallFilter" in settings:
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
        applied.append("NoNewPrivileges=yes")

    if "SystemCallFilter" in settings:
        seccomp = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2",
                              use_errno=True)
        seccomp.seccomp_init.restype = ctypes.c_void_p
        seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
        seccomp.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                                   ctypes.c_uint, ctypes.POINTER(ArgCmp)]
        seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
        error = settings.get("SystemCallErrorNumber", ["EPERM"])[-1]
        default = 0x00050000 | getattr(errno, error)  # SCMP_ACT_ERRNO(error)
        ctx = seccomp.seccomp_init(default)  # native architecture only; others are killed
        families = None
        if "RestrictAddressFamilies" in settings:
            families = [getattr(socket, f) for f in
                        " ".join(settings["RestrictAddressFamilies"]).split()]
        calls = syscall_set(settings["SystemCallFilter"])
        count = 0
        for name in sorted(calls):
            number = seccomp.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                continue  # not a system call of this architecture
            if name == "socket" and families is not None:
                for family in families:
                    cmp = ArgCmp(0, SCMP_CMP_EQ, family, 0)
                    if seccomp.seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, number, 1,
                                                      ctypes.byref(cmp)) != 0:
                        raise OSError("seccomp_rule_add socket family %d" % family)
                continue
            if seccomp.seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, number, 0, None) != 0:
                raise OSError("seccomp_rule_add " + name)
            count += 1
        if seccomp.seccomp_load(ctx) != 0:
            raise OSError("seccomp_load")
        applied.append("SystemCallFilter=%d calls (else %s)" % (count, error))
        if families is not None:
            applied.append("RestrictAddressFamilies=" + ",".join(
                " ".join(settings["RestrictAddressFamilies"]).split()))
    print("unit_sandbox: " + "; ".join(applied), file=sys.stderr, flush=True)
    os.execvp(command[0], command)


main()
