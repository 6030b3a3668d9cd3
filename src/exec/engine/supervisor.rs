//! The supervisor loop: one thread that owns the workers' connections, the
//! signals, the timers, the shared values and the records' way out.
//!
//! Tasks become *units* (a call, a map item or a callback), units are sent
//! to idle workers of their pool in submission order, and each outcome
//! becomes a record. Nothing here formats output: records go to the
//! [`Sink`].

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::Value;

use super::launcher::Launcher;
use super::prepare::Prepared;
use super::slurm_launcher::SlurmLauncher;
use super::state::*;
use super::workers::PendingExit;
use crate::exec::protocol::{FromWorker, LineStream, RunFrame, ToWorker};
use crate::exec::python::{PythonSetup, Template};
use crate::exec::signals::SignalPipe;
use crate::plan::Digest;
use crate::plan::{EdgeKind, Plan};
use crate::report::{Previous, Sink, Status};
use crate::shared::{SharedStore, handle_line};
use crate::spec::{Backend, Job, PoolId, TaskId};

/// Options of a run beyond the job file.
#[derive(Default)]
pub struct RunOptions {
    /// Overrides the default pool's size.
    pub jobs: Option<usize>,
    /// Copy task output to stderr as it comes.
    pub live: bool,
    /// The tasks' fingerprints (`plan::task_prints`), when the results are
    /// kept for a later `--resume`: every record then carries its print.
    pub prints: Option<Vec<Digest>>,
    /// The earlier run (`--resume`): a unit whose earlier record stands
    /// keeps it instead of running. Needs `prints`.
    pub previous: Option<Previous>,
    /// Tasks left out of this run (`--task`): they never start and have
    /// no records; nothing that runs depends on them but for the order of
    /// blocking tasks, which they release as if they had ended.
    pub left_out: BTreeSet<TaskId>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every task ran (or was skipped/cancelled by policy).
    Completed,
    /// Stopped by a signal.
    Signalled(Signal),
    /// Stopped because the results could not be written (a closed pipe,
    /// a full disk): running on would only lose more.
    OutputLost,
    /// Stopped because the engine's own poll failed (not interrupted: it
    /// cannot wait for anything any more).
    PollFailed(nix::errno::Errno),
}

/// What the run left: how it ended and the counts by status.
pub struct RunReport {
    pub end: RunEnd,
    pub counts: crate::report::Counts,
    pub write_error: Option<std::io::Error>,
    /// `--resume`: what became of the earlier records.
    pub resumed: Resumed,
}

/// What a `--resume` did with the earlier records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resumed {
    /// Kept in place of running their units.
    pub kept: u64,
    /// Not reached by an interrupted run, written after its records so a
    /// later `--resume` still finds them.
    pub carried: u64,
    /// Matched no unit of this run (a task renamed or removed, an item a
    /// glob lost), so left out.
    pub dropped: u64,
    /// Could not be read back as they were written (the results file was
    /// changed, truncated or replaced): their units ran again.
    pub unreadable: u64,
}

/// Runs a checked job, whose graph is `plan`, to the end; records go to
/// `sink`.
pub fn run(job: &Job, plan: &Plan, prepared: Prepared, sink: Sink, opts: RunOptions) -> RunReport {
    let mut e = Engine::new(job, plan, prepared, sink, opts);
    e.start();
    let end = e.main_loop();
    e.finish(end)
}

/// A shared-value client (a command's `jobfile shared ...`): one request
/// line, one reply.
pub(super) struct Client {
    stream: UnixStream,
    /// What it sent so far.
    request: Vec<u8>,
    /// The reply, once the request was applied, and how much of it is sent.
    reply: Option<(Vec<u8>, usize)>,
}

/// What a descriptor in the poll set stands for.
#[derive(Debug, Clone, Copy)]
enum Ready {
    Signal,
    Listener,
    Client(usize),
    /// A launcher waiting for its pool's resources (a Slurm allocation).
    Launcher,
    /// A lost worker's pidfd: it has exited.
    Exit,
    Worker(WorkerId),
}

