#!/usr/bin/python3
"""A root shell on a real terminal that starts a command, the way an
administrator runs `sudo leakless-netns-exec tbb -- …` from a terminal.

argv[1]: JSON {"argv": [...], "fd7": "/path/only/root/reads", "timeout": seconds}
The shell (sh on the slave of a new pty, its controlling terminal) opens fd 7
on the given file, runs argv, then reads whatever comes next from its
terminal: a command a program typed into it with TIOCSTI runs here, as root.
Prints one JSON line: {"transcript": what the terminal showed, "finished": bool}.
Bounded: the shell is killed after the timeout.
"""
import json, os, pty, select, shlex, signal, sys, time

spec = json.loads(sys.argv[1])
deadline = time.monotonic() + spec.get("timeout", 20)

pid, master = pty.fork()
if pid == 0:
    os.execv("/bin/sh", ["sh"])

transcript = b""


def read_until(marker, limit):
    global transcript
    end = min(deadline, time.monotonic() + limit)
    while marker not in transcript and time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                transcript += os.read(master, 65536)
            except OSError:
                break
    return marker in transcript


def send(line):
    os.write(master, line.encode() + b"\n")


cmd = " ".join(shlex.quote(a) for a in spec["argv"])
send(f"exec 7<{shlex.quote(spec['fd7'])}")
# the markers are spelled in two pieces so that the terminal's echo of the command line does not match them
send(f"{cmd}; echo LK-LAUNCHER-''DONE")
finished = read_until(b"LK-LAUNCHER-DONE", spec.get("timeout", 20))
# whatever was typed into the terminal meanwhile is read and run by the shell now
time.sleep(1.0)
send("echo LK-''END")
read_until(b"LK-END", 5)
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
sys.stdout.write(json.dumps({"transcript": transcript.decode(errors="replace"), "finished": finished}) + "\n")
