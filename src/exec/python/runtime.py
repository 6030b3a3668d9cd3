"""jobfile's Python side, shipped inside the jobfile binary (stdlib only,
Python 3.8 or newer). Run as `python3 -c BOOT SOURCE MODE CONFIG`, where
BOOT compiles SOURCE under the name `<jobfile>`:

- `template`: imports the job's modules once, then forks one interpreter
  per request from itself, so that no interpreter pays for the imports
  again. Requests come from jobfile workers on the listening socket at
  fd 3, each with three descriptors attached: the interpreter's control
  socket, and the pipes that become its fd 1 and fd 2. The template stays
  single-threaded; when an import has started threads, forking it would
  be unsound, so it starts each interpreter fresh instead (fork and exec,
  which imports the modules itself).
- `serve`: one interpreter, on the control socket at fd 3, started fresh.
- `check`: looks modules up without running them, for `jobfile check`.

An interpreter reads one call at a time on its control socket (a JSON
line) and answers with JSON lines: `item` for each value a generator
yields when the call streams, `shared` for an operation on the run's
shared values (answered by the worker), and `done` at the end. What the
call writes to fd 1 and fd 2 goes straight into the pipes the worker reads:
print, C extensions and child processes alike.
"""

import collections
import importlib
import importlib.machinery
import importlib.util
import json
import math
import os
import selectors
import signal
import socket
import sys
import time
import traceback
import types

# Must match BOOT in mod.rs.
BOOT = "import sys; exec(compile(sys.argv.pop(1), '<jobfile>', 'exec'))"

# Interpreters the template keeps forked ahead of requests.
SPARES = 2

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option, value):
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except Exception:
        return False