pub(super) struct Engine<'a> {
    pub(super) job: &'a Job,
    pub(super) plan: &'a Plan,
    /// Start and stop the workers: the local pools share the first (the
    /// fork server), each Slurm pool has its own.
    pub(super) launchers: Vec<Box<dyn Launcher>>,
    /// The launcher of each pool, an index in `launchers`.
    pub(super) pool_launcher: Vec<usize>,
    pub(super) signals: SignalPipe,
    pub(super) shared: Option<(SharedStore, UnixListener, crate::shared::SocketDir)>,
    pub(super) clients: Vec<Client>,
    pub(super) sink: Sink,
    pub(super) opts: RunOptions,
    pub(super) tasks: Vec<TaskState>,
    pub(super) pools: Vec<PoolState>,
    pub(super) workers: WorkerTable,
    pub(super) units: HashMap<UnitId, InFlight, UnitHasher>,
    pub(super) next_unit: u64,
    /// Whether work is still handed out, and what follows from failures.
    pub(super) run: RunPhase,
    /// Workers that were let go and are not reaped yet, by pool and pid.
    pub(super) retired: Vec<(PoolId, u32)>,
    /// Workers that went by themselves, waited for to learn how they ended.
    pub(super) exits: Vec<PendingExit>,
    pub(super) consumers: Vec<Vec<TaskId>>,
    pub(super) speeds: Vec<Speed>,
    /// How many times a task became runnable: scheduling repeats while it grows.
    pub(super) runnable_events: u64,
    /// The time of this round of the loop, read once when first needed:
    /// when queued units start, which a round learns of by the hundred.
    pub(super) round_clock: Option<(SystemTime, Instant)>,
    /// The run frame a dispatch writes its calls into, kept so that its
    /// buffer serves them all.
    pub(super) frame: RunFrame,
    /// This machine's host name: a worker elsewhere records its own.
    pub(super) host: Option<String>,
    /// The template interpreter of the job's Python functions.
    pub(super) python: Option<Template>,
    /// What workers are told about Python: on this machine (with the
    /// template), and elsewhere (Slurm steps, which start their own).
    pub(super) python_setup: Option<(PythonSetup, PythonSetup)>,
    /// `--resume`: what became of the earlier records.
    pub(super) resumed: Resumed,
}

