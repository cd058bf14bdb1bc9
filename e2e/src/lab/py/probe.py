#!/usr/bin/python3
"""leakless lab probe: sends real packets as the uid it runs as.

Reads a JSON list of probes on stdin, runs them concurrently (bounded), prints
one JSON list of results. Each probe binds the source port (ICMP: echo id) the
harness gave it, which no other probe has, so the harness can find its packets
in the uplink capture and at the listeners; a port it cannot bind is an error,
never silently replaced by one the kernel picks.

probe: {id, kind, family (4|6), dst, port?, token, timeout, proto?, sport}
kind:  tcp | udp | udp-bcast | icmp | raw | tcp-invalid | udp-closed
result: {id, sport, ok, error, ms}   ok = connected / got a reply / sent
"""
import errno, json, os, select, socket, struct, sys, time
from concurrent.futures import ThreadPoolExecutor


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) and e.errno else type(e).__name__


def fam(p):
    return socket.AF_INET6 if p["family"] == 6 else socket.AF_INET


def any_addr(p):
    return "::" if p["family"] == 6 else "0.0.0.0"


def wait_readable(s, timeout):
    r, _, _ = select.select([s], [], [], timeout)
    return bool(r)


def await_reply(s, p, res):
    """ok once any answer arrives within the probe's timeout, else TIMEOUT"""
    if wait_readable(s, p["timeout"]):
        s.recv(512)
        res["ok"] = True
    else:
        res["error"] = "TIMEOUT"


def own_port(s, p, res):
    s.bind((any_addr(p), p["sport"]))
    res["sport"] = s.getsockname()[1]


def tcp(p, res):
    s = socket.socket(fam(p), socket.SOCK_STREAM)
    try:
        own_port(s, p, res)
        res["sport"] = s.getsockname()[1]
        s.settimeout(p["timeout"])
        s.connect((p["dst"], p["port"]))
        res["ok"] = True
        s.sendall((p["token"] + "\n").encode())
        if wait_readable(s, p["timeout"]):
            s.recv(256)
    finally:
        s.close()


def udp(p, res, broadcast=False, keep=True):
    s = socket.socket(fam(p), socket.SOCK_DGRAM)
    try:
        own_port(s, p, res)
        if broadcast:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            s.sendto((p["token"] + "\n").encode(), (p["dst"], p["port"]))
            res["ok"] = True  # sent; no reply comes back to a broadcast/multicast sender through conntrack
            return
        s.connect((p["dst"], p["port"]))
        # a closed-socket probe asks the listener to answer after it has closed
        s.send((p["token"] + ("\n" if keep else "\ndelay=150\n")).encode())
        if not keep:
            res["ok"] = True  # sent and closed: the echo will hit a closed port
            return
        await_reply(s, p, res)
    finally:
        s.close()


def icmp(p, res):
    v6 = p["family"] == 6
    s = socket.socket(fam(p), socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    try:
        own_port(s, p, res)  # ping sockets: the local "port" is the echo id
        payload = (p["token"] + "\n").encode()
        hdr = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, 0, 1)  # kernel fills id and checksum
        s.sendto(hdr + payload, (p["dst"], 0))
        await_reply(s, p, res)
    finally:
        s.close()


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def source_for(dst):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.connect((dst, 9))
        return u.getsockname()[0]
    finally:
        u.close()


def tcp_invalid(p, res):
    # A FIN with no connection: conntrack calls it INVALID. It is what a
    # transparent proxy leaks when a connection's state is gone (Whonix/Tails).
    sport = p["sport"]
    res["sport"] = sport
    src = source_for(p["dst"])
    tcph = struct.pack("!HHIIBBHHH", sport, p["port"], 12345, 0, 5 << 4, 0x01, 1024, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(p["dst"]) + struct.pack("!BBH", 0, 6, len(tcph))
    tcph = tcph[:16] + struct.pack("!H", checksum(pseudo + tcph)) + tcph[18:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    try:
        s.sendto(tcph, (p["dst"], 0))
        res["ok"] = True
    finally:
        s.close()


def raw(p, res):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, p["proto"])
    try:
        s.sendto((p["token"] + "\n").encode(), (p["dst"], 0))
        res["ok"] = True
    finally:
        s.close()


KINDS = {
    "tcp": tcp,
    "udp": udp,
    "udp-bcast": lambda p, r: udp(p, r, broadcast=True),
    "udp-closed": lambda p, r: udp(p, r, keep=False),
    "icmp": icmp,
    "raw": raw,
    "tcp-invalid": tcp_invalid,
}


def run(p):
    res = {"id": p["id"], "sport": None, "ok": False, "error": None}
    t0 = time.monotonic()
    try:
        KINDS[p["kind"]](p, res)
    except socket.timeout:
        res["error"] = "TIMEOUT"
    except Exception as e:  # noqa: BLE001 - every failure is data for the harness
        res["error"] = err_name(e)
    res["ms"] = round((time.monotonic() - t0) * 1000)
    return res


def main():
    probes = json.load(sys.stdin)
    workers = max(1, min(int(os.environ.get("PROBE_WORKERS", "48")), len(probes) or 1))
    with ThreadPoolExecutor(max_workers=workers) as ex:
        results = list(ex.map(run, probes))
    json.dump({"uid": os.getuid(), "gid": os.getgid(), "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
