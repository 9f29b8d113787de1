"""Runs inside the sandbox as `python -I -S child.py REPORT_FD PROGRAM WORK_DIR LIMITS AUDIT`.

Sets its own rlimits first (LIMITS: JSON {"RLIMIT_*": [soft, hard]}), so they bind inside the
sandbox's user namespace, where the kernel counts processes per namespace. Then, if AUDIT is 1,
installs an audit hook as a second wall behind the OS isolation: it refuses sockets, new
processes, native-code and introspection escape hatches, and writes outside WORK_DIR. Then it
executes PROGRAM with a `report(obj)` function that writes one JSON value to REPORT_FD.
Standard library only: the child runs without site-packages.
"""
import json
import os
import resource
import sys
import traceback

BLOCKED_PREFIXES = ("socket.", "ctypes.", "subprocess.", "os.fork", "os.forkpty", "os.system", "os.exec",
                    "os.posix_spawn", "os.spawn", "os.kill", "os.killpg", "gc.get_", "sys.setprofile",
                    "sys.settrace", "signal.pthread_kill")
BLOCKED_IMPORTS = ("_posixsubprocess", "_ctypes", "_socket", "_testcapi", "_testinternalcapi",
                   "_xxsubinterpreters", "_winapi")
# Position of the dir_fd argument(s) in each path event; a path relative to a directory
# descriptor cannot be checked against the work directory, so those calls are refused.
PATH_EVENTS = {"os.remove": (1,), "os.rmdir": (1,), "os.mkdir": (2,), "os.rename": (2, 3), "os.link": (2, 3),
               "os.symlink": (2,), "os.truncate": (), "os.chmod": (2,), "os.chown": (3,), "os.utime": (3,),
               "shutil.rmtree": (1,), "sqlite3.connect": ()}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def apply_limits(limits: dict) -> None:
    for name, (soft, hard) in limits.items():
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except (AttributeError, ValueError, OSError):
            pass  # macOS refuses RLIMIT_AS below current usage and lacks some limits


def audit_hook(work_dir):
    """The second wall: an audit hook refusing escape hatches and writes outside `work_dir`."""
    def inside(path) -> bool:
        if isinstance(path, int):  # an already-open descriptor: its open was audited
            return True
        real = os.path.realpath(os.fsdecode(path))
        return real == work_dir or real.startswith(work_dir + os.sep)

    def audit(event, args):
        if event.startswith(BLOCKED_PREFIXES):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and args and args[0] in BLOCKED_IMPORTS:
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event == "object.__setattr__" and len(args) >= 2 and args[1] == "__code__":
            raise PermissionError("sandbox: replacing a function's code is not allowed")
        if event == "open" and len(args) >= 3:
            path, mode, flags = args[0], args[1], args[2]
            writing = (mode is not None and any(c in str(mode) for c in "wax+")) or bool((flags or 0) & WRITE_FLAGS)
            if writing and path is not None and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} outside the work directory")
        elif event in PATH_EVENTS:
            if any(i < len(args) and args[i] not in (None, -1) for i in PATH_EVENTS[event]):
                raise PermissionError(f"sandbox: {event} relative to a directory descriptor is not allowed")
            if not all(inside(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))):
                raise PermissionError(f"sandbox: {event} outside the work directory")
    return audit


def main():
    report_fd, program_path, work_dir, limits, audit = sys.argv[1:6]
    apply_limits(json.loads(limits))
    report_file = os.fdopen(int(report_fd), "w")
    with open(program_path) as f:
        program = f.read()
    work_dir = os.path.realpath(work_dir)
    os.chdir(work_dir)

    def report(obj):
        report_file.write(json.dumps(obj))
        report_file.flush()

    if audit == "1":
        sys.addaudithook(audit_hook(work_dir))
    try:
        exec(compile(program, "<program>", "exec"), {"__name__": "__main__", "report": report})
    except SystemExit:
        raise
    except BaseException as err:  # the program's own failure: say what it was, exit non-zero
        sys.stderr.write("".join(traceback.format_exception_only(type(err), err)))
        sys.exit(1)


main()
