#!/usr/bin/python3
"""leakless lab listener: TCP/UDP endpoints that log every arrival.

argv[1]: JSON list of {id, proto: tcp|udp, addr, port, group?, iface?}
Logs one JSON line per event to stdout (flushed): {ev, id, peer, port, token}
ev: ready | accept | data | dgram. TCP and UDP echo what they receive, so a
probe that reached a listener gets a reply; a datagram carrying "delay=MS" is
echoed MS milliseconds later (to answer a socket the prober already closed).
Runs until killed.
"""
import heapq, json, re, selectors, socket, struct, sys, time


def log(**kv):
    sys.stdout.write(json.dumps(kv) + "\n")
    sys.stdout.flush()


def token_of(data):
    return data.split(b"\n", 1)[0].decode("ascii", "replace")[:80]


def open_socket(spec):
    v6 = ":" in spec["addr"]
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM if spec["proto"] == "tcp" else socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    if spec.get("freebind"):
        s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND
    s.bind((spec["addr"], spec["port"]))
    if spec.get("group"):
        ifindex = socket.if_nametoindex(spec["iface"])
        mreqn = socket.inet_aton(spec["group"]) + socket.inet_aton("0.0.0.0") + struct.pack("@i", ifindex)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    if spec["proto"] == "tcp":
        s.listen(256)
    s.setblocking(False)
    return s


def main():
    specs = json.loads(sys.argv[1])
    sel = selectors.DefaultSelector()
    for spec in specs:
        sel.register(open_socket(spec), selectors.EVENT_READ, ("listen", spec))
    log(ev="ready", n=len(specs))
    later = []  # (due, seq, socket, data, peer)
    seq = 0
    while True:
        now = time.monotonic()
        while later and later[0][0] <= now:
            _, _, s, data, peer = heapq.heappop(later)
            try:
                s.sendto(data, peer)
            except OSError:
                pass
        timeout = max(0.0, later[0][0] - now) if later else None
        for key, _ in sel.select(timeout):
            role, spec = key.data
            s = key.fileobj
            try:
                if role == "listen" and spec["proto"] == "tcp":
                    c, peer = s.accept()
                    c.setblocking(False)
                    log(ev="accept", id=spec["id"], peer=peer[0], port=peer[1])
                    sel.register(c, selectors.EVENT_READ, ("conn", dict(spec, peer=peer)))
                elif role == "listen":
                    data, peer = s.recvfrom(2048)
                    log(ev="dgram", id=spec["id"], peer=peer[0], port=peer[1], token=token_of(data))
                    m = re.search(rb"\ndelay=(\d+)", data)
                    if m:
                        seq += 1
                        heapq.heappush(later, (time.monotonic() + int(m.group(1)) / 1000, seq, s, data, peer))
                        continue
                    try:
                        s.sendto(data, peer)
                    except OSError:
                        pass
                else:
                    data = s.recv(2048)
                    if data:
                        log(ev="data", id=spec["id"], peer=spec["peer"][0], port=spec["peer"][1], token=token_of(data))
                        try:
                            s.send(data)
                        except OSError:
                            pass
                    sel.unregister(s)
                    s.close()
            except OSError:
                if role == "conn":
                    sel.unregister(s)
                    s.close()


if __name__ == "__main__":
    main()
