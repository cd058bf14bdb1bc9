#!/usr/bin/python3
"""A UDP socket with a flow to an Internet host, held open: an ICMP redirect
is matched against a socket, and one that matches changes the route.
argv[1]: JSON {"src", "sport", "dst", "dport"}; prints "ready", then waits."""
import json, socket, sys, time

p = json.loads(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((p["src"], p["sport"]))
s.connect((p["dst"], p["dport"]))
s.send(b"lk")
print("ready", flush=True)
time.sleep(30)
