//! The supervisor loop: one thread that owns the workers' sockets, the
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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::{Map, Value};

use super::fork_server::ForkServer;
use super::invocation::invocation;
use super::protocol::{Call, Conn, FromWorker, Invocation, LineStream, Outcome, ToWorker};
use super::signals::SignalPipe;
use super::slurm::{Allocation, SlurmRequest, default_worker_binary};
use super::worker::{GRACE, signal_name};
use crate::plan::{EdgeKind, ItemIter, Plan, item_call, items_of_value};
use crate::report::{Record, Sink, Status};
use crate::shared::{SharedStore, handle_line};
use crate::spec::{Arg, Backend, FunctionId, Job, MapSource, OnFailure, PoolId, TaskId};

/// Options of a run beyond the job file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides the default pool's size.
    pub jobs: Option<usize>,
    /// Copy task output to stderr as it comes.
    pub live: bool,
    /// Tasks whose records are kept from an earlier run (`--resume`).
    pub keep: HashMap<TaskId, Vec<Record>>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every task ran (or was skipped/cancelled by policy).
    Completed,
    /// Stopped by a signal.
    Signalled(Signal),
}

/// What the run left: how it ended and the counts by status.
pub struct RunReport {
    pub end: RunEnd,
    pub counts: [u64; 6],
    pub write_error: Option<std::io::Error>,
}

/// The engine's resources that must exist before any thread: the fork
/// server and the shared-values socket.
pub struct Prepared {
    fork_server: ForkServer,
    shared: Option<(SharedStore, UnixListener, crate::shared::SocketDir)>,
    signals: SignalPipe,
}

/// Sets up what must exist before any thread: call it first in `run`,
/// while the process is single-threaded.
pub fn prepare(job: &Job) -> std::io::Result<Prepared> {
    let shared = if job.shared.is_empty() {
        None
    } else {
        let dir = crate::shared::SocketDir::create()?;
        let path = dir.socket_path();
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        // SAFETY: the process is still single-threaded (nothing has been
        // spawned yet), so changing the environment races with nothing.
        unsafe { std::env::set_var(crate::shared::ENV_VAR, &path) };
        Some((SharedStore::new(job.shared.clone()), listener, dir))
    };
    if let Ok(exe) = std::env::current_exe() {
        let dir = exe.parent().map(|d| d.to_path_buf()).unwrap_or_default();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir];
        paths.extend(std::env::split_paths(&path));
        // SAFETY: as above, single-threaded.
        unsafe {
            std::env::set_var("JOBFILE", &exe);
            if let Ok(joined) = std::env::join_paths(paths) {
                std::env::set_var("PATH", joined);
            }
        }
    }
    let signals = SignalPipe::install()?;
    let fork_server = ForkServer::start()?;
    Ok(Prepared {
        fork_server,
        shared,
        signals,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Running,
    Done,
}

/// What a unit runs for its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnitKind {
    Main,
    Callback,
    ErrorCallback,
    Initializer,
}

/// One call to run.
#[derive(Debug, Clone)]
struct Unit {
    task: TaskId,
    kind: UnitKind,
    /// Item index for map items; the record's seq.
    index: Option<u64>,
    seq: u64,
    function: FunctionId,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    item: Option<Value>,
    attempt: u32,
}

enum Source {
    None,
    Single(bool),
    Iter(ItemIter),
    Queue(VecDeque<Value>),
}

struct TaskState {
    phase: Phase,
    pending: usize,
    stream_started: bool,
    source: Source,
    exhausted: bool,
    next_index: u64,
    retry: VecDeque<Unit>,
    extra: VecDeque<Unit>,
    in_flight: u64,
    records: u64,
    failed: bool,
    first_error: Option<String>,
    keep_values: bool,
    values: Vec<Option<Value>>,
    value: Option<Value>,
    ok: Option<bool>,
    callback_pending: bool,
    producer_failed: bool,
    /// The stream producer has ended: no more lines will come.
    producer_done: bool,
    has_stream_consumers: bool,
    /// The task's last record, held until its callback's record.
    held_last: Option<(u64, Record)>,
}

/// Durations of a function's units (ms, moving average): a function whose
/// units are quick may have several queued on one worker.
#[derive(Debug, Clone, Copy, Default)]
struct Speed {
    finished: u64,
    mean_ms: f64,
}

enum WorkerState {
    Starting,
    Idle,
    Busy,
    Dead,
}

struct WorkerSlot {
    /// The process the engine controls: the worker itself, or the `srun`
    /// that runs it as a Slurm step.
    pid: u32,
    /// The worker's own pid, as it reported it (on a node for Slurm).
    reported_pid: u32,
    /// The `srun` of a Slurm worker, reaped by the engine.
    step: Option<std::process::Child>,
    pool: PoolId,
    conn: Conn,
    state: WorkerState,
    /// Units sent in the current dispatch, not yet done.
    units: VecDeque<u64>,
    pgid: Option<i32>,
    deadline: Option<Instant>,
    tasks_run: u64,
    initializing: bool,
    retiring: bool,
    /// Reading paused: a stream consumer is behind.
    paused: bool,
    /// When the unit at the head of `units` started (wall clock, monotonic).
    current: Option<(SystemTime, Instant)>,
}

struct PoolState {
    size: usize,
    live: usize,
    init_failures: u32,
    gave_up: Option<String>,
    runnable: BTreeSet<usize>,
}

/// Stream lines buffered per consumer before the producer is held back.
const STREAM_HIGH_WATER: usize = 1024;

/// Units of a quick function queued on one worker at most.
const PREFETCH: usize = 16;

/// Runs a checked job to the end; records go to `sink`.
pub fn run(job: &Job, prepared: Prepared, sink: Sink, opts: RunOptions) -> RunReport {
    let plan = Plan::new(job);
    let mut e = Engine::new(job, plan, prepared, sink, opts);
    e.start();
    let end = e.main_loop();
    e.finish(end)
}

struct Engine<'a> {
    job: &'a Job,
    plan: Plan,
    fs: ForkServer,
    signals: SignalPipe,
    shared: Option<(SharedStore, UnixListener, crate::shared::SocketDir)>,
    clients: Vec<(UnixStream, Vec<u8>)>,
    sink: Sink,
    opts: RunOptions,
    tasks: Vec<TaskState>,
    pools: Vec<PoolState>,
    workers: Vec<WorkerSlot>,
    units: HashMap<u64, (Unit, usize)>,
    next_unit: u64,
    stopping: bool,
    /// Running units are being killed (terminate policy, or a signal).
    terminating: bool,
    /// Stopped by a signal: nothing follows from what ends now.
    interrupted: bool,
    exits: HashMap<u32, super::fork_server::WorkerExit>,
    consumers: Vec<Vec<TaskId>>,
    speeds: Vec<Speed>,
    /// Slurm allocations, by pool.
    allocations: HashMap<usize, Allocation>,
    /// `srun`s of retired Slurm workers, reaped at the end.
    ended_steps: Vec<std::process::Child>,
}

