#!/usr/bin/python3
"""Stand-ins for the filesystem sockets of a desktop: the system bus (which
would answer NetworkManager's properties: the real address, the MAC, nearby
access points), NetworkManager's own socket, the display server's socket.
They are listeners at the real paths, with the real owners and modes, that
log who connected (SO_PEERCRED) and with which token, and answer with what
the real service would give away.

argv[1]: JSON [{"name", "path", "uid", "gid", "mode", "dirs": [[path, mode, uid, gid]], "reply"}]
stdout: one JSON line per event: {"event": "listening", "name"} once each, then
        {"event": "connect", "name", "uid", "token"} for every connection.
"""
import json, os, select, socket, struct, sys

specs = json.loads(sys.argv[1])
socks = {}


def log(o):
    sys.stdout.write(json.dumps(o) + "\n")
    sys.stdout.flush()


for s in specs:
    for d, mode, uid, gid in s.get("dirs", []):
        os.makedirs(d, exist_ok=True)
        os.chown(d, uid, gid)
        os.chmod(d, int(mode, 8))
    if os.path.exists(s["path"]):
        os.unlink(s["path"])
    l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    l.bind(s["path"])
    os.chown(s["path"], s["uid"], s["gid"])
    os.chmod(s["path"], int(s["mode"], 8))
    l.listen(16)
    socks[l] = s
    log({"event": "listening", "name": s["name"]})

while True:
    ready, _, _ = select.select(list(socks), [], [], 60)
    for l in ready:
        c, _ = l.accept()
        s = socks[l]
        pid, uid, gid = struct.unpack("3i", c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        c.settimeout(1.0)
        data = b""
        try:
            while b"\n" not in data and len(data) < 512:
                b = c.recv(512)
                if not b:
                    break
                data += b
        except OSError:
            pass
        try:
            c.sendall((s["reply"] + "\n").encode())
        except OSError:
            pass
        c.close()
        log({"event": "connect", "name": s["name"], "uid": uid, "token": data.decode(errors="replace").split("\n")[0]})
