#!/usr/bin/env python3
"""The Python side of bench/dispatch.sh: N apply_async of a no-op on
multiprocessing.Pool(P) (fork), then close and join."""
import multiprocessing
import sys


def noop():
    return None


def main():
    n = int(sys.argv[1])
    processes = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    pool = multiprocessing.get_context("fork").Pool(processes)
    results = [pool.apply_async(noop) for _ in range(n)]
    pool.close()
    pool.join()
    for r in results:
        r.get()


if __name__ == "__main__":
    main()
