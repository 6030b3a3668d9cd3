#!/usr/bin/env python3
"""The Python side of bench/startup.sh: a pool of one worker runs one no-op."""
import multiprocessing


def noop():
    return None


if __name__ == "__main__":
    with multiprocessing.get_context("fork").Pool(1) as pool:
        pool.apply(noop)
