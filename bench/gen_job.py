#!/usr/bin/env python3
"""Write a job file for the benchmarks.

  gen_job.py tasks N [--processes P] OUT   N [[task]] entries of builtin noop
  gen_job.py map N [--processes P] OUT    one task: noop mapped over range(N)
  gen_job.py one OUT                      a single noop task
"""
import argparse


def header(out, processes):
    out.write("version = 1\n\n")
    if processes:
        out.write(f"[pool]\nprocesses = {processes}\n\n")
    out.write('[functions.noop]\nbuiltin = "noop"\n\n')


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["tasks", "map", "one"])
    ap.add_argument("n", nargs="?", type=int, default=1)
    ap.add_argument("out")
    ap.add_argument("--processes", type=int, default=0)
    a = ap.parse_intermixed_args()
    with open(a.out, "w", buffering=1 << 20) as out:
        header(out, a.processes)
        if a.kind == "tasks":
            block = '[[task]]\nfunction = "noop"\n\n'
            out.write(block * a.n)
        elif a.kind == "map":
            out.write(f'[[task]]\nid = "items"\nfunction = "noop"\n'
                      f"map = {{ range = [0, {a.n}] }}\n")
        else:
            out.write('[[task]]\nid = "one"\nfunction = "noop"\n')


if __name__ == "__main__":
    main()
