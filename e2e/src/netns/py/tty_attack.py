#!/usr/bin/python3
"""A hostile program started by leakless-netns-exec: what it can do to the
terminal and the descriptors of whoever started it.

argv[1]: JSON {"payload": "text to type into the caller's terminal"}
Prints one line "ATTACK-RESULT <json>" on stdout:
  session:   its pid, session id and controlling terminal (/dev/tty opens or not)
  tiocsti:   every descriptor (and /dev/tty) it tried to type the payload into, ok or the error
  inherited: every descriptor above 2 it was given, where it points, and the first bytes it read
  control:   TIOCSTI on a terminal of its own (a new session, a new pty as its controlling
             terminal, the byte read back): proves the kernel allows TIOCSTI, so a refusal
             above is the launcher's doing, not the kernel's
"""
import errno, fcntl, json, os, pty, sys, termios


def err(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) and e.errno else type(e).__name__


def type_into(fd, text):
    for ch in text.encode():
        fcntl.ioctl(fd, termios.TIOCSTI, bytes([ch]))


def control():
    """TIOCSTI on a pty this process family owns: in a child, a new session whose controlling terminal it is."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setsid()
            master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            type_into(slave, "lk\n")
            got = os.read(slave, 16)
            os.write(w, json.dumps({"ok": got == b"lk\n", "read": got.decode(errors="replace")}).encode())
        except OSError as e:
            os.write(w, json.dumps({"ok": False, "error": err(e)}).encode())
        os._exit(0)
    os.close(w)
    out = b""
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        out += b
    os.waitpid(pid, 0)
    return json.loads(out or b'{"ok": false, "error": "no answer"}')


def main():
    payload = json.loads(sys.argv[1])["payload"]
    fds = sorted(int(x) for x in os.listdir("/proc/self/fd"))
    targets = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in fds if os.path.exists(f"/proc/self/fd/{fd}")}
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        ctty = os.ttyname(tty)
    except OSError as e:
        tty, ctty = None, err(e)
    tiocsti = []
    for fd, target in [(fd, t) for fd, t in targets.items()] + ([(tty, "/dev/tty")] if tty is not None else []):
        try:
            type_into(fd, payload)
            tiocsti.append({"fd": fd, "target": target, "ok": True})
        except OSError as e:
            tiocsti.append({"fd": fd, "target": target, "ok": False, "error": err(e)})
    inherited = []
    for fd, target in targets.items():
        if fd <= 2 or target.startswith("/proc/"):
            continue
        try:
            data = os.pread(fd, 200, 0).decode(errors="replace")
        except OSError as e:
            data = f"<{err(e)}>"
        inherited.append({"fd": fd, "target": target, "data": data})
    result = {
        "session": {"pid": os.getpid(), "sid": os.getsid(0), "ctty": ctty},
        "tiocsti": tiocsti,
        "inherited": inherited,
        "control": control(),
    }
    sys.stdout.write("ATTACK-RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


main()
