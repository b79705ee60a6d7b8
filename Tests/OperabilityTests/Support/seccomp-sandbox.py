#!/usr/bin/python3
"""Runs a command under the seccomp restrictions the systemd units ask for, so a test can check that the
services live with them without a systemd PID 1:

  SystemCallFilter=@system-service      (expanded with `systemd-analyze syscall-filter`; any other
                                          system call kills the process with SIGSYS, where the units
                                          would return EPERM, so a violation cannot go unnoticed)
  RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX   (other socket families fail with EAFNOSUPPORT)
  MemoryDenyWriteExecute=yes            (W+X mmap, mprotect/pkey_mprotect adding PROT_EXEC, SHM_EXEC:
                                          SIGSYS, as systemd's own seccomp implementation filters them)
  NoNewPrivileges=yes, SystemCallArchitectures=native

Usage: seccomp-sandbox.py COMMAND [ARGS...]   (needs python3-seccomp and systemd-analyze)
"""
import errno
import os
import subprocess
import sys

import seccomp


def groups():
    """Every group `systemd-analyze syscall-filter` knows, as group -> names (system calls and @groups)."""
    out = subprocess.run(["systemd-analyze", "syscall-filter"], check=True, capture_output=True, text=True).stdout
    table, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.strip()
            table[current] = set()
        elif current and line.strip() and not line.strip().startswith("#"):
            table[current].update(line.split())
    return table


def expand(group, table, seen=None):
    seen = set() if seen is None else seen
    if group in seen:
        return set()
    seen.add(group)
    names = set()
    for word in table.get(group, ()):
        names |= expand(word, table, seen) if word.startswith("@") else {word}
    return names


def main():
    allowed = expand("@system-service", groups())
    calls = seccomp.SyscallFilter(defaction=seccomp.TRAP)
    for name in sorted(allowed - {"socket"}):
        try:
            calls.add_rule(seccomp.ALLOW, name)
        except Exception:
            pass  # not a system call on this architecture (mmap2, arm_fadvise64_64, ...)
    for family in (1, 2, 10):  # AF_UNIX, AF_INET, AF_INET6
        calls.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, family))
    for family in (0, 3, 4, 5, 6, 7, 8, 9):
        calls.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.EQ, family))
    calls.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.GT, 10))

    prot_write, prot_exec, shm_exec = 2, 4, 0o100000
    memory = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    wx = prot_write | prot_exec
    memory.add_rule(seccomp.TRAP, "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, wx, wx))
    memory.add_rule(seccomp.TRAP, "mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, prot_exec, prot_exec))
    memory.add_rule(seccomp.TRAP, "pkey_mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, prot_exec, prot_exec))
    memory.add_rule(seccomp.TRAP, "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, shm_exec, shm_exec))

    memory.load()  # sets no_new_privs
    calls.load()
    os.execv(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
