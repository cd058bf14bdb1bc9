#!/usr/bin/python3
"""A hostile program in a namespace reaching past the network boundary
through the filesystem: Unix sockets (buses, NetworkManager, the display),
the other namespace's and the desktop user's homes, the user's service
manager (systemd-run --user), and an inventory of every socket it can see.

argv[1]: JSON {"token", "connect": [paths], "plant": [dirs], "read": [dirs],
               "systemdRun": [null | bus address], "hold": bool}
hold: print "PID <pid>" and wait (the test inspects this process's mount namespace).
Otherwise prints one line "ATTACK-RESULT <json>".
"""
import errno, json, os, socket, subprocess, sys, time


def err(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) and e.errno else type(e).__name__


spec = json.loads(sys.argv[1])
if spec.get("hold"):
    sys.stdout.write(f"PID {os.getpid()}\n")
    sys.stdout.flush()
    time.sleep(60)
    sys.exit(0)

token = spec["token"]
result = {"uid": os.getuid(), "home": os.environ.get("HOME"), "connect": [], "plant": [], "read": [], "systemdRun": []}

for path in spec.get("connect", []):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.connect(path)
    except OSError as e:
        result["connect"].append({"path": path, "ok": False, "error": err(e)})
        s.close()
        continue
    # connected: the socket is reachable, whatever it makes of what follows (a real bus resets a line that is not D-Bus)
    try:
        s.sendall((token + "\n").encode())
        reply = s.recv(512).decode(errors="replace").strip()
    except OSError as e:
        reply = f"<{err(e)}>"
    finally:
        s.close()
    result["connect"].append({"path": path, "ok": True, "reply": reply})

name = f".lk-plant-{token}"
for d in spec.get("plant", []):
    d = os.path.expandvars(d)
    try:
        with open(os.path.join(d, name), "w") as f:
            f.write(f"planted {token}\n")
        result["plant"].append({"dir": d, "ok": True})
    except OSError as e:
        result["plant"].append({"dir": d, "ok": False, "error": err(e)})

for d in spec.get("read", []):
    d = os.path.expandvars(d)
    try:
        found = [n for n in os.listdir(d) if n.startswith(".lk-plant-")]
        data = [open(os.path.join(d, n)).read().strip() for n in found]
        result["read"].append({"dir": d, "ok": True, "found": data})
    except OSError as e:
        result["read"].append({"dir": d, "ok": False, "error": err(e)})

for bus in spec.get("systemdRun", []):
    env = dict(os.environ)
    if bus:
        env["DBUS_SESSION_BUS_ADDRESS"] = bus
    try:
        r = subprocess.run(["systemd-run", "--user", f"--unit=lk-{token}", "true"], env=env, capture_output=True, text=True, timeout=15)
        result["systemdRun"].append({"bus": bus, "exit": r.returncode, "stderr": r.stderr.strip()[-300:]})
    except (OSError, subprocess.TimeoutExpired) as e:
        result["systemdRun"].append({"bus": bus, "exit": None, "stderr": type(e).__name__})

sys.stdout.write("ATTACK-RESULT " + json.dumps(result) + "\n")
