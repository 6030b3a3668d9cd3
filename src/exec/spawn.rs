//! Starting a command's process: its own process group, `PR_SET_PDEATHSIG`,
//! stdin from `/dev/null`, stdout and stderr into fresh pipes, default
//! dispositions for the signals jobfile handles, an empty signal mask, the
//! working folder and environment it was given, and the program looked up
//! in the child's `PATH` as `execvp` does.
//!
//! The child is made with `clone(CLONE_VM | CLONE_VFORK)`, as `posix_spawn`
//! does, rather than with `fork`: it borrows the caller's memory until it
//! execs, so no page table is copied and no page of the caller is faulted
//! back in afterwards. Everything the child needs (C strings, pointer
//! arrays, every `PATH` candidate) is built before the clone; between clone
//! and exec the child makes system calls only.
//!
//! Must not: supervise, read the pipes or wait for the child beyond
//! reaping one that could not exec; [`super::command`] does that.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::OnceLock;

use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::stat::Mode;
use nix::unistd::{Pid, pipe2};

use super::command::CommandSpec;

/// Bytes of stack for the child until it execs (it only makes system
/// calls; `posix_spawn` in glibc uses about half as much).
const CHILD_STACK: usize = 64 * 1024;

/// `PATH` when neither the command's environment nor the caller's has one,
/// as glibc's `execvp` has it.
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// The signals whose disposition a command starts from the default:
/// those jobfile handles or ignores (TERM, INT, PIPE), and those a command
/// is stopped with or should see unchanged.
const RESET_SIGNALS: [libc::c_int; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGHUP,
    libc::SIGCHLD,
    libc::SIGPIPE,
];

/// A started child: its pid (also its process group) and the read ends of
/// its stdout and stderr, non-blocking and close-on-exec.
pub(crate) struct Child {
    pub(crate) pid: Pid,
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
}

/// Where the child failed before its program ran.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Making the pipes, `/dev/null` or the child itself failed.
    Setup(io::Error),
    /// The child could not set itself up or exec the program; the error is
    /// the first one that stopped it (for a `PATH` search, as `execvp`
    /// reports it).
    Child(io::Error),
}

/// What the child reads, prepared by the caller before the clone. Only raw
/// pointers into buffers the caller keeps alive until the clone returns.
struct ChildArgs {
    stdin: libc::c_int,
    stdout: libc::c_int,
    stderr: libc::c_int,
    /// NUL-terminated, or null to stay in the caller's folder.
    cwd: *const libc::c_char,
    /// Paths to exec in turn: one, or one per `PATH` entry.
    candidates: *const *const libc::c_char,
    candidate_count: usize,
    /// The argv, null-terminated.
    argv: *const *const libc::c_char,
    /// `["/bin/sh", <candidate>, argv[1..]..., null]`, for a candidate that
    /// is not an executable format (`ENOEXEC`), as `execvp` does; slot 1 is
    /// written by the child.
    script_argv: *mut *const libc::c_char,
    envp: *const *const libc::c_char,
    /// The caller's pid, to notice that it died before the death signal
    /// was set.
    parent: libc::pid_t,
    /// Set by the child when it gives up: the errno that stopped it.
    errno: libc::c_int,
}

