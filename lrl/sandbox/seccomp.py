"""A seccomp filter (classic BPF) for bubblewrap's `--seccomp FD`, written without libseccomp.

The filter refuses, with EPERM, the system calls that reach kernel surfaces a test program never
needs and that container escapes use: tracing other processes, namespaces and mounts, modules,
BPF, perf, keyrings, io_uring (its requests bypass seccomp), userfaultfd, file handles, and every
socket. `clone` may not make a user namespace (the way to new privileges inside one), and
`clone3`, whose flags sit in memory a filter cannot read, answers ENOSYS so the C library falls
back to `clone`. A program built for another ABI (x32 on x86-64, or an unknown architecture) is
killed, since its system call numbers would slip past the table. libseccomp's Python bindings are not
on PyPI for every platform, and the program is twenty instructions, so it is built here.
"""
from __future__ import annotations

import platform
import struct

# Classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
RET_KILL_PROCESS, RET_ALLOW, RET_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38
NR_OFFSET, ARCH_OFFSET, ARG0_LOW_OFFSET = 0, 4, 16  # struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6]
X32_SYSCALL_BIT = 0x40000000
CLONE_NEWUSER = 0x10000000

DENIED = ("ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot",
          "unshare", "setns", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
          "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
          "open_by_handle_at", "name_to_handle_at", "io_uring_setup", "io_uring_enter", "io_uring_register",
          "fanotify_init", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
          "swapon", "swapoff", "reboot", "syslog", "acct", "socket", "socketpair")

# (audit arch, system call numbers) per machine; numbers from the kernel's syscall tables.
SYSCALLS = {
    "x86_64": (0xC000003E, {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165, "umount2": 166,
        "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308, "bpf": 321, "perf_event_open": 298,
        "keyctl": 250, "add_key": 248, "request_key": 249, "userfaultfd": 323, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "kexec_load": 246, "kexec_file_load": 320,
        "open_by_handle_at": 304, "name_to_handle_at": 303, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "fanotify_init": 300, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "move_mount": 429, "open_tree": 428, "swapon": 167, "swapoff": 168, "reboot": 169,
        "syslog": 103, "acct": 163, "socket": 41, "socketpair": 53, "clone": 56, "clone3": 435}),
    "aarch64": (0xC00000B7, {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "mount": 40, "umount2": 39,
        "pivot_root": 41, "chroot": 51, "unshare": 97, "setns": 268, "bpf": 280, "perf_event_open": 241,
        "keyctl": 219, "add_key": 217, "request_key": 218, "userfaultfd": 282, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "kexec_load": 104, "kexec_file_load": 294,
        "open_by_handle_at": 265, "name_to_handle_at": 264, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "fanotify_init": 262, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "move_mount": 429, "open_tree": 428, "swapon": 224, "swapoff": 225, "reboot": 142,
        "syslog": 116, "acct": 89, "socket": 198, "socketpair": 199, "clone": 220, "clone3": 435}),
}
MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)  # struct sock_filter


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The filter for `machine` (default: this one) as struct sock_filter bytes, or None if unknown.

    Little-endian machines only (both in SYSCALLS are): clone's flags are read as the low word of args[0].
    """
    machine = (machine or platform.machine()).lower()
    machine = MACHINES.get(machine, machine)
    if machine not in SYSCALLS:
        return None
    arch, numbers = SYSCALLS[machine]
    program = [_insn(LD_W_ABS, ARCH_OFFSET), _insn(JEQ_K, arch, jt=1), _insn(RET_K, RET_KILL_PROCESS),
               _insn(LD_W_ABS, NR_OFFSET)]
    if machine == "x86_64":  # the x32 ABI shares the arch value but numbers its calls from this bit
        program += [_insn(JGE_K, X32_SYSCALL_BIT, jf=1), _insn(RET_K, RET_KILL_PROCESS)]
    for name in DENIED:
        program += [_insn(JEQ_K, numbers[name], jf=1), _insn(RET_K, RET_ERRNO | EPERM)]
    program += [_insn(JEQ_K, numbers["clone3"], jf=1), _insn(RET_K, RET_ERRNO | ENOSYS),
                _insn(JEQ_K, numbers["clone"], jf=3), _insn(LD_W_ABS, ARG0_LOW_OFFSET),
                _insn(JSET_K, CLONE_NEWUSER, jf=1), _insn(RET_K, RET_ERRNO | EPERM),
                _insn(RET_K, RET_ALLOW)]
    return b"".join(program)
