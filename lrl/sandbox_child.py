"""Runs inside the sandbox process (started by lrl.sandbox as `python -I -S sandbox_child.py`).

argv: report_path program_path work_dir. Opens the report file first, then installs an audit
hook that refuses sockets, new processes, native-code loading and writes outside `work_dir`,
then executes the program with a `report(obj)` function that writes one JSON value to the report.
Standard library only: the child runs without site-packages.
"""
import json
import os
import sys
import traceback

BLOCKED_PREFIXES = ("socket.", "ctypes.", "subprocess.", "os.fork", "os.forkpty", "os.system",
                    "os.exec", "os.posix_spawn", "os.spawn", "os.kill", "os.killpg", "_posixsubprocess")
PATH_EVENTS = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link",
               "os.truncate", "os.chmod", "os.chown", "os.utime", "shutil.rmtree")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def main():
    report_path, program_path, work_dir = sys.argv[1:4]
    report_file = open(report_path, "w")
    with open(program_path) as f:
        program = f.read()
    work_dir = os.path.realpath(work_dir)
    os.chdir(work_dir)

    def inside(path) -> bool:
        if isinstance(path, int):  # an already-open descriptor: its open was audited
            return True
        real = os.path.realpath(os.fsdecode(path))
        return real == work_dir or real.startswith(work_dir + os.sep)

    def audit(event, args):
        if event.startswith(BLOCKED_PREFIXES):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open" and len(args) >= 3:
            path, mode, flags = args[0], args[1], args[2]
            writing = (mode is not None and any(c in str(mode) for c in "wax+")) or bool((flags or 0) & WRITE_FLAGS)
            if writing and path is not None and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} outside the work directory")
        elif event in PATH_EVENTS and args and not all(inside(a) for a in args[:2] if isinstance(a, (str, bytes))):
            raise PermissionError(f"sandbox: {event} outside the work directory")

    def report(obj):
        report_file.write(json.dumps(obj))
        report_file.flush()

    sys.addaudithook(audit)
    try:
        exec(compile(program, "<program>", "exec"), {"__name__": "__main__", "report": report})
    except SystemExit:
        raise
    except BaseException as err:  # the program's own failure: say what it was, exit non-zero
        lines = traceback.format_exception_only(type(err), err)
        sys.stderr.write("".join(lines))
        sys.exit(1)


main()