/// Starts `spec`'s program (its argv is known to be non-empty, its env
/// names and cwd checked).
pub(crate) fn spawn(spec: &CommandSpec) -> Result<Child, Failure> {
    let program = spec.argv.first().map(String::as_str).unwrap_or_default();
    let argv = c_strings(spec.argv.iter().map(|a| a.as_bytes()))?;
    let env = child_env(spec)?;
    let candidates = candidates(program, spec)?;
    let cwd = spec
        .cwd
        .as_ref()
        .map(|c| c_string(c.as_os_str().as_bytes()))
        .transpose()?;

    let argv_ptrs = null_terminated(&argv);
    let env_ptrs = null_terminated(&env);
    let candidate_ptrs: Vec<*const libc::c_char> = candidates.iter().map(|c| c.as_ptr()).collect();
    let mut script_argv: Vec<*const libc::c_char> = Vec::with_capacity(argv.len() + 2);
    script_argv.push(c"/bin/sh".as_ptr());
    script_argv.push(std::ptr::null());
    script_argv.extend(argv.iter().skip(1).map(|a| a.as_ptr()));
    script_argv.push(std::ptr::null());

    let setup = |e: nix::Error| Failure::Setup(io::Error::from(e));
    let null = dev_null().map_err(setup)?;
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).map_err(setup)?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).map_err(setup)?;
    // Only the read ends are non-blocking: the command writes as usual.
    for fd in [&out_r, &err_r] {
        fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(setup)?;
    }

    let mut args = ChildArgs {
        stdin: null.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        cwd: cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        candidates: candidate_ptrs.as_ptr(),
        candidate_count: candidate_ptrs.len(),
        argv: argv_ptrs.as_ptr(),
        script_argv: script_argv.as_mut_ptr(),
        envp: env_ptrs.as_ptr(),
        parent: nix::unistd::getpid().as_raw(),
        errno: 0,
    };
    let mut stack: Vec<u8> = Vec::with_capacity(CHILD_STACK);
    // The stack grows down from its end, which must be 16-byte aligned.
    let top = {
        let end = stack.as_mut_ptr().wrapping_add(CHILD_STACK);
        end.wrapping_sub(end as usize % 16)
    };

    let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: clone with CLONE_VM | CLONE_VFORK suspends this thread until
    // the child has exec'd or exited, so the child is the only one using
    // the memory it shares with us, `args` and the buffers it points into
    // included, all of which outlive this block. The child runs on its own
    // stack, `stack`, and calls only async-signal-safe system call wrappers
    // (no allocation, no lock). All signals are blocked around the clone so
    // that no handler of ours runs on the child's stack in our memory; the
    // child sets the signals we handle back to their default before it
    // unblocks them. `sigfillset`/`sigemptyset` only write the local sets.
    let pid = unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
        let pid = libc::clone(
            child_main,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&raw mut args).cast(),
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), std::ptr::null_mut());
        if pid < 0 {
            return Err(Failure::Setup(clone_error));
        }
        pid
    };
    drop(stack);
    let pid = Pid::from_raw(pid);
    if args.errno != 0 {
        // It exited without exec'ing. It may have named its group in the
        // worker's entry of the group table already: clear that while it
        // is a zombie (its pid cannot be reused yet), so that no one kills
        // the group of a reaped pid; then reap it, so no zombie is left.
        super::groups::set(0);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(Failure::Child(io::Error::from_raw_os_error(args.errno)));
    }
    Ok(Child {
        pid,
        stdout: out_r,
        stderr: err_r,
    })
}

/// `/dev/null` for reading, opened once per process (close-on-exec, so
/// only the children that make it their stdin see it).
fn dev_null() -> nix::Result<BorrowedFd<'static>> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Ok(fd.as_fd());
    }
    let fd = open(
        c"/dev/null",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok(NULL.get_or_init(|| fd).as_fd())
}

