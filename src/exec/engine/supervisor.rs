//! The supervisor loop: one thread that owns the workers' connections, the
//! signals, the timers, the shared values and the records' way out.
//!
//! Tasks become *units* (a call, a map item or a callback), units are sent
//! to idle workers of their pool in submission order, and each outcome
//! becomes a record. Nothing here formats output: records go to the
//! [`Sink`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::Value;

use super::prepare::Prepared;
use super::state::*;
use crate::exec::fork_server::ForkServer;
use crate::exec::protocol::{FromWorker, LineStream, ToWorker};
use crate::exec::python::{PythonSetup, Template};
use crate::exec::signals::SignalPipe;
use crate::exec::slurm::{Allocation, AllocationRequest};
use crate::plan::Digest;
use crate::plan::{EdgeKind, Plan};
use crate::report::{Previous, Sink, Status};
use crate::shared::{SharedStore, handle_line};
use crate::spec::{FunctionKind, Job, TaskId};

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
}

/// What the run left: how it ended and the counts by status.
pub struct RunReport {
    pub end: RunEnd,
    pub counts: [u64; 6],
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

/// Runs a checked job to the end; records go to `sink`.
pub fn run(job: &Job, prepared: Prepared, sink: Sink, opts: RunOptions) -> RunReport {
    let plan = Plan::new(job);
    let mut e = Engine::new(job, plan, prepared, sink, opts);
    e.start();
    let end = e.main_loop();
    e.finish(end)
}

pub(super) struct Engine<'a> {
    pub(super) job: &'a Job,
    pub(super) plan: Plan,
    pub(super) fs: ForkServer,
    pub(super) signals: SignalPipe,
    pub(super) shared: Option<(SharedStore, UnixListener, crate::shared::SocketDir)>,
    pub(super) clients: Vec<(UnixStream, Vec<u8>)>,
    pub(super) sink: Sink,
    pub(super) opts: RunOptions,
    pub(super) tasks: Vec<TaskState>,
    pub(super) pools: Vec<PoolState>,
    pub(super) workers: Vec<WorkerSlot>,
    pub(super) units: HashMap<u64, (Unit, usize), UnitHasher>,
    pub(super) next_unit: u64,
    pub(super) stopping: bool,
    /// Running units are being killed (terminate policy, or a signal).
    pub(super) terminating: bool,
    /// Stopped by a signal: nothing follows from what ends now.
    pub(super) interrupted: bool,
    /// Workers that were let go and are not reaped yet.
    pub(super) retired: Vec<u32>,
    pub(super) consumers: Vec<Vec<TaskId>>,
    pub(super) speeds: Vec<Speed>,
    /// How many times a task became runnable: scheduling repeats while it grows.
    pub(super) runnable_events: u64,
    /// Slurm allocations, by pool.
    pub(super) allocations: HashMap<usize, Allocation>,
    /// Slurm allocations asked for and not granted yet, by pool.
    pub(super) requests: HashMap<usize, AllocationRequest>,
    /// This machine's host name: a worker elsewhere records its own.
    pub(super) host: Option<String>,
    /// `srun`s of retired Slurm workers, reaped at the end.
    pub(super) ended_steps: Vec<std::process::Child>,
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
        plan: Plan,
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
        let pools = job
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
                TaskState {
                    phase: Phase::Waiting,
                    pending: plan.deps[i]
                        .iter()
                        .filter(|e| e.kind != EdgeKind::Stream)
                        .count(),
                    stream_started: t.stream_source().is_none(),
                    source: Source::None,
                    exhausted: false,
                    next_index: 0,
                    retry: VecDeque::new(),
                    extra: VecDeque::new(),
                    in_flight: 0,
                    records: 0,
                    failed: false,
                    first_error: None,
                    keep_values: needs_value,
                    values: Vec::new(),
                    value: None,
                    ok: None,
                    callback_pending: false,
                    producer_failed: false,
                    producer_done: false,
                    held_last: None,
                    has_stream_consumers: !consumers[i].is_empty(),
                    args: Vec::new(),
                    kwargs: serde_json::Map::new(),
                    print: None,
                    may_keep: false,
                    ran: false,
                    ready_unit: None,
                    outstanding: BTreeSet::new(),
                }
            })
            .collect();
        Engine {
            job,
            plan,
            fs: prepared.fork_server,
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
            workers: Vec::new(),
            units: HashMap::default(),
            next_unit: 0,
            stopping: false,
            terminating: false,
            interrupted: false,
            retired: Vec::new(),
            consumers,
            speeds: vec![Speed::default(); job.functions.len()],
            runnable_events: 0,
            allocations: HashMap::new(),
            requests: HashMap::new(),
            host: crate::exec::worker::host_name(),
            ended_steps: Vec::new(),
            resumed: Resumed::default(),
        }
    }

    pub(super) fn start(&mut self) {
        let left_out: Vec<TaskId> = self.opts.left_out.iter().copied().collect();
        for &id in &left_out {
            let st = &mut self.tasks[id.0];
            st.phase = Phase::Done;
            st.ok = Some(true);
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
            self.poll_once();
        }
    }

    /// Nothing runs and, after [`Engine::schedule`], nothing could start:
    /// every task has ended, or the rest is held back by the stop policy.
    /// A pool waiting for its Slurm allocation still has work to start.
    pub(super) fn all_done(&self) -> bool {
        self.units.is_empty() && (self.requests.is_empty() || self.stopping)
    }

    pub(super) fn poll_once(&mut self) {
        // Frames left in a buffer while their worker was paused are served
        // first: no poll would wake up for them.
        let buffered: Vec<usize> = (0..self.workers.len())
            .filter(|&w| {
                let s = &self.workers[w];
                !matches!(s.state, WorkerState::Dead) && !s.paused && s.conn.has_frame()
            })
            .collect();
        if !buffered.is_empty() {
            for w in buffered {
                self.serve_frames(w, true);
            }
            return;
        }
        self.sink.flush();
        self.sink.running(self.units.len());
        let timeout = self
            .workers
            .iter()
            .filter_map(|w| w.deadline)
            .chain(self.requests.values().map(|r| r.deadline()))
            .min()
            .map(|d| d.saturating_duration_since(Instant::now()));
        let timeout = match timeout {
            Some(t) => PollTimeout::try_from(t.as_millis().min(60_000) as i32 + 1)
                .unwrap_or(PollTimeout::NONE),
            None => PollTimeout::from(1000u16),
        };
        // Descriptors are borrowed for the poll only; indexes map back.
        let mut which: Vec<(u8, usize)> = Vec::new();
        let ready: Vec<(u8, usize, PollFlags)> = {
            let mut fds: Vec<PollFd<'_>> = Vec::new();
            fds.push(PollFd::new(self.signals.fd(), PollFlags::POLLIN));
            which.push((0, 0));
            if let Some((_, listener, _)) = &self.shared {
                fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
                which.push((2, 0));
            }
            for (i, (c, _)) in self.clients.iter().enumerate() {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
                which.push((3, i));
            }
            for r in self.requests.values() {
                fds.push(PollFd::new(r.fd(), PollFlags::POLLIN));
                which.push((5, 0));
            }
            for (i, w) in self.workers.iter().enumerate() {
                if matches!(w.state, WorkerState::Dead) {
                    continue;
                }
                // Input and output may be one socket or two pipes.
                if let (true, Some(fd)) = (w.conn.wants_write(), w.conn.write_fd()) {
                    fds.push(PollFd::new(fd, PollFlags::POLLOUT));
                    which.push((4, i));
                }
                if let (false, Some(fd)) = (w.paused, w.conn.read_fd()) {
                    fds.push(PollFd::new(fd, PollFlags::POLLIN));
                    which.push((4, i));
                }
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => {}
            }
            fds.iter()
                .zip(which.iter())
                .filter_map(|(fd, &(k, i))| {
                    let r = fd.revents().unwrap_or(PollFlags::empty());
                    (!r.is_empty()).then_some((k, i, r))
                })
                .collect()
        };
        let mut done_clients = Vec::new();
        for (kind, i, flags) in ready {
            match kind {
                2 => self.accept_clients(),
                3 if self.serve_client(i) => done_clients.push(i),
                4 => {
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
        if !self.requests.is_empty() {
            self.advance_requests();
        }
        self.reap_retired();
        self.check_deadlines();
    }

    pub(super) fn accept_clients(&mut self) {
        let Some((_, listener, _)) = &self.shared else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push((stream, Vec::new()));
            }
        }
    }

    /// Reads a shared-value client's request and answers it once it is
    /// whole; `true` when the client is done (answered, or gone).
    pub(super) fn serve_client(&mut self, i: usize) -> bool {
        let Some((store, _, _)) = &mut self.shared else {
            return true;
        };
        let (stream, buf) = &mut self.clients[i];
        let mut chunk = [0u8; 4096];
        let closed = loop {
            match stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                Err(_) => break true,
            }
        };
        if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let reply = handle_line(store, &buf[..nl]);
            let _ = stream.set_nonblocking(false);
            let _ = stream.write_all(&reply);
            true
        } else {
            closed
        }
    }

    pub(super) fn read_worker(&mut self, w: usize) {
        let alive = self.workers[w].conn.fill().unwrap_or(false);
        self.serve_frames(w, alive);
    }

    /// Handles the frames a worker's connection holds. While the worker is
    /// paused (its stream's consumers are behind) the rest stay in the
    /// buffer, unless the worker is gone and they are all there is.
    pub(super) fn serve_frames(&mut self, w: usize, alive: bool) {
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
            if matches!(self.workers[w].state, WorkerState::Dead) {
                return;
            }
        }
        if !alive {
            self.worker_lost(w, None);
        }
    }

    pub(super) fn on_frame(&mut self, w: usize, frame: FromWorker) {
        match frame {
            FromWorker::Ready { pid, host } => {
                let slot = &mut self.workers[w];
                slot.reported_pid = pid;
                slot.ready = true;
                slot.host = host.filter(|h| Some(h) != self.host.as_ref());
                self.pools[slot.pool.0].step_failures = 0;
            }
            FromWorker::Spawned { pgid, .. } => self.workers[w].pgid = Some(pgid),
            FromWorker::Line { unit, stream, line } => self.on_line(w, unit, stream, line),
            FromWorker::Item { unit, value } => self.on_item(w, unit, value),
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
            FromWorker::Done { unit, outcome } => self.on_done(w, unit, outcome),
        }
    }

    pub(super) fn on_line(&mut self, w: usize, unit: u64, stream: LineStream, line: String) {
        let Some((u, _)) = self.units.get(&unit) else {
            return;
        };
        let task = u.task;
        if self.opts.live && u.kind != UnitKind::Initializer {
            let id = &self.job.task(task).id;
            let label = match u.index {
                Some(i) => format!("{id}[{i}]"),
                None => id.clone(),
            };
            let mark = if stream == LineStream::Err { "!" } else { "" };
            // Not eprintln!: a closed stderr must not panic the engine.
            let _ = writeln!(std::io::stderr().lock(), "[{label}]{mark} {line}");
        }
        // A Python producer's items are the values it yields, not its lines.
        let python = matches!(self.job.function(u.function).kind, FunctionKind::Python(_));
        if stream == LineStream::Out && u.kind == UnitKind::Main && !python {
            self.feed_consumers(w, task, Value::String(line));
        }
    }

    /// A value a Python generator yielded: the next item of its consumers.
    pub(super) fn on_item(&mut self, w: usize, unit: u64, value: Value) {
        let Some((u, _)) = self.units.get(&unit) else {
            return;
        };
        if u.kind == UnitKind::Main {
            let task = u.task;
            self.feed_consumers(w, task, value);
        }
    }

    /// Queues one item of producer `task` for each of its consumers.
    fn feed_consumers(&mut self, w: usize, task: TaskId, item: Value) {
        let consumers = self.consumers[task.0].clone();
        let mut behind = false;
        for c in consumers {
            if let Source::Queue(q) = &mut self.tasks[c.0].source {
                q.push_back(item.clone());
                behind |= q.len() >= STREAM_HIGH_WATER && self.tasks[c.0].in_flight > 0;
            }
        }
        // Back-pressure: stop reading the producer while its consumers
        // are behind; the producer then blocks on its pipe.
        self.workers[w].paused = behind;
    }

    pub(super) fn check_deadlines(&mut self) {
        let now = Instant::now();
        for w in 0..self.workers.len() {
            let slot = &self.workers[w];
            if matches!(slot.state, WorkerState::Dead) {
                continue;
            }
            if slot.deadline.is_some_and(|d| d <= now) {
                let status = if slot.retiring {
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
