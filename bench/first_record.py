#!/usr/bin/env python3
"""Runs CMD... and prints the seconds from its start to the first line it
writes on stdout (then reads the rest, and waits for it to end)."""
import subprocess
import sys
import time


def main():
    start = time.monotonic()
    proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first = proc.stdout.readline()
    seconds = time.monotonic() - start
    for _ in proc.stdout:
        pass
    if proc.wait() != 0 or not first:
        sys.exit("%s failed (exit %s)" % (sys.argv[1], proc.returncode))
    print("%.3f" % seconds)


if __name__ == "__main__":
    main()