def _unbuffer_libc_stdout():
    """C code that prints through libc's stdout (printf) writes to fd 1 at
    once, so what it prints is its own call's, with no flush per call."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        stdout = ctypes.c_void_p.in_dll(libc, "stdout")
        libc.setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]
        libc.fflush(stdout)
        libc.setvbuf(stdout, None, 2, 0)  # _IONBF
    except Exception:
        pass


def _die_with_parent(sig, parent):
    """Dies by `sig` when the parent dies, and at once if it already has."""
    _prctl(PR_SET_PDEATHSIG, int(sig))
    if os.getppid() != parent:
        os._exit(1)


# --- the `jobfile` module that calls import ---------------------------------

_channel = None  # the interpreter serving calls, once there is one


class _Shared:
    """The run's shared values: each operation is atomic, applied by the
    engine, with the same return values as the `shared.*` builtins."""

    def get(self, name):
        return self._op("get", [name])

    def set(self, name, value):
        return self._op("set", [name, value])

    def add(self, name, number):
        return self._op("add", [name, number])

    def append(self, name, value):
        return self._op("append", [name, value])

    def put(self, name, key, value):
        return self._op("put", [name, key, value])

    @staticmethod
    def _op(op, args):
        if _channel is None or _channel.pid != os.getpid():
            raise RuntimeError("jobfile.shared works only inside a call of a jobfile function")
        return _channel.shared(op, args)


def _jobfile_module():
    module = types.ModuleType("jobfile")
    module.__doc__ = "What a Python function run by jobfile can reach of its run."
    module.shared = _Shared()
    return module


# --- JSON values --------------------------------------------------------------


class NotJson(Exception):
    pass


# Integers the engine keeps exactly (JSON numbers are read as 64-bit
# integers, else as floats).
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def _where(path):
    return "the value" + path if path else "the value"


def _check_json(value, path=""):
    """Raises NotJson when `value` has no faithful JSON form."""
    t = type(value)
    if t is str:
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise NotJson(
                    "%s is a string that is not valid Unicode (%r): a file name that "
                    "could not be decoded?" % (_where(path), value)
                ) from None
        return
    if t is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise NotJson(
                "%s is an integer beyond 64 bits (%d), which the engine would round: "
                "return it as a string" % (_where(path), value)
            )
        return
    if t is bool or value is None:
        return
    if t is float:
        if math.isnan(value) or math.isinf(value):
            raise NotJson("%s is %r, which JSON cannot hold" % (_where(path), value))
        return
    if t is list or t is tuple:
        for i, x in enumerate(value):
            _check_json(x, "%s[%d]" % (path, i))
        return
    if t is dict:
        for k, x in value.items():
            if type(k) is not str:
                raise NotJson(
                    "%s has a key of type %s (%r): JSON keys are strings"
                    % (_where(path), type(k).__name__, k)
                )
            _check_json(k, "%s (a key)" % path)
            _check_json(x, "%s[%r]" % (path, k))
        return
    # Subclasses of the JSON types (an IntEnum, a namedtuple) are fine.
    if isinstance(value, (str, int)):
        return
    if isinstance(value, float):
        return _check_json(float(value), path)
    if isinstance(value, (list, tuple)):
        return _check_json(list(value), path)
    if isinstance(value, dict):
        return _check_json(dict(value), path)
    raise NotJson("%s is of type %s, which is not JSON" % (_where(path), t.__name__))


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_encode_ascii = json.encoder.encode_basestring_ascii
_clock = time.perf_counter
_write = os.write


def _to_json(value):
    t = type(value)
    if t is int:
        if _INT_MIN <= value <= _INT_MAX:
            return int.__repr__(value)
    elif t is str:
        if value.isascii():
            return _encode_ascii(value)
    elif value is None:
        return "null"
    elif t is bool:
        return "true" if value else "false"
    _check_json(value)
    return _encode(value)


# --- one interpreter ------------------------------------------------------------


def _resolve(target, cache):
    fn = cache.get(target)
    if fn is not None:
        return fn
    module_name, _, name = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(
                "module '%s' has no attribute '%s'" % (module_name, name)
            ) from None
    if not callable(obj):
        raise TypeError("%s is not callable: it is a %s" % (target, type(obj).__name__))
    cache[target] = obj
    return obj


class Channel:
    """The control socket of an interpreter, and the loop that serves calls."""

    def __init__(self, fd):
        self.pid = os.getpid()
        # Not for what calls start: the socket's end must mean our end.
        os.set_inheritable(fd, False)
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(True)
        self.inbuf = bytearray()
        # Requests read while waiting for a shared-value answer.
        self.requests = collections.deque()
        import threading

        self.shared_lock = threading.Lock()
        self.functions = {}
        self.home = os.getcwd()
        self.forked = False
        # Variables a call set, with the values they had before it.
        self.env_before = {}
        self.marks = {}
        # Where fd 1 and fd 2 really go: put back if a call closes them.
        self.saved = []
        for fd in (1, 2):
            st = os.fstat(fd)
            self.saved.append((fd, os.dup(fd), st.st_ino, st.st_dev))
        # Wall-clock microseconds at clock0: a call's start is one reading
        # of the monotonic clock.
        self.clock0 = _clock()
        self.wall_us = time.time() * 1e6

    def readline(self):
        """The next request line, or None at the end of the socket."""
        if self.requests:
            return self.requests.popleft()
        return self.read_line()

    def read_line(self):
        while True:
            nl = self.inbuf.find(b"\n")
            if nl >= 0:
                line = bytes(self.inbuf[: nl + 1])
                del self.inbuf[: nl + 1]
                return line
            data = self.sock.recv(65536)
            if not data:
                return None
            self.inbuf += data

    def send(self, obj):
        self.send_raw(json.dumps(obj, separators=(",", ":")))

    def send_raw(self, line):
        # At once, every time: an answer held back would be lost with the
        # interpreter if a later call killed it.
        self.sock.sendall(line.encode("utf-8", "replace") + b"\n")


    def shared(self, op, args):
        # Threads of one call share the socket: one request at a time.
        with self.shared_lock:
            return self._shared(op, args)

    def _shared(self, op, args):
        self.flush_output()
        self.send({"shared": {"op": op, "args": args}})
        while True:
            line = self.read_line()
            if not line:
                os._exit(0)
            reply = json.loads(line)
            if "f" not in reply and "batch" not in reply:
                break
            # A call sent ahead, queued before the answer: it waits its turn.
            self.requests.append(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply.get("ok")

    def flush_output(self):
        try:
            sys.stdout.flush()
        except Exception:
            pass
        try:
            sys.stderr.flush()
        except Exception:
            pass

    def mend_output(self):
        """Puts fd 1 and fd 2 back where they belong if a call closed or
        moved them, and gives Python working sys.stdout and sys.stderr."""
        for fd, saved, ino, dev in self.saved:
            try:
                st = os.fstat(fd)
                same = st.st_ino == ino and st.st_dev == dev
            except OSError:
                same = False
            if not same:
                os.dup2(saved, fd)
        out, err = sys.stdout, sys.stderr
        if out is None or out.closed:
            sys.stdout = open(1, "w", buffering=1, closefd=False)
        if err is None or err.closed:
            sys.stderr = open(2, "w", buffering=1, closefd=False)

    def serve(self):
        global _channel
        _channel = self
        while True:
            line = self.readline()
            if not line:
                return
            try:
                call = json.loads(line)
            except ValueError:
                return
            batch = call.get("batch")
            if batch is None:
                self.run(call)
            else:
                # Calls sent ahead come in one line; each is answered alone.
                for one in batch:
                    self.run(one)

    def run(self, call):
        env = call.get("env")
        cwd = call.get("cwd")
        reply = None
        clock = _clock()
        try:
            if env or self.env_before:
                self.set_env(env or {})
            if cwd:
                os.chdir(cwd)
            fn = self.functions.get(call["f"]) or _resolve(call["f"], self.functions)
            value = fn(*call.get("args", ()), **call.get("kwargs", {}))
            if type(value) is types.GeneratorType:
                reply = self.generate(value, call.get("stream", False))
            else:
                reply = '{"done":{"ok":true,"value":' + _to_json(value) + "}}"
        except BaseException as e:  # SystemExit and KeyboardInterrupt too
            reply = self.failure(e)
        finally:
            if cwd:
                try:
                    os.chdir(self.home)
                except OSError:
                    pass
        if self.forked:
            # A process the call forked came back here: it must not answer.
            self.flush_output()
            os._exit(0)
        self.flush_output()
        self.mend_output()
        mark = call.get("mark")
        if mark:
            # Calls sent ahead: the worker finds where this call's output
            # ends by this mark on each stream, and learns its times here.
            m = self.marks.get(mark)
            if m is None:
                m = self.marks[mark] = b"\0jobfile-end:" + mark.encode() + b"\0"
            _write(1, m)
            _write(2, m)
            reply = '%s,"started_us":%d,"duration_us":%d}}' % (
                reply[:-2],
                self.wall_us + (clock - self.clock0) * 1e6,
                (_clock() - clock) * 1e6,
            )
        self.send_raw(reply)

    def set_env(self, env):
        """Gives the call its environment. What the last call set is put
        back here, before the next call runs (nothing of the interpreter's
        runs between two calls), so variables that stay the same from call
        to call (JOBFILE_TASK, JOBFILE_SLOT) cost nothing."""
        before = self.env_before
        environ = os.environ
        for k in [k for k in before if k not in env]:
            v = before.pop(k)
            if v is None:
                environ.pop(k, None)
            else:
                environ[k] = v
        for k, v in env.items():
            if k not in before:
                before[k] = environ.get(k)
            if environ.get(k) != v:
                environ[k] = v

    def generate(self, gen, stream):
        """Runs a generator: each value it yields is an item (sent at once
        when the call streams), and its value is the list of them."""
        items = []
        for item in gen:
            text = _to_json(item)
            items.append(text)
            if stream:
                self.flush_output()
                self.send_raw('{"item":%s}' % text)
        return '{"done":{"ok":true,"value":[%s]}}' % ",".join(items)

    def failure(self, e):
        if isinstance(e, NotJson):
            error = "TypeError: cannot return it: %s" % e
        else:
            message = str(e)
            error = type(e).__name__ + (": " + message if message else "")
            tb = e.__traceback__
            # Our own frame (this loop) is not the user's concern.
            if tb is not None and tb.tb_frame.f_code is Channel.run.__code__:
                tb = tb.tb_next
            try:
                text = "".join(traceback.format_exception(type(e), e, tb))
                sys.stderr.write(text)
            except Exception:
                pass
        # A message may hold what JSON cannot (an undecodable file name).
        error = error.encode("utf-8", "replace").decode("utf-8")
        return json.dumps({"done": {"ok": False, "error": error}}, separators=(",", ":"))


def _after_fork_in_child():
    # A call forked: the child shares our control socket, which it must
    # never write; its stdout and stderr still reach the call's capture.
    ch = _channel
    if ch is not None:
        ch.forked = True
        try:
            os.close(ch.sock.detach())
        except Exception:
            pass


def serve(fd, config, imported):
    os.environ.pop("JOBFILE_PY_CONFIG", None)
    if not imported:
        _import_all(config)
    _prepare_serving()
    Channel(fd).serve()
    os._exit(0)


def _prepare_serving():
    """What an interpreter sets up before its first call."""
    try:
        import faulthandler

        # A segfault in C code, or a timeout's SIGTERM, leaves a Python
        # stack in stderr: where it crashed, or where it hung.
        faulthandler.enable(file=sys.stderr, all_threads=True)
        faulthandler.register(signal.SIGTERM, file=sys.stderr, all_threads=True, chain=True)
    except Exception:
        pass
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.register_at_fork(after_in_child=_after_fork_in_child)
    _unbuffer_libc_stdout()


# --- the template ---------------------------------------------------------------


def _setup_path(config):
    # `[python] path` first, then the job file's folder. `python3 -c` also
    # puts the working folder first (as ""): gone, or a call's `cwd` would
    # change where later imports are found.
    while "" in sys.path:
        sys.path.remove("")
    for p in reversed(config.get("path", []) + [config["dir"]]):
        if p in sys.path:
            sys.path.remove(p)
        sys.path.insert(0, p)
    sys.modules["jobfile"] = _jobfile_module()
    try:
        os.chdir(config["dir"])
    except OSError:
        pass


def _import_all(config):
    for name in config.get("modules", []):
        try:
            importlib.import_module(name)
        except BaseException:
            # Each call of a function of this module shows the error, with
            # its traceback, when it imports the module again.
            pass


def _thread_count():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


class Template:
    def __init__(self, config, source):
        self.config = config
        self.source = source
        self.pid = os.getpid()
        self.listener = socket.socket(fileno=3)
        self.sel = selectors.DefaultSelector()
        self.conns = {}  # fd -> (socket, set of interpreter pids)
        self.owner = {}  # interpreter pid -> socket
        self.forkable = True
        # (pid, socket) of interpreters forked ahead of their requests.
        self.spares = []

    def start(self):
        _die_with_parent(signal.SIGTERM, self.config["engine"])
        if self.config.get("report"):
            # The engine's `check` first: one interpreter start for both.
            with os.fdopen(4, "w") as report:
                report.write(_report(self.config) + "\n")
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self.on_term)
        _import_all(self.config)
        threads = _thread_count()
        if threads > 1:
            self.forkable = False
            sys.stderr.write(
                "jobfile: importing %s started %d threads; forking from it would be "
                "unsound, so each interpreter starts fresh and imports them itself\n"
                % (", ".join(self.config.get("modules", [])), threads - 1)
            )
        sys.stdout.flush()
        sys.stderr.flush()
        r, w = os.pipe()
        os.set_blocking(w, False)
        os.set_blocking(r, False)
        signal.set_wakeup_fd(w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.wake = r
        self.sel.register(self.listener, selectors.EVENT_READ, "listen")
        self.sel.register(r, selectors.EVENT_READ, "wake")

    def on_term(self, *_):
        self.kill_all()
        os._exit(0)

    def kill_all(self):
        for pid, _ in self.spares:
            _kill_group(pid)
        for pid in list(self.owner):
            _kill_group(pid)
        for pid in _children(self.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def loop(self):
        while True:
            # Spares are forked while nothing else waits.
            want_spare = self.forkable and len(self.spares) < SPARES
            try:
                events = self.sel.select(0 if want_spare else None)
            except InterruptedError:
                continue
            if not events and want_spare:
                self.make_spare()
                continue
            for key, _ in events:
                if key.data == "listen":
                    try:
                        conn, _ = self.listener.accept()
                    except OSError:
                        continue
                    self.conns[conn.fileno()] = (conn, set())
                    self.sel.register(conn, selectors.EVENT_READ, "conn")
                elif key.data == "wake":
                    try:
                        while os.read(self.wake, 512):
                            pass
                    except OSError:
                        pass
                    self.reap()
                else:
                    self.serve_conn(key.fileobj)

    def serve_conn(self, conn):
        try:
            data, ancdata, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(3 * 4))
        except OSError:
            data, ancdata = b"", []
        fds = _parse_fds(ancdata)
        if not data:
            # The worker is gone: so is its interpreter.
            for fd in fds:
                os.close(fd)
            _, pids = self.conns.pop(conn.fileno(), (None, set()))
            for pid in pids:
                _kill_group(pid)
            self.sel.unregister(conn)
            conn.close()
            return
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            conn.sendall(b'{"error":"a request needs three descriptors"}\n')
            return
        try:
            pid = self.fork(fds)
        except OSError as e:
            conn.sendall(json.dumps({"error": str(e)}).encode() + b"\n")
            return
        finally:
            for fd in fds:
                os.close(fd)
        self.conns[conn.fileno()][1].add(pid)
        self.owner[pid] = conn
        conn.sendall(b'{"pid":%d}\n' % pid)

    def fork(self, fds):
        ctrl, out, err = fds
        if not self.forkable:
            return self.spawn(ctrl, out, err)
        while self.spares:
            pid, handle = self.spares.pop(0)
            try:
                handle.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _fd_bytes(fds))])
                return pid
            except OSError:
                _kill_group(pid)  # it died: fork one now
            finally:
                handle.close()
        return self.fork_interpreter(fds, None)

    def make_spare(self):
        """Forks the next interpreter ahead of its request: set up and
        waiting for its descriptors, so a request costs no fork."""
        if not self.forkable or len(self.spares) >= SPARES:
            return
        ours, theirs = socket.socketpair()
        try:
            pid = self.fork_interpreter(None, (ours, theirs))
        except OSError:
            ours.close()
            theirs.close()
            return
        theirs.close()
        self.spares.append((pid, ours))

    def fork_interpreter(self, fds, pair):
        """Forks an interpreter: for `fds` (control, stdout, stderr) now,
        or, with `pair`, one that waits for them on that socket pair."""
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                os.setpgid(0, 0)
                signal.set_wakeup_fd(-1)
                for sig in (signal.SIGCHLD, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_DFL)
                _die_with_parent(signal.SIGKILL, self.pid)
                self.sel.close()
                self.listener.close()
                for c, _ in self.conns.values():
                    c.close()
                for _, handle in self.spares:
                    handle.close()
                os.close(self.wake)
                _prepare_serving()
                if pair is not None:
                    pair[0].close()
                    fds = _recv_fds(pair[1], 3)
                    pair[1].close()
                    if fds is None:
                        os._exit(0)
                ctrl, out, err = fds
                os.dup2(out, 1)
                os.dup2(err, 2)
                os.dup2(ctrl, 3)
                for fd in fds:
                    if fd > 3:
                        os.close(fd)
                Channel(3).serve()
            finally:
                os._exit(0)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        return pid

    def spawn(self, ctrl, out, err):
        import subprocess

        parent = self.pid

        def child_setup():
            os.setpgid(0, 0)
            _die_with_parent(signal.SIGKILL, parent)

        config = dict(self.config)
        proc = subprocess.Popen(
            [sys.executable, "-c", BOOT, self.source, "serve", json.dumps(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            pass_fds=(ctrl,),
            preexec_fn=child_setup,
            env=dict(os.environ, JOBFILE_PY_CTRL=str(ctrl)),
        )
        # The child is reaped by reap(), not by the Popen object.
        proc.returncode = 0
        return proc.pid

    def reap(self):
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if info is None:
                return
            pid = info.si_pid
            for spare in [x for x in self.spares if x[0] == pid]:
                spare[1].close()
                self.spares.remove(spare)
            conn = self.owner.pop(pid, None)
            if conn is not None:
                # Before reaping, while the group id cannot be reused: what
                # the interpreter started in its group goes with it.
                _kill_group(pid)
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
            if conn is None:
                continue
            code = info.si_status if info.si_code == os.CLD_EXITED else None
            sig = info.si_status if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else None
            entry = self.conns.get(conn.fileno())
            if entry is not None:
                entry[1].discard(pid)
                try:
                    conn.sendall(json.dumps({"exit": {"pid": pid, "code": code, "signal": sig}}).encode() + b"\n")
                except OSError:
                    pass
            # Whatever the interpreter left behind in a session of its own
            # was adopted here (a subreaper): it ends too.
            spares = {pid for pid, _ in self.spares}
            for orphan in _children(self.pid):
                if orphan not in self.owner and orphan not in spares:
                    try:
                        os.kill(orphan, signal.SIGKILL)
                    except OSError:
                        pass


def _parse_fds(ancdata):
    fds = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            n = len(payload) // 4
            fds.extend(int.from_bytes(payload[i * 4 : i * 4 + 4], sys.byteorder) for i in range(n))
    return fds


def _recv_fds(sock, n):
    """Waits for `n` descriptors on `sock`; None if it ends first."""
    try:
        data, ancdata, _, _ = sock.recvmsg(16, socket.CMSG_SPACE(n * 4))
    except OSError:
        return None
    fds = _parse_fds(ancdata)
    if not data or len(fds) != n:
        return None
    return fds


def _fd_bytes(fds):
    return b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds)


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


# --- check ----------------------------------------------------------------------


def _find(module_name):
    """Finds a module without running it (nor its packages' __init__)."""
    parts = module_name.split(".")
    spec = importlib.util.find_spec(parts[0])
    if spec is None:
        return "no module named '%s'" % parts[0]
    for i in range(1, len(parts)):
        locations = spec.submodule_search_locations
        if locations is None:
            return "'%s' is not a package" % ".".join(parts[:i])
        full = ".".join(parts[: i + 1])
        spec = importlib.machinery.PathFinder.find_spec(full, list(locations))
        if spec is None:
            return "no module named '%s'" % full
    return None


def check(config):
    print(_report(config))


def _report(config):
    missing = {}
    for name in config.get("modules", []):
        try:
            problem = _find(name)
        except Exception as e:
            problem = "%s: %s" % (type(e).__name__, e)
        if problem is not None:
            missing[name] = problem
    return json.dumps(
        {"version": list(sys.version_info[:3]), "missing": missing, "executable": sys.executable}
    )


def main():
    mode = sys.argv[1]
    config = json.loads(sys.argv[2])
    _setup_path(config)
    if mode == "check":
        check(config)
    elif mode == "serve":
        fd = int(os.environ.pop("JOBFILE_PY_CTRL", "3"))
        serve(fd, config, imported=False)
    elif mode == "template":
        t = Template(config, _own_source())
        t.start()
        t.loop()


def _own_source():
    # Run as `python3 -c BOOT SOURCE ...`: the source follows BOOT.
    with open("/proc/self/cmdline", "rb") as f:
        words = f.read().split(b"\0")
    return words[words.index(b"-c") + 2].decode()


if __name__ == "__main__":
    main()
