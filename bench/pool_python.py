#!/usr/bin/env python3
"""The multiprocessing.Pool side of bench/python.sh (fork start method).

    pool_python.py DIR imap N OUT   Pool(2).imap(ident, range(N), chunksize=1),
                                    each result written to OUT as a JSON-lines
                                    record of the same shape as jobfile's
    pool_python.py DIR maxtasks N   Pool(2, maxtasksperchild=1).map(work, range(N), chunksize=1)
                                    over burn03.work (0.3 s of CPU at import)
    pool_python.py DIR first N      Pool(8).imap(work, range(N)) over burn1.work
                                    (1 s of CPU at import); prints a line at the
                                    first result, for first_record.py
    pool_python.py DIR map N        Pool(2).map(work, range(N)) over square.work

DIR holds the modules (bench/python.sh writes them); the script imports the
module before it starts the pool, as a Pool script does.
"""
import json
import multiprocessing
import sys
import time


def record(i, value):
    return json.dumps(
        {
            "task": "ident",
            "index": i,
            "function": "ident",
            "args": [i],
            "kwargs": {},
            "status": "ok",
            "value": value,
            "exit_code": None,
            "signal": None,
            "error": None,
            "stdout": "",
            "stderr": "",
            "attempts": 1,
            "worker": None,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "duration_ms": 0.0,
        },
        separators=(",", ":"),
    )


def main():
    folder, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.path.insert(0, folder)
    ctx = multiprocessing.get_context("fork")
    if mode == "imap":
        from ident import ident

        with ctx.Pool(2) as pool, open(sys.argv[4], "w") as out:
            for i, value in enumerate(pool.imap(ident, range(n), chunksize=1)):
                out.write(record(i, value) + "\n")
    elif mode == "maxtasks":
        from burn03 import work

        # chunksize=1: Pool counts a chunk as one task, and map's default
        # chunk here is 25 calls, so without it a process would serve 25
        # calls, not one as jobfile's max_tasks_per_child = 1 does.
        with ctx.Pool(2, maxtasksperchild=1) as pool:
            pool.map(work, range(n), chunksize=1)
    elif mode == "first":
        from burn1 import work

        with ctx.Pool(8) as pool:
            for i, _ in enumerate(pool.imap(work, range(n))):
                if i == 0:
                    print("first", flush=True)
    elif mode == "map":
        from square import work

        with ctx.Pool(2) as pool:
            pool.map(work, range(n))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
