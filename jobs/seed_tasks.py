"""The functions of the multiprocessing tutorial's examples, as Python 3,
for the jobs/python-*.toml job files beside this module.

They are the tutorial's own functions with two changes: the random sleeps
(up to 3, 10 or 40 seconds) are short fixed ones, so that runs are quick and
their order is reproducible; and where the tutorial hands a function a
multiprocessing Value, Array, list or Queue, the job hands it the name of a
shared value (`jobfile.shared`) or makes the queue a stream map.
"""

import os
import time

import jobfile


# --- Pool and apply_async: python-five-tasks.toml ---------------------------


def long_time_task(name, seconds=0.1):
    print("Run task %s (%s)..." % (name, os.getpid()))
    start = time.time()
    time.sleep(seconds)
    end = time.time()
    print("Task %s runs %0.2f seconds." % (name, (end - start)))


# --- Pool(processes=3): python-pool3-async.toml, python-pool3-blocking.toml,
# --- python-apply-async-results.toml -----------------------------------------


def func(msg):
    print("msg:", msg)
    time.sleep(0.3)
    print("end")
    return "done" + msg


def collect(*results):
    """The main program's loop over res.get()."""
    for res in results:
        print(":::", res)
    print("Sub-process(es) done.")
    return list(results)


# --- several functions on one pool: python-several-functions.toml -----------


def _run(name, label, seconds):
    print("Run task %s-%s" % (name, os.getpid()))
    start = time.time()
    time.sleep(seconds)
    end = time.time()
    print("Task %s runs %0.2f seconds." % (label, (end - start)))


def Lee():
    _run("Lee", "Lee,", 0.1)


def Marlon():
    _run("Marlon", "Marlon", 0.4)


def Allen():
    _run("Allen", "Allen", 0.3)


def Frank():
    _run("Frank", "Frank", 0.2)


# --- Pool.map: python-map-square.toml ------------------------------------------


def m1(x):
    print(x * x)
    return x * x


# --- Value and Array: python-shared-value-array.toml ----------------------------


def f(n, a):
    """Sets the Value named `n` to 3.14 and element 0 of the Array named `a`
    to 5."""
    jobfile.shared.set(n, 3.14)
    jobfile.shared.set(a + "[0]", 5)


def show(*names):
    """print(num.value); print(arr[:])"""
    values = [jobfile.shared.get(name) for name in names]
    for value in values:
        print(value)
    return values


# --- Manager: python-manager-list.toml ------------------------------------------


def manager_f(x, arr, l):
    """x.value = 3.14; arr[0] = 5; l.append('Hello'), on the engine's values."""
    jobfile.shared.set(x, 3.14)
    jobfile.shared.set(arr + "[0]", 5)
    jobfile.shared.append(l, "Hello")


# --- Queue: python-queue.toml ------------------------------------------------------


def write():
    """The writer: each value it yields is put on the queue, and read at once
    by a reader (a map over this task's stream)."""
    for value in ["A", "B", "C"]:
        print("Put %s to queue..." % value, flush=True)
        yield value
        time.sleep(0.2)


def read(value):
    """The reader, called once for each value taken off the queue."""
    line = "Get %s from queue." % value
    print(line)
    return line
