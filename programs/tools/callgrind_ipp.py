#!/usr/bin/env python3
"""Instructions per packet in the JIT's generated code, counted by callgrind.

Runs `sluice bench --only jit --rounds 1 --packets N` under callgrind twice, with N and 2N
packets, and divides the difference in instructions by N: what the program costs once per
run (reading the capture, compiling, the executors' agreement check) cancels out. Generated
code has no symbol, so callgrind lists it as an address in an unknown object (`???:0x...`);
`jit` is the sum of those. `process_batch` is the Rust wrapper around it (its own
instructions, inlined helpers included), `total` everything the run did per packet (the copy
into the packet buffer included).

    python3 programs/tools/callgrind_ipp.py target/release/sluice programs/port_dnat.sluice \
        --entries /tmp/b20k/port_dnat.entries --in /tmp/b20k/port_dnat.pcap

Instruction counts do not depend on the machine's load, so they compare code before and
after a change where wall-clock ratios are too noisy.
"""

import argparse
import re
import subprocess
import sys
import tempfile


def measure(sluice, program, entries, capture, packets, batch):
    with tempfile.NamedTemporaryFile(suffix=".cg") as out:
        cmd = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}",
            sluice, "bench", program, "--in", capture, "--only", "jit",
            "--rounds", "1", "--packets", str(packets), "--batch", str(batch),
        ]
        if entries:
            cmd += ["--entries", entries]
        subprocess.run(cmd, check=True, capture_output=True)
        ann = subprocess.run(
            ["callgrind_annotate", "--threshold=100", "--auto=no", "--inclusive=no", out.name],
            check=True, capture_output=True, text=True,
        ).stdout
    jit = wrapper = total = 0
    for line in ann.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*)$", line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        what = m.group(2)
        if what.startswith("PROGRAM TOTALS"):
            total = n
        elif re.match(r"\?\?\?:0x[0-9a-f]+ \[\?\?\?\]", what):
            jit += n
        elif "process_batch" in what and ("JitProgram" in what or "JitWorker" in what):
            wrapper += n
    return jit, wrapper, total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sluice")
    ap.add_argument("program")
    ap.add_argument("--entries")
    ap.add_argument("--in", dest="capture", required=True)
    ap.add_argument("--packets", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()
    one = measure(a.sluice, a.program, a.entries, a.capture, a.packets, a.batch)
    two = measure(a.sluice, a.program, a.entries, a.capture, 2 * a.packets, a.batch)
    jit, wrapper, total = ((y - x) / a.packets for x, y in zip(one, two))
    print(f"{a.program}: jit {jit:.1f}  process_batch {wrapper:.1f}  total {total:.1f} "
          f"instructions per packet")


if __name__ == "__main__":
    sys.exit(main())
