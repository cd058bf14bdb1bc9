#!/usr/bin/python3
"""leakless adversary helper: what a hostile program sends, as the uid it runs as.

argv[1] is the mode; its parameters come as JSON in argv[2] or on stdin; one
JSON result on stdout (squat: one JSON line per event). Every payload starts with the run's
token so the harness finds it on the wire and at listeners. Bounded: every
loop has an end, every wait a timeout.

  sweep     {dst, dport, first, last, token}: bind every source port in
            [first, last] and send one datagram to dst:dport (what rides another
            user's UDP flow once it hits that user's port)
  datagram  {sends: [{family, dst, port, token, scope?, sport?, size?,
            broadcast?, ttl?, freebind?, src?}]}: one datagram each
  ping      {dst, id, token, src?, freebind?, timeout}: one ICMP echo from a
            ping socket bound to src (any address with IP_FREEBIND) and echo id
  raw       {dst, proto, token}: a raw IPv4 socket (needs CAP_NET_RAW)
  packet    {iface, src, dst, token}: an Ethernet frame with an IPv4/UDP packet
            from a packet socket (needs CAP_NET_RAW; bypasses the IP hooks)
  squat     {binds: [{proto, addr, port}]}: listen on each (a port tor would
            hold), print {ev: ready, bound, failed}, then log and answer every
            client: {ev: accept|data|dgram, addr, port, peer}
"""
import errno, json, os, selectors, socket, struct, sys, time

IP_FREEBIND = 15


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) and e.errno else type(e).__name__


def sweep(p):
    t0 = time.monotonic()
    payload = (p["token"] + "\n").encode()
    out = {"swept": 0, "bound": 0, "sent": 0, "sentPorts": [], "errors": {}}
    for port in range(p["first"], p["last"] + 1):
        out["swept"] += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("0.0.0.0", port))
            out["bound"] += 1
            s.sendto(payload, (p["dst"], p["dport"]))
            out["sent"] += 1
            if len(out["sentPorts"]) < 20:
                out["sentPorts"].append(port)
        except OSError as e:
            k = err_name(e)
            out["errors"][k] = out["errors"].get(k, 0) + 1
        finally:
            s.close()
    out["ms"] = round((time.monotonic() - t0) * 1000)
    return out


def one_datagram(d):
    res = {"dst": d["dst"], "port": d["port"], "ok": False, "error": None}
    v6 = d.get("family") == 6
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if d.get("freebind"):
            s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        if d.get("broadcast"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if d.get("ttl"):
            if v6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, d["ttl"])
            else:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, d["ttl"])
        if d.get("size"):
            # let the kernel fragment: no DF, no path MTU discovery
            s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT
        s.bind((d.get("src", "::" if v6 else "0.0.0.0"), d.get("sport", 0)))
        body = (d["token"] + "\n").encode()
        if d.get("size"):
            body = body + b"x" * (d["size"] - len(body))
        dst = (d["dst"], d["port"], 0, socket.if_nametoindex(d["scope"])) if v6 and d.get("scope") else (d["dst"], d["port"])
        s.sendto(body, dst)
        res["ok"] = True
        res["sport"] = s.getsockname()[1]
    except OSError as e:
        res["error"] = err_name(e)
    finally:
        s.close()
    return res


def ping(p):
    res = {"sent": False, "reply": False, "error": None}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    try:
        if p.get("freebind"):
            s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        s.bind((p.get("src", "0.0.0.0"), p["id"]))
        res["id"] = s.getsockname()[1]
        s.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, 1) + (p["token"] + "\n").encode(), (p["dst"], 0))
        res["sent"] = True
        s.settimeout(p.get("timeout", 1.0))
        s.recv(512)
        res["reply"] = True
    except socket.timeout:
        res["error"] = "TIMEOUT"
    except OSError as e:
        res["error"] = err_name(e)
    finally:
        s.close()
    return res


def raw(p):
    res = {"ok": False, "error": None}
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, p["proto"])
        try:
            s.sendto((p["token"] + "\n").encode(), (p["dst"], 0))
            res["ok"] = True
        finally:
            s.close()
    except OSError as e:
        res["error"] = err_name(e)
    return res


def packet(p):
    res = {"ok": False, "error": None}
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    except OSError as e:
        res["error"] = err_name(e)
        return res
    try:
        src_mac = bytes.fromhex(open("/sys/class/net/%s/address" % p["iface"]).read().strip().replace(":", ""))
        body = (p["token"] + "\n").encode()
        udp = struct.pack("!HHHH", 40404, 9999, 8 + len(body), 0) + body
        # header checksum left 0: the witness is the sut's own uplink capture, which sees the frame leave
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton(p["src"]), socket.inet_aton(p["dst"]))
        frame = b"\xff" * 6 + src_mac + struct.pack("!H", 0x0800) + ip + udp
        s.bind((p["iface"], 0))
        s.send(frame)
        res["ok"] = True
    except OSError as e:
        res["error"] = err_name(e)
    finally:
        s.close()
    return res


def squat(p):
    sel = selectors.DefaultSelector()
    bound, failed = [], []
    for b in p["binds"]:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if b["proto"] == "tcp" else socket.SOCK_DGRAM)
        try:
            s.bind((b["addr"], b["port"]))
            if b["proto"] == "tcp":
                s.listen(16)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, ("listen", b))
            bound.append(b)
        except OSError as e:
            failed.append(dict(b, error=err_name(e)))
            s.close()
    print(json.dumps({"ev": "ready", "bound": bound, "failed": failed}), flush=True)
    deadline = time.monotonic() + p.get("seconds", 60)
    while time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            role, b = key.data
            s = key.fileobj
            try:
                if role == "listen" and b["proto"] == "tcp":
                    c, peer = s.accept()
                    print(json.dumps({"ev": "accept", "addr": b["addr"], "port": b["port"], "peer": peer[1]}), flush=True)
                    # what a fake ControlPort or SocksPort would say first
                    c.settimeout(0.5)
                    try:
                        c.send(b"250 squatter\r\n")
                        data = c.recv(256)
                        if data:
                            print(json.dumps({"ev": "data", "addr": b["addr"], "port": b["port"], "peer": peer[1]}), flush=True)
                            c.send(data)
                    except OSError:
                        pass
                    c.close()
                elif role == "listen":
                    data, peer = s.recvfrom(2048)
                    print(json.dumps({"ev": "dgram", "addr": b["addr"], "port": b["port"], "peer": peer[1]}), flush=True)
                    s.sendto(data, peer)
            except OSError:
                pass


MODES = {"sweep": sweep, "ping": ping, "raw": raw, "packet": packet}


def main():
    mode = sys.argv[1]
    p = json.loads(sys.argv[2]) if len(sys.argv) > 2 else json.load(sys.stdin)
    if mode == "squat":
        squat(p)
        return
    if mode == "datagram":
        out = [one_datagram(d) for d in p["sends"]]
    else:
        out = MODES[mode](p)
    json.dump({"uid": os.getuid(), "result": out}, sys.stdout)


if __name__ == "__main__":
    main()