impl<'a> Engine<'a> {
    pub(super) fn new(
        job: &'a Job,
        plan: &'a Plan,
        prepared: Prepared,
        sink: Sink,
        opts: RunOptions,
    ) -> Engine<'a> {
        let cpus = nix::sched::sched_getaffinity(Pid::from_raw(0))
            .map(|set| {
                (0..nix::sched::CpuSet::count())
                    .filter(|&i| set.is_set(i).unwrap_or(false))
                    .count()
            })
            .unwrap_or(1)
            .max(1);
        let pools: Vec<PoolState> = job
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| PoolState {
                size: if i == 0 {
                    opts.jobs.or(p.processes)
                } else {
                    p.processes
                }
                .unwrap_or(cpus)
                .max(1),
                live: 0,
                init_failures: 0,
                step_failures: 0,
                gave_up: None,
                runnable: BTreeSet::new(),
            })
            .collect();
        let mut launchers = vec![prepared.launcher];
        let pool_launcher = job
            .pools
            .iter()
            .zip(&pools)
            .map(|(spec, state)| match spec.backend {
                Backend::Slurm => {
                    launchers.push(Box::new(SlurmLauncher::new(spec, state.size, &job.name)));
                    launchers.len() - 1
                }
                _ => 0,
            })
            .collect();
        let mut consumers = vec![Vec::new(); job.tasks.len()];
        for (i, t) in job.tasks.iter().enumerate() {
            if let Some(p) = t.stream_source() {
                consumers[p.0].push(TaskId(i));
            }
        }
        let tasks = job
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let needs_value = t.callback().is_some()
                    || plan.dependents[i].iter().any(|d| {
                        plan.deps[d.0]
                            .iter()
                            .any(|e| e.on.0 == i && e.kind == EdgeKind::Result)
                    });
                let pending = plan.deps[i]
                    .iter()
                    .filter(|e| e.kind != EdgeKind::Stream)
                    .count();
                TaskState {
                    phase: TaskPhase::Waiting {
                        pending: pending as u32,
                    },
                    producer: match t.stream_source() {
                        Some(_) => Producer::NotStarted,
                        None => Producer::None,
                    },
                    value: None,
                    keep_values: needs_value,
                    has_stream_consumers: !consumers[i].is_empty(),
                    may_keep: false,
                    ran: false,
                }
            })
            .collect();
        Engine {
            job,
            plan,
            launchers,
            pool_launcher,
            signals: prepared.signals,
            shared: prepared.shared,
            python_setup: job.uses_python().then(|| {
                (
                    PythonSetup::of_job(job, prepared.python.as_ref().map(|t| t.socket())),
                    PythonSetup::of_job(job, None),
                )
            }),
            python: prepared.python,
            clients: Vec::new(),
            sink,
            opts,
            tasks,
            pools,
            workers: WorkerTable::default(),
            units: HashMap::default(),
            next_unit: 0,
            run: RunPhase::Running,
            retired: Vec::new(),
            exits: Vec::new(),
            consumers,
            speeds: vec![Speed::default(); job.functions.len()],
            runnable_events: 0,
            round_clock: None,
            frame: RunFrame::default(),
            host: crate::exec::process::host_name(),
            resumed: Resumed::default(),
        }
    }

    pub(super) fn start(&mut self) {
        let left_out: Vec<TaskId> = self.opts.left_out.iter().copied().collect();
        for &id in &left_out {
            self.tasks[id.0].phase = TaskPhase::Done;
            self.sink.close(id.0, 0);
        }
        for id in left_out {
            self.release_dependents(id, true);
        }
        for i in 0..self.tasks.len() {
            self.maybe_start(TaskId(i));
        }
    }

    pub(super) fn main_loop(&mut self) -> RunEnd {
        loop {
            if let Some(sig) = self.signals.take() {
                return RunEnd::Signalled(sig);
            }
            if self.sink.has_failed() {
                return RunEnd::OutputLost;
            }
            // Handing out work may end tasks and make others runnable:
            // schedule until nothing new becomes runnable.
            loop {
                let before = self.runnable_events;
                self.schedule();
                if self.runnable_events == before {
                    break;
                }
            }
            self.flush_workers();
            if self.all_done() {
                return RunEnd::Completed;
            }
            if let Err(e) = self.poll_once() {
                return RunEnd::PollFailed(e);
            }
        }
    }

    /// Nothing runs and, after [`Engine::schedule`], nothing could start:
    /// every task has ended, or the rest is held back by the stop policy.
    /// A pool waiting for its Slurm allocation still has work to start.
    pub(super) fn all_done(&self) -> bool {
        self.units.is_empty()
            && (self.run.stopping() || self.launchers.iter().all(|l| l.pending().is_none()))
    }

    /// Waits for the next event (a signal, a client, a worker's frame or
    /// exit, a deadline) and handles it. Only a failed poll (other than
    /// `EINTR`, which is an event like any other) is an error.
    pub(super) fn poll_once(&mut self) -> nix::Result<()> {
        self.round_clock = None;
        // Frames left in a buffer while their worker was paused are served
        // first: no poll would wake up for them.
        let buffered: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, s)| s.state.connected() && !s.paused && s.conn.has_frame())
            .map(|(w, _)| w)
            .collect();
        if !buffered.is_empty() {
            for w in buffered {
                self.serve_frames(w, true);
            }
            return Ok(());
        }
        self.sink.flush();
        self.sink.running(self.units.len());
        let timeout = self
            .workers
            .iter()
            .filter_map(|(_, w)| w.deadline)
            .chain(
                self.launchers
                    .iter()
                    .filter_map(|l| l.pending())
                    .map(|(_, d)| d),
            )
            .chain(self.exits.iter().map(|x| match x.pidfd {
                Some(_) => x.until,
                // Without a pidfd, nothing wakes the poll when it exits.
                None => Instant::now() + std::time::Duration::from_millis(5),
            }))
            .min()
            .map(|d| d.saturating_duration_since(Instant::now()));
        let timeout = match timeout {
            Some(t) => PollTimeout::try_from(t.as_millis().min(60_000) as i32 + 1)
                .unwrap_or(PollTimeout::NONE),
            None => PollTimeout::from(1000u16),
        };
        // Descriptors are borrowed for the poll only; indexes map back.
        let mut which: Vec<Ready> = Vec::new();
        let ready: Vec<(Ready, PollFlags)> = {
            let mut fds: Vec<PollFd<'_>> = Vec::new();
            fds.push(PollFd::new(self.signals.fd(), PollFlags::POLLIN));
            which.push(Ready::Signal);
            if let Some((_, listener, _)) = &self.shared {
                fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
                which.push(Ready::Listener);
            }
            for (i, c) in self.clients.iter().enumerate() {
                // Its request, then room for its reply.
                let wanted = match c.reply {
                    None => PollFlags::POLLIN,
                    Some(_) => PollFlags::POLLOUT,
                };
                fds.push(PollFd::new(c.stream.as_fd(), wanted));
                which.push(Ready::Client(i));
            }
            for (fd, _) in self.launchers.iter().filter_map(|l| l.pending()) {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
                which.push(Ready::Launcher);
            }
            for x in &self.exits {
                if let Some(fd) = &x.pidfd {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    which.push(Ready::Exit);
                }
            }
            for (i, w) in self.workers.iter() {
                if !w.state.connected() {
                    continue;
                }
                // Input and output may be one socket or two pipes.
                if let (true, Some(fd)) = (w.conn.wants_write(), w.conn.write_fd()) {
                    fds.push(PollFd::new(fd, PollFlags::POLLOUT));
                    which.push(Ready::Worker(i));
                }
                if let (false, Some(fd)) = (w.paused, w.conn.read_fd()) {
                    fds.push(PollFd::new(fd, PollFlags::POLLIN));
                    which.push(Ready::Worker(i));
                }
            }
            let polled = poll(&mut fds, timeout);
            self.round_clock = None;
            match polled {
                // A signal: its byte is in the self-pipe, read by the loop.
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
            fds.iter()
                .zip(which.iter())
                .filter_map(|(fd, &k)| {
                    let r = fd.revents().unwrap_or(PollFlags::empty());
                    (!r.is_empty()).then_some((k, r))
                })
                .collect()
        };
        let mut done_clients = Vec::new();
        for (ready, flags) in ready {
            match ready {
                Ready::Listener => self.accept_clients(),
                Ready::Client(i) if self.serve_client(i) => done_clients.push(i),
                Ready::Worker(i) => {
                    if flags.contains(PollFlags::POLLOUT) {
                        let _ = self.workers[i].conn.flush();
                    }
                    if flags.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                    {
                        self.read_worker(i);
                    }
                }
                _ => {}
            }
        }
        // Descending, so each index still names its client when removed.
        for i in done_clients.into_iter().rev() {
            self.clients.swap_remove(i);
        }
        if self.launchers.iter().any(|l| l.pending().is_some()) {
            self.advance_launchers();
        }
        if !self.exits.is_empty() {
            self.advance_exits(false);
        }
        self.reap_retired();
        self.check_deadlines();
        Ok(())
    }

    pub(super) fn accept_clients(&mut self) {
        let Some((_, listener, _)) = &self.shared else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client {
                    stream,
                    request: Vec::new(),
                    reply: None,
                });
            }
        }
    }

    /// Reads a shared-value client's request, applies it once it is
    /// whole, and writes the reply as the client takes it; `true` when the
    /// client is done (answered, or gone). Never waits for the client.
    pub(super) fn serve_client(&mut self, i: usize) -> bool {
        let Some((store, _, _)) = &mut self.shared else {
            return true;
        };
        let client = &mut self.clients[i];
        if client.reply.is_none() {
            let mut chunk = [0u8; 4096];
            let closed = loop {
                match client.stream.read(&mut chunk) {
                    Ok(0) => break true,
                    Ok(n) => client.request.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break true,
                }
            };
            let Some(nl) = client.request.iter().position(|&b| b == b'\n') else {
                return closed;
            };
            client.reply = Some((handle_line(store, &client.request[..nl]), 0));
        }
        let Some((reply, sent)) = &mut client.reply else {
            return true;
        };
        while *sent < reply.len() {
            match client.stream.write(&reply[*sent..]) {
                Ok(n) => *sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // Gone before its answer: the operation stands all the same.
                Err(_) => return true,
            }
        }
        true
    }

    pub(super) fn read_worker(&mut self, w: WorkerId) {
        let alive = self.workers[w].conn.fill().unwrap_or(false);
        self.serve_frames(w, alive);
    }

    /// Handles the frames a worker's connection holds. While the worker is
    /// paused (its stream's consumers are behind) the rest stay in the
    /// buffer, unless the worker is gone and they are all there is.
    /// The time of this round of the loop (see [`Engine::round_clock`]).
    pub(super) fn now(&mut self) -> (SystemTime, Instant) {
        *self
            .round_clock
            .get_or_insert_with(|| (SystemTime::now(), Instant::now()))
    }

    pub(super) fn serve_frames(&mut self, w: WorkerId, alive: bool) {
        loop {
            if alive && self.workers[w].paused {
                return;
            }
            let frame: FromWorker = match self.workers[w].conn.next_frame() {
                Some(Ok(f)) => f,
                Some(Err(_)) => continue,
                None => break,
            };
            self.on_frame(w, frame);
            if !self.workers[w].state.connected() {
                return;
            }
        }
        if !alive {
            self.worker_lost(w, None);
        }
    }

    pub(super) fn on_frame(&mut self, w: WorkerId, frame: FromWorker) {
        match frame {
            FromWorker::Ready { pid, host } => {
                let slot = &mut self.workers[w];
                slot.reported_pid = pid;
                slot.ready = true;
                slot.host = host.filter(|h| Some(h) != self.host.as_ref());
                self.pools[slot.pool.0].step_failures = 0;
            }
            FromWorker::Spawned { pgid, .. } => self.workers[w].pgid = Some(pgid),
            FromWorker::Line { unit, stream, line } => self.on_line(w, UnitId(unit), stream, line),
            FromWorker::Item { unit, value } => self.on_item(w, UnitId(unit), value),
            FromWorker::Shared { op } => {
                let (ok, error) = match &mut self.shared {
                    Some((store, _, _)) => match store.apply(&op) {
                        Ok(v) => (Some(v), None),
                        Err(e) => (None, Some(e.to_string())),
                    },
                    None => (
                        None,
                        Some("this job declares no [shared] values".to_string()),
                    ),
                };
                let conn = &mut self.workers[w].conn;
                conn.queue(&ToWorker::SharedReply { ok, error });
                let _ = conn.flush();
            }
            FromWorker::Done { unit, outcome } => self.on_done(w, UnitId(unit), outcome),
        }
    }

    pub(super) fn on_line(&mut self, w: WorkerId, unit: UnitId, stream: LineStream, line: String) {
        let Some(u) = self.units.get(&unit).and_then(InFlight::unit) else {
            return;
        };
        let task = u.task;
        if self.opts.live {
            let id = &self.job.task(task).id;
            let err = stream == LineStream::Err;
            self.sink
                .live_line(id, u.index, u.item.as_ref(), err, &line);
        }
        // A Python producer's items are the values it yields, not its lines.
        let python = self.job.function(u.function).kind.is_python();
        if stream == LineStream::Out && u.kind == UnitKind::Main && !python {
            self.feed_consumers(w, task, Value::String(line));
        }
    }

    /// A value a Python generator yielded: the next item of its consumers.
    pub(super) fn on_item(&mut self, w: WorkerId, unit: UnitId, value: Value) {
        let Some(u) = self.units.get(&unit).and_then(InFlight::unit) else {
            return;
        };
        if u.kind == UnitKind::Main {
            let task = u.task;
            self.feed_consumers(w, task, value);
        }
    }

    /// Queues one item of producer `task` for each of its consumers.
    fn feed_consumers(&mut self, w: WorkerId, task: TaskId, item: Value) {
        let consumers = self.consumers[task.0].clone();
        let mut behind = false;
        for c in consumers {
            if let Some(st) = self.tasks[c.0].running_mut() {
                if let Source::Queue(q) = &mut st.source {
                    q.push_back(item.clone());
                    behind |= q.len() >= STREAM_HIGH_WATER && st.in_flight > 0;
                }
            }
        }
        // Back-pressure: stop reading the producer while its consumers
        // are behind; the producer then blocks on its pipe.
        self.workers[w].paused = behind;
    }

    pub(super) fn check_deadlines(&mut self) {
        let now = Instant::now();
        for w in self.workers.ids() {
            let slot = &self.workers[w];
            if !slot.state.connected() {
                continue;
            }
            if slot.deadline.is_some_and(|d| d <= now) {
                let status = if slot.state == WorkerState::Cancelling {
                    Status::Cancelled
                } else {
                    Status::Timeout
                };
                self.kill_worker(w);
                self.worker_lost(w, Some(status));
            }
        }
    }
}