impl<'a> Engine<'a> {
    fn new(
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
                let needs_value = t.callback.is_some()
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
                }
            })
            .collect();
        Engine {
            job,
            plan,
            fs: prepared.fork_server,
            signals: prepared.signals,
            shared: prepared.shared,
            clients: Vec::new(),
            sink,
            opts,
            tasks,
            pools,
            workers: Vec::new(),
            units: HashMap::new(),
            next_unit: 0,
            stopping: false,
            terminating: false,
            interrupted: false,
            exits: HashMap::new(),
            consumers,
            speeds: vec![Speed::default(); job.functions.len()],
            allocations: HashMap::new(),
            ended_steps: Vec::new(),
        }
    }

    fn start(&mut self) {
        // Kept tasks are done before any of them releases its dependents, so
        // a kept dependent is never started as well.
        let mut kept: Vec<(TaskId, Vec<Record>)> =
            std::mem::take(&mut self.opts.keep).into_iter().collect();
        kept.sort_by_key(|(id, _)| *id);
        for (id, _) in &kept {
            self.tasks[id.0].phase = Phase::Done;
        }
        for (id, records) in kept {
            self.keep_task(id, records);
        }
        for i in 0..self.tasks.len() {
            self.maybe_start(TaskId(i));
        }
    }

    /// A task kept from an earlier run: its records as they were.
    fn keep_task(&mut self, id: TaskId, records: Vec<Record>) {
        let mut values = Vec::new();
        let mut n = 0;
        for r in records {
            // Items, or the task's own record; not its callback's.
            if r.index.is_some() || !r.task.contains(':') {
                values.push(r.value.clone());
            }
            self.sink.emit(id.0, n, r);
            n += 1;
        }
        let value = if self.job.task(id).map.is_some() {
            Value::Array(values)
        } else {
            values.pop().unwrap_or(Value::Null)
        };
        let st = &mut self.tasks[id.0];
        st.phase = Phase::Done;
        st.value = Some(value);
        st.ok = Some(true);
        st.records = n;
        self.sink.close(id.0, n);
        self.release_dependents(id, true);
    }

    /// Starts a waiting task whose dependencies have all ended ok.
    fn maybe_start(&mut self, id: TaskId) {
        let st = &self.tasks[id.0];
        if st.phase != Phase::Waiting || st.pending > 0 || !st.stream_started {
            return;
        }
        if self.stopping {
            return;
        }
        let task = self.job.task(id);
        let source = match &task.map {
            None => Source::Single(true),
            Some(MapSource::Stream(_)) => Source::Queue(VecDeque::new()),
            Some(MapSource::Result(src)) => {
                let value = self.tasks[src.0].value.clone().unwrap_or(Value::Null);
                match items_of_value(&value) {
                    Ok(items) => Source::Iter(ItemIter::Values(items.into_iter())),
                    Err(e) => {
                        self.fail_whole_task(id, e.0);
                        return;
                    }
                }
            }
            Some(source) => match ItemIter::new(source, &self.job.dir) {
                Ok(it) => Source::Iter(it),
                Err(e) => {
                    self.fail_whole_task(id, e.0);
                    return;
                }
            },
        };
        let st = &mut self.tasks[id.0];
        st.phase = Phase::Running;
        st.source = source;
        self.pools[task.pool.0].runnable.insert(id.0);
    }

    /// A task that could not even produce its items: one failed record.
    fn fail_whole_task(&mut self, id: TaskId, error: String) {
        let task = self.job.task(id);
        let mut r = Record::not_run(
            task.id.clone(),
            None,
            self.job.function(task.function).name.clone(),
            Status::Failed,
            error.clone(),
        );
        r.args = resolved_args(self, id);
        self.sink.emit(id.0, 0, r);
        let st = &mut self.tasks[id.0];
        st.phase = Phase::Running;
        st.records = 1;
        st.failed = true;
        st.first_error = Some(error);
        st.exhausted = true;
        st.source = Source::None;
        self.on_failure(id);
        self.check_task_done(id);
    }

    /// The next unit a running task can hand out now.
    fn next_unit(&mut self, id: TaskId) -> Option<Unit> {
        let st = &mut self.tasks[id.0];
        if !self.terminating {
            if let Some(u) = st.extra.pop_front() {
                return Some(u);
            }
        }
        if self.stopping {
            return None;
        }
        if let Some(u) = st.retry.pop_front() {
            return Some(u);
        }
        if st.exhausted {
            return None;
        }
        let task = self.job.task(id);
        let item = match &mut st.source {
            Source::None => None,
            Source::Single(avail) => {
                if !*avail {
                    return None;
                }
                *avail = false;
                st.exhausted = true;
                let args = resolve(self.job, &self.tasks, &task.args);
                let kwargs = resolve_kw(self.job, &self.tasks, &task.kwargs);
                let st = &mut self.tasks[id.0];
                st.next_index = 1;
                return Some(Unit {
                    task: id,
                    kind: UnitKind::Main,
                    index: None,
                    seq: 0,
                    function: task.function,
                    args,
                    kwargs,
                    item: None,
                    attempt: 1,
                });
            }
            Source::Iter(it) => match it.next() {
                Some(Ok(v)) => Some(v),
                Some(Err(e)) => {
                    // The source broke midway: what came so far runs, the
                    // task records the error as one more failed item.
                    st.exhausted = true;
                    let index = st.next_index;
                    st.next_index += 1;
                    let mut r = Record::not_run(
                        task.id.clone(),
                        Some(index),
                        self.job.function(task.function).name.clone(),
                        Status::Failed,
                        e.0,
                    );
                    r.attempts = 0;
                    st.records += 1;
                    st.failed = true;
                    self.sink.emit(id.0, index, r);
                    return None;
                }
                None => {
                    st.exhausted = true;
                    None
                }
            },
            Source::Queue(q) => {
                let item = q.pop_front();
                if q.is_empty() && st.producer_done {
                    st.exhausted = true;
                }
                if q.len() < STREAM_HIGH_WATER / 2 {
                    // Consumers caught up: read the producers again.
                    for w in &mut self.workers {
                        w.paused = false;
                    }
                }
                item
            }
        };
        let item = item?;
        let st = &mut self.tasks[id.0];
        let index = st.next_index;
        st.next_index += 1;
        let args = resolve(self.job, &self.tasks, &task.args);
        let kwargs = resolve_kw(self.job, &self.tasks, &task.kwargs);
        let (args, kwargs) = item_call(&item, &args, &kwargs);
        Some(Unit {
            task: id,
            kind: UnitKind::Main,
            index: Some(index),
            seq: index,
            function: task.function,
            args,
            kwargs,
            item: Some(item),
            attempt: 1,
        })
    }

    /// Hands out work to idle workers, spawning workers as needed; then,
    /// when the next task's units are quick, queues a few more on busy
    /// workers so they never wait for a round trip to the engine.
    fn schedule(&mut self) {
        self.schedule_idle();
        for p in 0..self.pools.len() {
            loop {
                let head = self.pools[p]
                    .runnable
                    .iter()
                    .copied()
                    .find(|&i| self.can_hand_out(TaskId(i)));
                let Some(head) = head else { break };
                if !self.is_quick(TaskId(head)) {
                    break;
                }
                // Only behind quick units: never behind a slow one (a stream
                // producer, say), which would hold the queued ones back.
                let target = (0..self.workers.len())
                    .filter(|&w| {
                        let s = &self.workers[w];
                        s.pool == PoolId(p)
                            && matches!(s.state, WorkerState::Busy)
                            && !s.retiring
                            && !s.initializing
                            && s.units.len() < PREFETCH
                            && s.units.iter().all(|u| {
                                self.units
                                    .get(u)
                                    .is_some_and(|(unit, _)| self.is_quick(unit.task))
                            })
                    })
                    .min_by_key(|&w| self.workers[w].units.len());
                let Some(w) = target else { break };
                if !self.dispatch(p, w) {
                    break;
                }
            }
        }
    }

    fn flush_workers(&mut self) {
        for w in &mut self.workers {
            if w.conn.wants_write() && !matches!(w.state, WorkerState::Dead) {
                let _ = w.conn.flush();
            }
        }
    }

    /// How long a unit may run before the engine kills its worker: the
    /// timeout for a builtin; for a command, which the worker times out
    /// itself, the timeout plus the grace and a margin.
    fn budget(&self, unit: &Unit) -> Option<Duration> {
        if unit.kind == UnitKind::Initializer {
            return None;
        }
        let timeout = self.job.task(unit.task).timeout?;
        let backstop = match self.job.function(unit.function).kind {
            crate::spec::FunctionKind::Builtin(_) => Duration::ZERO,
            _ => GRACE + Duration::from_secs(3),
        };
        Some(timeout + backstop)
    }

    /// Are this task's units quick enough to queue several on a worker?
    fn is_quick(&self, id: TaskId) -> bool {
        let task = self.job.task(id);
        let speed = self.speeds[task.function.0];
        speed.finished >= 2
            && speed.mean_ms < 1.0
            && task.timeout.is_none()
            && self.job.pools[task.pool.0].max_tasks_per_child.is_none()
            && !self.opts.live
            && !self.tasks[id.0].has_stream_consumers
    }

    fn schedule_idle(&mut self) {
        for p in 0..self.pools.len() {
            loop {
                if self.pools[p].runnable.is_empty() {
                    break;
                }
                let idle = self.workers.iter().position(|w| {
                    w.pool == PoolId(p) && matches!(w.state, WorkerState::Idle) && !w.retiring
                });
                let worker = match idle {
                    Some(w) => w,
                    None => {
                        if self.pools[p].live >= self.pools[p].size
                            || self.pools[p].gave_up.is_some()
                        {
                            break;
                        }
                        if !self.has_work(p) {
                            break;
                        }
                        match self.spawn_worker(PoolId(p)) {
                            Some(w) => {
                                if self.workers[w].initializing {
                                    continue;
                                }
                                w
                            }
                            None => break,
                        }
                    }
                };
                if !self.dispatch(p, worker) {
                    break;
                }
            }
        }
    }

    fn has_work(&self, p: usize) -> bool {
        self.pools[p]
            .runnable
            .iter()
            .any(|&i| self.can_hand_out(TaskId(i)))
    }

    /// Could [`Engine::next_unit`] give a unit of this task now?
    fn can_hand_out(&self, id: TaskId) -> bool {
        let st = &self.tasks[id.0];
        (!st.extra.is_empty() && !self.terminating)
            || (!st.retry.is_empty() && !self.stopping)
            || (!st.exhausted
                && !self.stopping
                && match &st.source {
                    Source::Queue(q) => !q.is_empty() || st.producer_done,
                    _ => true,
                })
    }

    /// Sends the next units of pool `p` to `worker`; false if none.
    fn dispatch(&mut self, p: usize, worker: usize) -> bool {
        let mut cursor = 0;
        while let Some(&i) = self.pools[p].runnable.range(cursor..).next() {
            cursor = i + 1;
            let id = TaskId(i);
            let mut chunk = self.job.task(id).chunksize.max(1);
            // Each item counts towards max_tasks_per_child: a chunk never
            // takes a worker past its limit.
            if let Some(limit) = self.job.pools[p].max_tasks_per_child {
                let slot = &self.workers[worker];
                let used = slot.tasks_run + slot.units.len() as u64;
                chunk = chunk.min(limit.saturating_sub(used).max(1) as usize);
            }
            let mut calls = Vec::new();
            let mut deadline = None;
            while calls.len() < chunk {
                let Some(unit) = self.next_unit(id) else {
                    break;
                };
                match self.make_call(unit, worker) {
                    Some((call, d)) => {
                        deadline = deadline.or(d);
                        calls.push(call);
                    }
                    None => continue,
                }
            }
            self.maybe_retire_task(id);
            if calls.is_empty() {
                continue;
            }
            let w = &mut self.workers[worker];
            w.state = WorkerState::Busy;
            w.deadline = match (w.deadline, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if w.units.is_empty() {
                w.current = Some((SystemTime::now(), Instant::now()));
            }
            w.units.extend(calls.iter().map(|c| c.unit));
            // Sent by `flush_workers` once scheduling is done: one write
            // for everything a worker gets this round.
            w.conn.queue(&ToWorker::Run { calls });
            return true;
        }
        false
    }

    /// Takes a task out of the runnable set once it has nothing more to hand out.
    fn maybe_retire_task(&mut self, id: TaskId) {
        let st = &self.tasks[id.0];
        if st.exhausted && st.retry.is_empty() && st.extra.is_empty() {
            self.pools[self.job.task(id).pool.0].runnable.remove(&id.0);
        }
        self.check_task_done(id);
    }

    /// Registers a unit as in flight on `worker`; a unit whose invocation
    /// cannot be built fails at once.
    fn make_call(&mut self, unit: Unit, worker: usize) -> Option<(Call, Option<Instant>)> {
        let task = self.job.task(unit.task);
        let function = self.job.function(unit.function);
        let forward = self.opts.live
            || (unit.kind == UnitKind::Main && self.tasks[unit.task.0].has_stream_consumers);
        let inv = match invocation(
            self.job,
            task,
            function,
            &unit.args,
            &unit.kwargs,
            unit.item.as_ref(),
            forward,
        ) {
            Ok(inv) => inv,
            Err(e) => {
                let outcome = Outcome {
                    error: Some(e),
                    ..Outcome::default()
                };
                self.tasks[unit.task.0].in_flight += 1;
                self.unit_done(unit, outcome, Status::Failed, None);
                return None;
            }
        };
        let deadline = self.budget(&unit).map(|b| Instant::now() + b);
        let n = self.next_unit;
        self.next_unit += 1;
        self.tasks[unit.task.0].in_flight += 1;
        if unit.kind == UnitKind::Main {
            self.stream_producer_started(unit.task);
        }
        self.units.insert(n, (unit, worker));
        Some((
            Call {
                unit: n,
                invocation: inv,
            },
            deadline,
        ))
    }

    fn stream_producer_started(&mut self, id: TaskId) {
        let consumers = self.consumers[id.0].clone();
        for c in consumers {
            if !self.tasks[c.0].stream_started {
                self.tasks[c.0].stream_started = true;
                self.maybe_start(c);
            }
        }
    }

    /// Starts a worker: forked by the fork server, or a Slurm step.
    fn launch(&mut self, pool: PoolId) -> Result<(u32, Conn, Option<std::process::Child>), String> {
        let spec = &self.job.pools[pool.0];
        if spec.backend != Backend::Slurm {
            let spawned = self
                .fs
                .spawn()
                .map_err(|e| format!("cannot start a worker: {e}"))?;
            let conn = Conn::new(spawned.conn, None).map_err(|e| e.to_string())?;
            return Ok((spawned.pid, conn, None));
        }
        if !self.allocations.contains_key(&pool.0) {
            let request = SlurmRequest {
                partition: spec.slurm.partition.clone(),
                nodes: spec.slurm.nodes,
                time: spec.slurm.time.clone(),
                tasks: self.pools[pool.0].size,
                job_name: format!("jobfile-{}", self.job.name),
            };
            let alloc = Allocation::request(&request)
                .map_err(|e| format!("no Slurm allocation for pool `{}`: {e}", spec.name))?;
            self.allocations.insert(pool.0, alloc);
        }
        let binary = match &spec.slurm.worker_binary {
            Some(p) => p.clone(),
            None => default_worker_binary().map_err(|e| format!("cannot find jobfile: {e}"))?,
        };
        let alloc = self
            .allocations
            .get(&pool.0)
            .ok_or_else(|| "the Slurm allocation is gone".to_string())?;
        let step = alloc
            .spawn_step(&binary)
            .map_err(|e| format!("cannot start a Slurm step: {e}"))?;
        let conn = Conn::new(step.stdout, Some(step.stdin)).map_err(|e| e.to_string())?;
        Ok((step.child.id(), conn, Some(step.child)))
    }

    fn spawn_worker(&mut self, pool: PoolId) -> Option<usize> {
        let (pid, conn, step) = match self.launch(pool) {
            Ok(l) => l,
            Err(e) => {
                self.pool_gives_up(pool, e);
                return None;
            }
        };
        let slot = WorkerSlot {
            pid,
            reported_pid: pid,
            step,
            pool,
            conn,
            state: WorkerState::Starting,
            units: VecDeque::new(),
            pgid: None,
            deadline: None,
            tasks_run: 0,
            initializing: false,
            retiring: false,
            paused: false,
            current: None,
        };
        let w = match self
            .workers
            .iter()
            .position(|w| matches!(w.state, WorkerState::Dead))
        {
            Some(i) => {
                self.workers[i] = slot;
                i
            }
            None => {
                self.workers.push(slot);
                self.workers.len() - 1
            }
        };
        self.pools[pool.0].live += 1;
        self.workers[w].state = WorkerState::Idle;
        if let Some(init) = &self.job.pools[pool.0].initializer {
            let unit = Unit {
                task: TaskId(usize::MAX),
                kind: UnitKind::Initializer,
                index: None,
                seq: 0,
                function: init.function,
                args: init.args.clone(),
                kwargs: init.kwargs.clone(),
                item: None,
                attempt: 1,
            };
            let function = self.job.function(init.function);
            let inv = match &function.kind {
                crate::spec::FunctionKind::Builtin(name) => Invocation::Builtin {
                    name: name.clone(),
                    args: unit.args.clone(),
                    kwargs: unit.kwargs.clone(),
                },
                _ => {
                    let fake = crate::spec::Task {
                        id: String::new(),
                        function: init.function,
                        args: Vec::new(),
                        kwargs: Vec::new(),
                        mode: Default::default(),
                        after: Vec::new(),
                        map: None,
                        chunksize: 1,
                        inputs: Vec::new(),
                        pool,
                        callback: None,
                        error_callback: None,
                        timeout: function.timeout,
                        retries: 0,
                        env: function.env.clone(),
                        cwd: function.cwd.clone(),
                    };
                    match invocation(
                        self.job,
                        &fake,
                        function,
                        &unit.args,
                        &unit.kwargs,
                        None,
                        false,
                    ) {
                        Ok(inv) => inv,
                        Err(e) => {
                            self.pool_gives_up(pool, format!("the initializer cannot run: {e}"));
                            return None;
                        }
                    }
                }
            };
            let n = self.next_unit;
            self.next_unit += 1;
            self.units.insert(n, (unit, w));
            let slot = &mut self.workers[w];
            slot.initializing = true;
            slot.state = WorkerState::Busy;
            slot.units = VecDeque::from([n]);
            slot.conn.queue(&ToWorker::Run {
                calls: vec![Call {
                    unit: n,
                    invocation: inv,
                }],
            });
            let _ = slot.conn.flush();
        }
        Some(w)
    }

    /// Three failed initializer starts in a row: the pool's tasks fail.
    fn pool_gives_up(&mut self, pool: PoolId, error: String) {
        self.pools[pool.0].gave_up = Some(error.clone());
        let ids: Vec<usize> = self.pools[pool.0].runnable.iter().copied().collect();
        for i in ids {
            let id = TaskId(i);
            loop {
                let Some(unit) = self.next_unit(id) else {
                    break;
                };
                self.tasks[i].in_flight += 1;
                let outcome = Outcome {
                    error: Some(error.clone()),
                    ..Outcome::default()
                };
                self.record_final(unit, outcome, Status::Failed, None);
            }
            self.maybe_retire_task(id);
        }
    }

    fn main_loop(&mut self) -> RunEnd {
        loop {
            if let Some(sig) = self.signals.take() {
                return RunEnd::Signalled(sig);
            }
            self.schedule();
            self.flush_workers();
            if self.all_done() {
                return RunEnd::Completed;
            }
            self.poll_once();
        }
    }

    /// Nothing runs and, after [`Engine::schedule`], nothing could start:
    /// every task has ended, or the rest is held back by the stop policy.
    fn all_done(&self) -> bool {
        self.units.is_empty()
    }

    fn poll_once(&mut self) {
        self.sink.flush();
        self.sink.running(self.units.len());
        let timeout = self
            .workers
            .iter()
            .filter_map(|w| w.deadline)
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
            fds.push(PollFd::new(self.fs.exits_fd(), PollFlags::POLLIN));
            which.push((1, 0));
            if let Some((_, listener, _)) = &self.shared {
                fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
                which.push((2, 0));
            }
            for (i, (c, _)) in self.clients.iter().enumerate() {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
                which.push((3, i));
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
        for (kind, i, flags) in ready {
            match kind {
                1 => {
                    for ex in self.fs.read_exits() {
                        let live = self
                            .workers
                            .iter()
                            .any(|w| w.pid == ex.pid && !matches!(w.state, WorkerState::Dead));
                        if live {
                            self.exits.insert(ex.pid, ex);
                        }
                    }
                }
                2 => self.accept_clients(),
                3 => self.serve_client(i),
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
        self.clients
            .retain(|(_, buf)| buf.as_slice() != b"\0closed");
        self.check_deadlines();
    }

    fn accept_clients(&mut self) {
        let Some((_, listener, _)) = &self.shared else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push((stream, Vec::new()));
            }
        }
    }

    fn serve_client(&mut self, i: usize) {
        let Some((store, _, _)) = &mut self.shared else {
            return;
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
            *buf = b"\0closed".to_vec();
        } else if closed {
            *buf = b"\0closed".to_vec();
        }
    }

    fn read_worker(&mut self, w: usize) {
        let alive = self.workers[w].conn.fill().unwrap_or(false);
        loop {
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

    fn on_frame(&mut self, w: usize, frame: FromWorker) {
        match frame {
            FromWorker::Ready { pid } => self.workers[w].reported_pid = pid,
            FromWorker::Spawned { pgid, .. } => self.workers[w].pgid = Some(pgid),
            FromWorker::Line { unit, stream, line } => self.on_line(w, unit, stream, line),
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

    fn on_line(&mut self, w: usize, unit: u64, stream: LineStream, line: String) {
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
            eprintln!("[{label}]{mark} {line}");
        }
        if stream == LineStream::Out && u.kind == UnitKind::Main {
            let consumers = self.consumers[task.0].clone();
            let mut behind = false;
            for c in consumers {
                if let Source::Queue(q) = &mut self.tasks[c.0].source {
                    q.push_back(Value::String(line.clone()));
                    behind |= q.len() >= STREAM_HIGH_WATER && self.tasks[c.0].in_flight > 0;
                }
            }
            // Back-pressure: stop reading the producer while its consumers
            // are behind; the producer then blocks on its pipe.
            self.workers[w].paused = behind;
        }
    }

    fn on_done(&mut self, w: usize, n: u64, outcome: Outcome) {
        let Some((unit, _)) = self.units.remove(&n) else {
            return;
        };
        // The next queued unit (if any) starts now: its clock and deadline.
        let next_budget = self.workers[w]
            .units
            .iter()
            .find(|&&u| u != n)
            .and_then(|u| self.units.get(u))
            .and_then(|(next, _)| self.budget(next));
        let slot = &mut self.workers[w];
        slot.units.retain(|&u| u != n);
        slot.pgid = None;
        if slot.units.is_empty() {
            slot.state = WorkerState::Idle;
            slot.deadline = None;
            slot.current = None;
        } else {
            slot.current = Some((SystemTime::now(), Instant::now()));
            slot.deadline = if slot.retiring {
                slot.deadline
            } else {
                next_budget.map(|b| Instant::now() + b)
            };
        }
        if unit.kind == UnitKind::Initializer {
            slot.initializing = false;
            let pool = slot.pool;
            if outcome.ok {
                self.pools[pool.0].init_failures = 0;
            } else {
                self.pools[pool.0].init_failures += 1;
                let error = format!(
                    "the pool's initializer failed: {}",
                    outcome.error.clone().unwrap_or_default()
                );
                self.retire(w, true);
                if self.pools[pool.0].init_failures >= 3 {
                    self.pool_gives_up(pool, error);
                }
            }
            return;
        }
        slot.tasks_run += 1;
        let cancel_rest = slot.retiring && !slot.units.is_empty();
        // A unit stopped because the run is being terminated is cancelled,
        // whatever the signal did to it.
        let stopped = slot.retiring && self.terminating && !outcome.ok;
        let status = if outcome.ok {
            Status::Ok
        } else if stopped {
            Status::Cancelled
        } else if outcome.timed_out {
            Status::Timeout
        } else if outcome.cancelled {
            Status::Cancelled
        } else {
            Status::Failed
        };
        let pid = slot.reported_pid;
        let limit = self.job.pools[slot.pool.0].max_tasks_per_child;
        if limit.is_some_and(|l| slot.tasks_run >= l) && slot.units.is_empty() {
            self.retire(w, false);
        }
        let speed = &mut self.speeds[unit.function.0];
        speed.finished += 1;
        speed.mean_ms += (outcome.duration_ms - speed.mean_ms) / (speed.finished.min(16) as f64);
        self.unit_done(unit, outcome, status, Some(pid));
        if cancel_rest && self.terminating {
            // Cancelled while more units were queued on it: they never run.
            self.kill_worker(w);
            self.worker_lost(w, Some(Status::Cancelled));
        }
    }

    /// A unit ended: retry it, or record it.
    fn unit_done(&mut self, unit: Unit, outcome: Outcome, status: Status, worker: Option<u32>) {
        let task = self.job.task(unit.task);
        let retryable = matches!(status, Status::Failed | Status::Timeout | Status::Crashed);
        if retryable
            && unit.kind == UnitKind::Main
            && unit.attempt <= task.retries
            && !self.stopping
        {
            let st = &mut self.tasks[unit.task.0];
            st.in_flight -= 1;
            let task_index = unit.task.0;
            let mut again = unit;
            again.attempt += 1;
            st.retry.push_back(again);
            self.pools[task.pool.0].runnable.insert(task_index);
            return;
        }
        self.record_final(unit, outcome, status, worker);
    }

    fn record_final(&mut self, unit: Unit, outcome: Outcome, status: Status, worker: Option<u32>) {
        let id = unit.task;
        let task = self.job.task(id);
        let function = self.job.function(unit.function);
        let name = match unit.kind {
            UnitKind::Callback => format!("{}:callback", task.id),
            UnitKind::ErrorCallback => format!("{}:error_callback", task.id),
            _ => task.id.clone(),
        };
        let error = if status == Status::Ok {
            None
        } else {
            outcome.error.clone().or(Some(status.as_str().to_string()))
        };
        let record = Record {
            task: name,
            index: unit.index,
            function: function.name.clone(),
            args: unit.args.clone(),
            kwargs: unit.kwargs.clone(),
            status,
            value: outcome.value.clone(),
            exit_code: outcome.exit_code,
            signal: outcome.signal,
            error: error.clone(),
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            truncated: outcome.truncated,
            attempts: unit.attempt,
            worker,
            started: (outcome.started_ms > 0.0)
                .then(|| UNIX_EPOCH + Duration::from_secs_f64(outcome.started_ms / 1000.0)),
            duration_ms: (outcome.started_ms > 0.0).then_some(outcome.duration_ms),
        };
        let has_callback = task.callback.is_some() || task.error_callback.is_some();
        let st = &mut self.tasks[id.0];
        let last = unit.kind == UnitKind::Main
            && has_callback
            && st.exhausted
            && st.in_flight == 1
            && st.retry.is_empty();
        if last {
            // Held until the callback's record, so that one follows it
            // directly in completion order too.
            st.held_last = Some((unit.seq, record));
        } else {
            if unit.kind != UnitKind::Main {
                self.flush_held(id);
            }
            self.sink.emit(id.0, unit.seq, record);
        }
        let st = &mut self.tasks[id.0];
        st.in_flight -= 1;
        st.records += 1;
        match unit.kind {
            UnitKind::Main => {
                if status != Status::Ok {
                    if !st.failed {
                        st.first_error = Some(match unit.index {
                            Some(i) => format!("item {i}: {}", error.unwrap_or_default()),
                            None => error.unwrap_or_default(),
                        });
                    }
                    st.failed = true;
                }
                if st.keep_values {
                    match unit.index {
                        Some(i) => {
                            let i = i as usize;
                            if st.values.len() <= i {
                                st.values.resize(i + 1, None);
                            }
                            st.values[i] = Some(outcome.value);
                        }
                        None => st.value = Some(outcome.value),
                    }
                }
                if status != Status::Ok && status != Status::Cancelled {
                    self.on_failure(id);
                }
                self.check_task_done(id);
            }
            UnitKind::Callback | UnitKind::ErrorCallback => {
                st.callback_pending = false;
                self.check_task_done(id);
            }
            UnitKind::Initializer => {}
        }
    }

    /// Writes a task's record held for its callback.
    fn flush_held(&mut self, id: TaskId) {
        if let Some((seq, record)) = self.tasks[id.0].held_last.take() {
            self.sink.emit(id.0, seq, record);
        }
    }

    /// Applies the failure policy of the failed task's pool.
    fn on_failure(&mut self, id: TaskId) {
        let policy = self.job.pools[self.job.task(id).pool.0].on_failure;
        if policy == OnFailure::Continue || self.stopping {
            return;
        }
        self.stopping = true;
        if policy == OnFailure::Terminate {
            self.terminating = true;
            for w in 0..self.workers.len() {
                if matches!(self.workers[w].state, WorkerState::Busy)
                    && !self.workers[w].initializing
                {
                    self.cancel_worker(w);
                }
            }
        }
    }

    /// Stops what a worker runs: cancel frame and TERM to the command's
    /// group now; the deadline kills the worker if it does not answer.
    fn cancel_worker(&mut self, w: usize) {
        let slot = &mut self.workers[w];
        slot.conn.queue(&ToWorker::Cancel);
        let _ = slot.conn.flush();
        if let Some(pgid) = slot.pgid {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
        }
        let builtin = slot.units.iter().any(|u| {
            self.units.get(u).is_some_and(|(unit, _)| {
                matches!(
                    self.job.function(unit.function).kind,
                    crate::spec::FunctionKind::Builtin(_)
                )
            })
        });
        let soon = Instant::now()
            + if builtin {
                Duration::ZERO
            } else {
                GRACE + Duration::from_millis(500)
            };
        let slot = &mut self.workers[w];
        slot.deadline = Some(slot.deadline.map_or(soon, |d| d.min(soon)));
        slot.retiring = true;
    }

    /// Has a task ended? Then record what follows from it.
    fn check_task_done(&mut self, id: TaskId) {
        let st = &mut self.tasks[id.0];
        if let Source::Queue(q) = &st.source {
            if q.is_empty() && st.producer_done {
                st.exhausted = true;
            }
        }
        let st = &self.tasks[id.0];
        if st.phase != Phase::Running || !st.exhausted || st.in_flight > 0 || !st.retry.is_empty() {
            return;
        }
        if st.ok.is_none() {
            self.task_ended(id);
        }
        let st = &self.tasks[id.0];
        if st.ok.is_some() && !st.callback_pending && st.extra.is_empty() {
            let st = &mut self.tasks[id.0];
            st.phase = Phase::Done;
            let total = st.records;
            let pool = self.job.task(id).pool.0;
            self.pools[pool].runnable.remove(&id.0);
            self.flush_held(id);
            self.sink.close(id.0, total);
        }
    }

    /// All units of a task ended: its value, callbacks and dependents.
    fn task_ended(&mut self, id: TaskId) {
        let task = self.job.task(id);
        let st = &mut self.tasks[id.0];
        let ok = !st.failed && !st.producer_failed;
        st.ok = Some(ok);
        if self.interrupted {
            return;
        }
        if st.keep_values && task.map.is_some() {
            let values = std::mem::take(&mut st.values);
            st.value = Some(Value::Array(
                values
                    .into_iter()
                    .map(|v| v.unwrap_or(Value::Null))
                    .collect(),
            ));
        }
        let own_ok = !st.failed;
        let callback = if own_ok {
            task.callback.map(|f| (f, UnitKind::Callback))
        } else {
            task.error_callback.map(|f| (f, UnitKind::ErrorCallback))
        };
        if let Some((f, kind)) = callback {
            if !self.stopping || kind == UnitKind::ErrorCallback {
                let arg = if own_ok {
                    st.value.clone().unwrap_or(Value::Null)
                } else {
                    Value::String(st.first_error.clone().unwrap_or_default())
                };
                let seq = st.records;
                st.extra.push_back(Unit {
                    task: id,
                    kind,
                    index: None,
                    seq,
                    function: f,
                    args: vec![arg],
                    kwargs: Map::new(),
                    item: None,
                    attempt: 1,
                });
                st.callback_pending = true;
                self.pools[task.pool.0].runnable.insert(id.0);
            }
        }
        // Stream consumers of this task: no more lines will come.
        let consumers = self.consumers[id.0].clone();
        for c in consumers {
            let cs = &mut self.tasks[c.0];
            if !ok {
                cs.producer_failed = true;
            }
            cs.producer_done = true;
            if cs.phase == Phase::Running {
                self.maybe_retire_task(c);
            }
        }
        self.release_dependents(id, ok);
    }

    fn release_dependents(&mut self, id: TaskId, ok: bool) {
        let dependents = self.plan.dependents[id.0].clone();
        for d in dependents {
            let kind = self.plan.deps[d.0]
                .iter()
                .find(|e| e.on == id)
                .map(|e| e.kind);
            if kind == Some(EdgeKind::Stream) {
                if !ok && self.tasks[d.0].phase == Phase::Waiting {
                    // The producer ended without starting its consumer.
                    self.skip(d, &self.job.task(id).id.clone());
                }
                continue;
            }
            if ok {
                let st = &mut self.tasks[d.0];
                st.pending = st.pending.saturating_sub(1);
                self.maybe_start(d);
            } else if self.tasks[d.0].phase == Phase::Waiting {
                self.skip(d, &self.job.task(id).id.clone());
            }
        }
    }

    /// A task that will never run because `because` did not end ok.
    fn skip(&mut self, id: TaskId, because: &str) {
        let error = format!("dependency `{because}` did not end ok");
        let n = self.not_run_records(id, Status::Skipped, &error);
        let st = &mut self.tasks[id.0];
        st.phase = Phase::Done;
        st.ok = Some(false);
        st.records = n;
        self.sink.close(id.0, n);
        self.release_dependents(id, false);
    }

    /// Records for a task that never ran: one per item when the items are
    /// known without running anything, else one without index.
    fn not_run_records(&mut self, id: TaskId, status: Status, error: &str) -> u64 {
        let task = self.job.task(id);
        let function = self.job.function(task.function).name.clone();
        let make = |index: Option<u64>| {
            Record::not_run(
                task.id.clone(),
                index,
                function.clone(),
                status,
                error.to_string(),
            )
        };
        let static_items = match &task.map {
            Some(src @ (MapSource::Items(_) | MapSource::Range { .. } | MapSource::Product(_))) => {
                ItemIter::new(src, &self.job.dir).ok()
            }
            _ => None,
        };
        match static_items {
            Some(items) => {
                let mut n = 0;
                for item in items {
                    let mut r = make(Some(n));
                    if let Ok(item) = item {
                        let (a, k) = item_call(&item, &[], &Map::new());
                        r.args = a;
                        r.kwargs = k;
                    }
                    self.sink.emit(id.0, n, r);
                    n += 1;
                }
                n
            }
            None => {
                let mut r = make(None);
                if task.map.is_none() {
                    r.args = resolved_args(self, id);
                }
                self.sink.emit(id.0, 0, r);
                1
            }
        }
    }

    fn check_deadlines(&mut self) {
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

    fn kill_worker(&mut self, w: usize) {
        let slot = &self.workers[w];
        if let Some(pgid) = slot.pgid {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        // srun passes SIGTERM on as the end of its step, within
        // milliseconds; a SIGKILL would hold the step's CPU for seconds.
        let signal = if slot.step.is_some() {
            Signal::SIGTERM
        } else {
            Signal::SIGKILL
        };
        let _ = kill(Pid::from_raw(slot.pid as i32), signal);
    }

    /// A worker is gone (or was killed): its units end as `status`, or as
    /// `crashed` with the worker's signal.
    fn worker_lost(&mut self, w: usize, status: Option<Status>) {
        let pid = self.workers[w].pid;
        if let Some(pgid) = self.workers[w].pgid {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        let exit = match self.workers[w].step.take() {
            Some(child) => self.wait_step(child),
            None => self.wait_exit(pid),
        };
        let slot = &mut self.workers[w];
        slot.state = WorkerState::Dead;
        let units: Vec<u64> = slot.units.drain(..).collect();
        let pool = slot.pool;
        let began = slot.current.take();
        self.pools[pool.0].live = self.pools[pool.0].live.saturating_sub(1);
        let signal = exit.and_then(|e| e.signal());
        let mut requeue: Vec<Unit> = Vec::new();
        for (pos, n) in units.into_iter().enumerate() {
            let Some((unit, _)) = self.units.remove(&n) else {
                continue;
            };
            if pos > 0 && status != Some(Status::Cancelled) && unit.kind != UnitKind::Initializer {
                // Queued behind the unit that was running: it never
                // started, so it goes back to its task as it was.
                self.tasks[unit.task.0].in_flight -= 1;
                requeue.push(unit);
                continue;
            }
            if unit.kind == UnitKind::Initializer {
                self.pools[pool.0].init_failures += 1;
                if self.pools[pool.0].init_failures >= 3 {
                    self.pool_gives_up(pool, "the pool's initializer crashed its worker".into());
                }
                continue;
            }
            let task = self.job.task(unit.task);
            let (status, error) = match status {
                Some(Status::Timeout) => (
                    Status::Timeout,
                    format!(
                        "timed out after {}",
                        humantime::format_duration(task.timeout.unwrap_or_default())
                    ),
                ),
                Some(s) => (s, "cancelled".to_string()),
                None => (
                    Status::Crashed,
                    match (signal, exit.and_then(|e| e.code())) {
                        (Some(s), _) => {
                            format!("the worker died: killed by signal {s} ({})", signal_name(s))
                        }
                        (None, Some(c)) => format!("the worker died: exited with code {c}"),
                        _ => "the worker died".to_string(),
                    },
                ),
            };
            let (started_ms, duration_ms) = match began {
                Some((wall, clock)) if pos == 0 => (
                    wall.duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
                    clock.elapsed().as_secs_f64() * 1000.0,
                ),
                _ => (0.0, 0.0),
            };
            let outcome = Outcome {
                error: Some(error),
                signal: if status == Status::Crashed {
                    signal
                } else {
                    None
                },
                started_ms,
                duration_ms,
                ..Outcome::default()
            };
            self.unit_done(unit, outcome, status, Some(pid));
        }
        for unit in requeue.into_iter().rev() {
            let id = unit.task;
            let st = &mut self.tasks[id.0];
            match unit.kind {
                UnitKind::Main => st.retry.push_front(unit),
                _ => st.extra.push_front(unit),
            }
            self.pools[self.job.task(id).pool.0].runnable.insert(id.0);
        }
    }

    /// The exit status of a Slurm worker's `srun`, waiting briefly.
    fn wait_step(
        &mut self,
        mut child: std::process::Child,
    ) -> Option<super::fork_server::WorkerExit> {
        use std::os::unix::process::ExitStatusExt;
        let until = Instant::now() + Duration::from_millis(500);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    return Some(super::fork_server::WorkerExit {
                        pid: child.id(),
                        status: status.into_raw(),
                    });
                }
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    self.ended_steps.push(child);
                    return None;
                }
            }
        }
    }

    /// The exit status of a worker, waiting briefly for the fork server's
    /// report (it reaps the worker a moment after its socket closes).
    fn wait_exit(&mut self, pid: u32) -> Option<super::fork_server::WorkerExit> {
        let until = Instant::now() + Duration::from_millis(500);
        loop {
            for ex in self.fs.read_exits() {
                self.exits.insert(ex.pid, ex);
            }
            if let Some(ex) = self.exits.remove(&pid) {
                return Some(ex);
            }
            if Instant::now() >= until {
                return None;
            }
            let mut fds = [PollFd::new(self.fs.exits_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(50u16));
        }
    }

    /// Closes a worker's socket so it exits (max_tasks_per_child, a failed
    /// initializer); a new worker takes its place when there is work.
    fn retire(&mut self, w: usize, kill_it: bool) {
        let slot = &mut self.workers[w];
        if kill_it {
            let _ = kill(Pid::from_raw(slot.pid as i32), Signal::SIGKILL);
        }
        slot.state = WorkerState::Dead;
        let pool = slot.pool;
        slot.conn.close();
        if let Some(child) = slot.step.take() {
            self.ended_steps.push(child);
        }
        self.pools[pool.0].live = self.pools[pool.0].live.saturating_sub(1);
    }

    /// Ends the run: stops workers, records what was stopped, closes output.
    fn finish(mut self, end: RunEnd) -> RunReport {
        match end {
            RunEnd::Completed => {
                // Whatever is left was held back by the stop policy.
                for i in 0..self.tasks.len() {
                    if self.tasks[i].phase != Phase::Done {
                        self.cancel_rest(TaskId(i));
                    }
                }
            }
            RunEnd::Signalled(_) => {
                self.stopping = true;
                self.terminating = true;
                self.interrupted = true;
                for w in 0..self.workers.len() {
                    if matches!(self.workers[w].state, WorkerState::Busy) {
                        self.cancel_worker(w);
                    }
                }
                let until = Instant::now() + GRACE;
                while !self.units.is_empty() && Instant::now() < until {
                    self.poll_once();
                }
                for w in 0..self.workers.len() {
                    if !matches!(self.workers[w].state, WorkerState::Dead) {
                        self.kill_worker(w);
                        if !self.workers[w].units.is_empty() {
                            self.worker_lost(w, Some(Status::Cancelled));
                        }
                    }
                }
            }
        }
        for w in 0..self.workers.len() {
            if !matches!(self.workers[w].state, WorkerState::Dead) {
                self.retire(w, false);
            }
        }
        for i in 0..self.tasks.len() {
            self.flush_held(TaskId(i));
        }
        self.end_slurm();
        if let Some((store, _, _)) = &self.shared {
            let mut r = Record::not_run(
                "@shared".into(),
                None,
                String::new(),
                Status::Ok,
                String::new(),
            );
            r.error = None;
            r.value = store.snapshot();
            let slot = self.tasks.len();
            self.sink.emit(slot, 0, r);
            self.sink.close(slot, 1);
        }
        let result = match end {
            RunEnd::Completed => self.sink.finish(),
            RunEnd::Signalled(_) => self.sink.finish_interrupted(),
        };
        match result {
            Ok(counts) => RunReport {
                end,
                counts,
                write_error: None,
            },
            Err(e) => RunReport {
                end,
                counts: [0; 6],
                write_error: Some(e),
            },
        }
    }

    /// Reaps the `srun`s of Slurm workers (their stdin is closed, so their
    /// steps end) and gives the allocations back.
    fn end_slurm(&mut self) {
        let until = Instant::now() + Duration::from_secs(2);
        for mut child in self.ended_steps.drain(..) {
            loop {
                match child.try_wait() {
                    Ok(None) if Instant::now() < until => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Ok(None) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => break,
                }
            }
        }
        for (_, mut alloc) in self.allocations.drain() {
            if let Err(e) = alloc.release() {
                eprintln!("warning: releasing the Slurm allocation: {e}");
            }
        }
    }

    /// Records `cancelled` for what a stopped run never ran.
    fn cancel_rest(&mut self, id: TaskId) {
        let error = "cancelled: the run stopped after a failure";
        match self.tasks[id.0].phase {
            Phase::Waiting => {
                let n = self.not_run_records(id, Status::Cancelled, error);
                self.tasks[id.0].phase = Phase::Done;
                self.sink.close(id.0, n);
            }
            Phase::Running => {
                let task = self.job.task(id);
                let function = self.job.function(task.function).name.clone();
                let st = &mut self.tasks[id.0];
                let mut pending: Vec<Unit> = st.retry.drain(..).collect();
                pending.extend(st.extra.drain(..).filter(|u| u.kind == UnitKind::Main));
                for u in pending {
                    let mut r = Record::not_run(
                        task.id.clone(),
                        u.index,
                        function.clone(),
                        Status::Cancelled,
                        error.into(),
                    );
                    r.args = u.args;
                    r.kwargs = u.kwargs;
                    r.attempts = u.attempt - 1;
                    self.sink.emit(id.0, u.seq, r);
                    self.tasks[id.0].records += 1;
                }
                // Items never handed out.
                let st = &mut self.tasks[id.0];
                if !st.exhausted {
                    let mut rest: Vec<Value> = Vec::new();
                    let single = matches!(st.source, Source::Single(true));
                    match &mut st.source {
                        Source::Iter(it) => {
                            for v in it.by_ref().flatten() {
                                rest.push(v);
                                if rest.len() >= 4096 {
                                    break;
                                }
                            }
                        }
                        Source::Queue(q) => rest.extend(q.drain(..)),
                        _ => {}
                    }
                    if single {
                        let mut r = Record::not_run(
                            task.id.clone(),
                            None,
                            function.clone(),
                            Status::Cancelled,
                            error.into(),
                        );
                        r.args = resolved_args(self, id);
                        self.sink.emit(id.0, 0, r);
                        self.tasks[id.0].records += 1;
                    }
                    let mut more = !rest.is_empty();
                    while more {
                        for v in rest.drain(..) {
                            let st = &mut self.tasks[id.0];
                            let index = st.next_index;
                            st.next_index += 1;
                            st.records += 1;
                            let (a, k) = item_call(&v, &[], &Map::new());
                            let mut r = Record::not_run(
                                task.id.clone(),
                                Some(index),
                                function.clone(),
                                Status::Cancelled,
                                error.into(),
                            );
                            r.args = a;
                            r.kwargs = k;
                            self.sink.emit(id.0, index, r);
                        }
                        if let Source::Iter(it) = &mut self.tasks[id.0].source {
                            for v in it.by_ref().flatten() {
                                rest.push(v);
                                if rest.len() >= 4096 {
                                    break;
                                }
                            }
                        }
                        more = !rest.is_empty();
                    }
                }
                self.flush_held(id);
                let st = &mut self.tasks[id.0];
                st.phase = Phase::Done;
                let n = st.records;
                self.sink.close(id.0, n);
            }
            Phase::Done => {}
        }
    }
}

fn resolve(job: &Job, tasks: &[TaskState], args: &[Arg]) -> Vec<Value> {
    args.iter().map(|a| resolve_one(job, tasks, a)).collect()
}

fn resolve_kw(job: &Job, tasks: &[TaskState], kwargs: &[(String, Arg)]) -> Map<String, Value> {
    kwargs
        .iter()
        .map(|(k, a)| (k.clone(), resolve_one(job, tasks, a)))
        .collect()
}

fn resolve_one(_job: &Job, tasks: &[TaskState], a: &Arg) -> Value {
    match a {
        Arg::Value(v) => v.clone(),
        Arg::Result(id) => tasks[id.0].value.clone().unwrap_or(Value::Null),
    }
}

fn resolved_args(e: &Engine<'_>, id: TaskId) -> Vec<Value> {
    resolve(e.job, &e.tasks, &e.job.task(id).args)
}