/// The child, from the clone to its exec. Runs in the caller's memory, on
/// its own stack: system calls only, and `_exit` on failure, with the errno
/// left in `args`.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` the caller keeps alive and does not
    // touch until this child execs or exits (CLONE_VFORK). Every pointer in
    // it is valid and NUL- or null-terminated as documented. Only system
    // call wrappers are called, and `groups::set`, which does atomic loads
    // and one store (no allocation, no lock); an all-zero `sigaction` is a
    // valid value of that C struct.
    unsafe {
        let args = &mut *arg.cast::<ChildArgs>();
        let fail = |args: &mut ChildArgs| -> libc::c_int {
            args.errno = *libc::__errno_location();
            if args.errno == 0 {
                args.errno = libc::EINVAL;
            }
            libc::_exit(127)
        };
        if libc::setpgid(0, 0) == -1 {
            return fail(args);
        }
        // The group exists: name it to the engine (see `groups`) before
        // anything can start in it, and before the parent check below, so
        // that a worker lost after that check has its group named.
        super::groups::set(libc::getpid());
        for (from, to) in [(args.stdin, 0), (args.stdout, 1), (args.stderr, 2)] {
            // The fds are close-on-exec; dup2 clears that on its copy.
            if libc::dup2(from, to) == -1 {
                return fail(args);
            }
        }
        if !args.cwd.is_null() && libc::chdir(args.cwd) == -1 {
            return fail(args);
        }
        // Die with the caller. The death signal fires when the thread that
        // cloned exits; a worker is single-threaded, so that is the worker.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) == -1 {
            return fail(args);
        }
        // Start from default dispositions: an ignored SIGTERM or SIGPIPE
        // would otherwise survive the exec, and a handler of ours must not
        // run here.
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        for sig in RESET_SIGNALS {
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
        // The caller may have died before the prctl above: then the death
        // signal will never come, and the child has been reparented. Do
        // not run the command at all.
        if libc::getppid() != args.parent {
            *libc::__errno_location() = libc::ESRCH;
            return fail(args);
        }
        let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(empty.as_mut_ptr());
        libc::sigprocmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut());

        // As execvp: try each candidate; EACCES from one is reported if
        // no later one runs; an error other than "not there" stops.
        let mut denied = false;
        for i in 0..args.candidate_count {
            let path = *args.candidates.add(i);
            libc::execve(path, args.argv, args.envp);
            let errno = *libc::__errno_location();
            if errno == libc::ENOEXEC {
                *args.script_argv.add(1) = path;
                libc::execve(
                    c"/bin/sh".as_ptr(),
                    args.script_argv.cast_const(),
                    args.envp,
                );
                return fail(args);
            }
            match errno {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ESTALE | libc::ENOTDIR | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => return fail(args),
            }
        }
        if denied {
            *libc::__errno_location() = libc::EACCES;
        } else if args.candidate_count == 0 {
            // An empty program name, which execvp reports so.
            *libc::__errno_location() = libc::ENOENT;
        }
        fail(args)
    }
}

/// The child's environment: the caller's, with `spec.env` added or
/// replacing, as `NAME=value` strings.
fn child_env(spec: &CommandSpec) -> Result<Vec<CString>, Failure> {
    let mut env = Vec::new();
    for (name, value) in std::env::vars_os() {
        if spec.env.iter().any(|(n, _)| OsStr::new(n) == name) {
            continue;
        }
        env.push(pair(name.as_bytes(), value.as_bytes())?);
    }
    for (name, value) in &spec.env {
        env.push(pair(name.as_bytes(), value.as_bytes())?);
    }
    Ok(env)
}

/// What to exec: the program itself when it holds a `/`, else the program
/// in each folder of the child's `PATH` (an empty entry is the current
/// folder).
fn candidates(program: &str, spec: &CommandSpec) -> Result<Vec<CString>, Failure> {
    if program.is_empty() {
        return Ok(Vec::new());
    }
    if program.contains('/') {
        return Ok(vec![c_string(program.as_bytes())?]);
    }
    let path: OsString = match spec.env.iter().rev().find(|(n, _)| n == "PATH") {
        Some((_, p)) => p.into(),
        None => {
            std::env::var_os("PATH").unwrap_or_else(|| OsString::from_vec(DEFAULT_PATH.to_vec()))
        }
    };
    let mut out = Vec::new();
    for dir in path.as_bytes().split(|&b| b == b':') {
        let mut full = Vec::with_capacity(dir.len() + program.len() + 1);
        if !dir.is_empty() {
            full.extend_from_slice(dir);
            full.push(b'/');
        }
        full.extend_from_slice(program.as_bytes());
        out.push(c_string(&full)?);
    }
    Ok(out)
}

fn pair(name: &[u8], value: &[u8]) -> Result<CString, Failure> {
    let mut s = Vec::with_capacity(name.len() + value.len() + 2);
    s.extend_from_slice(name);
    s.push(b'=');
    s.extend_from_slice(value);
    c_string(&s)
}

fn c_strings<'a>(items: impl Iterator<Item = &'a [u8]>) -> Result<Vec<CString>, Failure> {
    items.map(c_string).collect()
}

/// A C string of `bytes`; an inner NUL is an invalid argument, as for std.
fn c_string(bytes: &[u8]) -> Result<CString, Failure> {
    CString::new(bytes).map_err(|_| {
        Failure::Setup(io::Error::new(
            io::ErrorKind::InvalidInput,
            "nul byte found in provided data",
        ))
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    ptrs
}
