#!/usr/bin/env python3
"""Propagation of fleet transactions (docs/performance.md, "Fleet propagation"): the time from
a transaction's commit in etcd to every switch of the fleet applying it, at 10, 100 and 1,000
updates a second.

Starts one etcd member on loopback and HOSTS switches (programs/vnet.sluice, release build)
following it with --revision-log (whose `applied R UNIX_NS` lines say when each switch's
tables took revision R), loads 300 VMs, then writes migrations (each one transaction that
updates the VM's vm_location on every host, as `sluice ctl --etcd` would write it) at each
rate through etcd's JSON gateway, and reports the latency per transaction: the last switch's
application time minus the moment the transaction was sent (so it includes the commit), beside
the time the commit's own answer took. Standard library only; needs
etcd and etcdctl.

    python3 programs/tools/bench_fleet.py [--hosts 3] [--seconds 5]
"""
import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from netbytes import l4_packet, pcap_header, pcap_record  # noqa: E402

PREFIX = "/sluice/bench"
VMS = 300


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def vm(i):
    return (10 << 24) | (1 << 16) | i


def value(vm_host, here):
    """vm_location's value on host `here` for a VM on host `vm_host`, as Sluice encodes it."""
    if vm_host == here:
        return json.dumps({"action": "deliver", "args": ["0x0003"]}, separators=(",", ":"))
    local, far = 0xC000020B + here, 0xC000020B + vm_host
    return json.dumps({"action": "tunnel_ipip",
                       "args": [f"0x{local:08x}", f"0x{far:08x}", "0x0001"]}, separators=(",", ":"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rates", default="10,100,1000")
    a = ap.parse_args()
    sluice = os.path.join(ROOT, "target", "release", "sluice")
    work = tempfile.mkdtemp(prefix="sluice-fleet-bench-")
    procs = []
    try:
        client, peer = free_port(), free_port()
        procs.append(subprocess.Popen(
            ["etcd", "--name", "m0", "--data-dir", os.path.join(work, "etcd"),
             "--listen-client-urls", f"http://127.0.0.1:{client}",
             "--advertise-client-urls", f"http://127.0.0.1:{client}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"m0=http://127.0.0.1:{peer}", "--max-txn-ops", "4096"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ep = f"127.0.0.1:{client}"
        for _ in range(100):
            if subprocess.run(["etcdctl", "--endpoints", ep, "endpoint", "health"],
                              env=dict(os.environ, ETCDCTL_API="3"),
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        # A capture of one packet: the switches only follow the store here.
        cap = os.path.join(work, "one.pcap")
        with open(cap, "wb") as f:
            pcap_header(f)
            pcap_record(f, 0, l4_packet(0x0A090001, vm(1), 17, 5000, 80, 64, 0))
        logs = []
        for h in range(a.hosts):
            log = os.path.join(work, f"h{h}.log")
            logs.append(log)
            procs.append(subprocess.Popen(
                [sluice, "serve", "programs/vnet.sluice", "--etcd", ep, "--prefix", PREFIX,
                 "--group", "hosts", "--switch-id", f"h{h}", "--in", f"0={cap}",
                 "--out-dir", os.path.join(work, f"h{h}-out"),
                 "--control", os.path.join(work, f"h{h}.sock"), "--revision-log", log, "-q"],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for h in range(a.hosts):
            for _ in range(200):
                if os.path.exists(os.path.join(work, f"h{h}.sock")):
                    break
                time.sleep(0.05)
        at = [i % a.hosts for i in range(VMS)]
        setup = []
        for h in range(a.hosts):
            setup.append(f"[switch h{h}]")
            setup.append(f"table_add tunnel_term decap 192.0.2.{11 + h} =>")
            for i in range(VMS):
                ip = f"10.1.{i // 256}.{i % 256}"
                if at[i] == h:
                    setup.append(f"table_add vm_location deliver {ip} => 3")
                else:
                    setup.append(f"table_add vm_location tunnel_ipip {ip} => "
                                 f"192.0.2.{11 + h} 192.0.2.{11 + at[i]} 1")
        r = subprocess.run([sluice, "ctl", "--etcd", ep, "--prefix", PREFIX, "--program",
                            "programs/vnet.sluice", "-f", "-"], cwd=ROOT,
                           input="\n".join(setup) + "\n", capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"setup failed: {r.stderr}")
        time.sleep(1)
        conn = http.client.HTTPConnection("127.0.0.1", client)
        b64 = lambda s: base64.b64encode(s.encode()).decode()
        print(f"# {a.hosts} switches, 1 etcd member, {os.cpu_count()} CPUs")
        for rate in [int(x) for x in a.rates.split(",")]:
            commits = []
            n = int(rate * a.seconds)
            t0 = time.monotonic()
            for k in range(n):
                due = t0 + k / rate
                while time.monotonic() < due:
                    time.sleep(max(0, min(0.001, due - time.monotonic())))
                i = (k * 7919) % VMS
                to = (at[i] + 1) % a.hosts
                at[i] = to
                ops = [{"requestPut": {
                    "key": b64(f"{PREFIX}/switch/h{h}/entry/vm_location/0x{vm(i):08x}"),
                    "value": b64(value(to, h))}} for h in range(a.hosts)]
                sent = time.time_ns()
                conn.request("POST", "/v3/kv/txn", json.dumps({"success": ops}),
                              {"Content-Type": "application/json"})
                resp = json.loads(conn.getresponse().read())
                commits.append((int(resp["header"]["revision"]), sent, time.time_ns()))
            achieved = n / (time.monotonic() - t0)
            time.sleep(1.0)
            applied = []
            for log in logs:
                m = {}
                with open(log) as f:
                    for line in f:
                        w = line.split()
                        if w and w[0] == "applied":
                            m.setdefault(int(w[1]), int(w[2]))
                applied.append(sorted(m.items()))
            lat, rtt = [], []
            for rev, t, answered in commits:
                rtt.append((answered - t) / 1e6)
                last = 0
                for al in applied:
                    # The first revision at or after the commit that the switch applied.
                    at_rev = next((tt for rr, tt in al if rr >= rev), None)
                    if at_rev is None:
                        last = None
                        break
                    last = max(last, at_rev)
                if last is not None:
                    lat.append((last - t) / 1e6)
            lat.sort()
            rtt.sort()
            pick = lambda v, q: v[min(len(v) - 1, int(q * len(v)))]
            print(f"{rate:>5} updates/s (achieved {achieved:7.1f}): {len(lat)} of {n} applied "
                  f"everywhere; from sending the transaction to the last switch applying it: "
                  f"p50 {pick(lat, 0.5):.2f} ms, p99 {pick(lat, 0.99):.2f} ms, "
                  f"max {lat[-1]:.2f} ms (the commit's own answer: p50 {pick(rtt, 0.5):.2f} ms, "
                  f"p99 {pick(rtt, 0.99):.2f} ms)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
