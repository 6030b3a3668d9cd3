//! The engine's bookkeeping: units of work, the state of each task, each
//! worker and each pool.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Instant, SystemTime};

use serde_json::{Map, Value};

use crate::exec::protocol::Conn;
use crate::plan::{Digest, ItemIter, item_call};
use crate::report::RecordKind;
use crate::spec::{Arg, FunctionId, PoolId, Task, TaskId};

/// Where the run is. Each phase includes the ones before it: a run that
/// terminates has stopped too, an interrupted one terminates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum RunPhase {
    /// Work is handed out as it becomes ready.
    Running,
    /// A failure under `stop`: nothing new starts, what runs ends.
    Stopping,
    /// A failure under `terminate`: running units are being killed too.
    Terminating,
    /// A signal (or lost output): as terminating, and nothing follows from
    /// what ends now (no callbacks, no dependents).
    Interrupted,
}

impl RunPhase {
    /// Nothing new starts.
    pub(super) fn stopping(self) -> bool {
        self >= RunPhase::Stopping
    }

    /// Running units are being killed.
    pub(super) fn terminating(self) -> bool {
        self >= RunPhase::Terminating
    }

    /// Moves on to `to`, never back.
    pub(super) fn advance(&mut self, to: RunPhase) {
        *self = (*self).max(to);
    }
}

/// What a unit runs for its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UnitKind {
    Main,
    Callback,
    ErrorCallback,
}

impl UnitKind {
    /// The kind of record a unit of this kind makes.
    pub(super) fn record(self) -> RecordKind {
        match self {
            UnitKind::Main => RecordKind::Main,
            UnitKind::Callback => RecordKind::Callback,
            UnitKind::ErrorCallback => RecordKind::ErrorCallback,
        }
    }
}

/// A worker's place in the engine's worker table; a slot is reused once
/// its worker is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct WorkerId(pub(super) usize);

/// The number a call is sent with; the worker answers with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct UnitId(pub(super) u64);

/// A call handed to a worker and not answered yet.
// Boxing the unit would cost an allocation per call; only the calls in
// flight are held, at most a few per worker.
#[allow(clippy::large_enum_variant)]
pub(super) enum InFlight {
    /// A unit of a task.
    Task(Unit),
    /// The pool's initializer, the first call of a new worker (or of a
    /// renewed interpreter).
    Initializer,
}

impl InFlight {
    /// The task unit, when it is one.
    pub(super) fn unit(&self) -> Option<&Unit> {
        match self {
            InFlight::Task(unit) => Some(unit),
            InFlight::Initializer => None,
        }
    }
}

/// One call to run.
#[derive(Debug, Clone)]
pub(super) struct Unit {
    pub(super) task: TaskId,
    pub(super) kind: UnitKind,
    /// Item index for map items; the record's seq.
    pub(super) index: Option<u64>,
    pub(super) seq: u64,
    pub(super) function: FunctionId,
    pub(super) args: Vec<Value>,
    pub(super) kwargs: Map<String, Value>,
    pub(super) item: Option<Value>,
    pub(super) attempt: u32,
    /// The fingerprint of the inputs filled for this unit, as it started.
    pub(super) inputs: Digest,
    /// The fingerprint of its outputs, once it ended ok.
    pub(super) outputs: Digest,
}

pub(super) enum Source {
    None,
    Single(bool),
    Iter(ItemIter),
    Queue(VecDeque<Value>),
}

/// One task of the job: where it is, and what outlives its run (its value,
/// whether it ran). Small, as a job may have a hundred thousand tasks:
/// what a running task needs is boxed in its phase and freed when it ends.
pub(super) struct TaskState {
    pub(super) phase: TaskPhase,
    /// For a stream consumer: where its producer is.
    pub(super) producer: Producer,
    /// Its value, once known: what result references to it resolve to
    /// (boxed: most tasks have none, and a `Value` takes 80 bytes).
    pub(super) value: Option<Box<Value>>,
    /// Its values are needed (by a callback or a result reference).
    pub(super) keep_values: bool,
    /// It is the producer of a stream.
    pub(super) has_stream_consumers: bool,
    /// `--resume`: its units may keep their earlier records (none of its
    /// dependencies ran anything again).
    pub(super) may_keep: bool,
    /// One of its units ran (or failed to start) in this run, so what
    /// depends on it runs again.
    pub(super) ran: bool,
}

/// Where a task is. A task is in exactly one phase, and only a running
/// task has units, queues or counts.
pub(super) enum TaskPhase {
    /// Waiting for `pending` dependencies to end ok (and, for a stream
    /// consumer, for its producer to start: see [`Producer`]).
    Waiting { pending: u32 },
    /// Started: handing out units, or waiting for the last ones (and its
    /// callback) to end.
    Running(Box<Running>),
    /// Ended, skipped, cancelled or left out: all its records are out.
    Done,
}

/// A stream consumer's producer, as the consumer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Producer {
    /// Not a stream consumer.
    None,
    /// No unit of the producer has started: the consumer waits.
    NotStarted,
    /// Running: its lines come.
    Running,
    /// Ended: no more lines will come.
    Ended { ok: bool },
}

impl TaskState {
    /// What a started task holds, if it has started and not ended.
    pub(super) fn running(&self) -> Option<&Running> {
        match &self.phase {
            TaskPhase::Running(r) => Some(r),
            _ => None,
        }
    }

    /// [`TaskState::running`], to change.
    pub(super) fn running_mut(&mut self) -> Option<&mut Running> {
        match &mut self.phase {
            TaskPhase::Running(r) => Some(r),
            _ => None,
        }
    }

    /// Waiting, with nothing left to wait for: it may start.
    pub(super) fn may_start(&self) -> bool {
        matches!(self.phase, TaskPhase::Waiting { pending: 0 })
            && self.producer != Producer::NotStarted
    }

    /// Its value, `null` until it has one.
    pub(super) fn value(&self) -> Value {
        self.value.as_deref().cloned().unwrap_or(Value::Null)
    }

    pub(super) fn is_waiting(&self) -> bool {
        matches!(self.phase, TaskPhase::Waiting { .. })
    }

    pub(super) fn is_done(&self) -> bool {
        matches!(self.phase, TaskPhase::Done)
    }
}

/// What a running task holds. Every task that can start is running at
/// once (a hundred thousand `[[task]]`s of one pool are all waiting for a
/// worker), so what most of them never need is boxed apart ([`Rare`]) and
/// their own args are read from the job when they hold no result.
pub(super) struct Running {
    /// Where its items come from.
    pub(super) source: Source,
    /// The source has no more items (what is queued still runs).
    pub(super) exhausted: bool,
    /// The index of the next item.
    pub(super) next_index: u64,
    /// Units handed out and not recorded yet.
    pub(super) in_flight: u64,
    /// Records it has made.
    pub(super) records: u64,
    /// One of its own units did not end ok.
    pub(super) failed: bool,
    /// Its units have all ended: whether it ended ok. Then only its
    /// callback may still run.
    pub(super) ended: Option<bool>,
    /// Its callback was handed out and has no record yet.
    pub(super) callback_pending: bool,
    /// The task's own args and kwargs, resolved once when it started, when
    /// they refer to results (which are final then); `None` when they are
    /// the job's values as written. Every item shares them.
    own: Option<Box<Call>>,
    /// Its fingerprint with its shared inputs' contents, taken as it
    /// started (when the results keep fingerprints).
    pub(super) print: Option<Digest>,
    /// What few tasks need, made on first use.
    pub(super) rare: Option<Box<Rare>>,
}

/// A call's args and kwargs.
pub(super) type Call = (Vec<Value>, Map<String, Value>);

/// What a running task needs only for retries, callbacks, values, a first
/// error or `--resume`.
#[derive(Default)]
pub(super) struct Rare {
    /// Its units to run again (retries, and units given back by a lost
    /// worker), ahead of new items.
    pub(super) retry: VecDeque<Unit>,
    /// Its callback units.
    pub(super) extra: VecDeque<Unit>,
    /// The first error, for its error callback.
    pub(super) first_error: Option<String>,
    /// Its items' values, for its value (when they are needed).
    pub(super) values: Vec<Option<Value>>,
    /// `--resume`: the next unit that must run, its items before it kept.
    pub(super) ready_unit: Option<Box<Unit>>,
    /// `--resume`: seqs of units handed out and not yet recorded; kept
    /// records go at most [`KEEP_AHEAD`] past the first of them.
    pub(super) outstanding: BTreeSet<u64>,
}

impl Running {
    /// A task that starts with its items from `source`; `own` is its args
    /// and kwargs resolved, when they refer to results.
    pub(super) fn new(source: Source, own: Option<Call>) -> Running {
        Running {
            source,
            exhausted: false,
            next_index: 0,
            in_flight: 0,
            records: 0,
            failed: false,
            ended: None,
            callback_pending: false,
            own: own.map(Box::new),
            print: None,
            rare: None,
        }
    }

    /// The args and kwargs of a call of the task (`task` is its
    /// definition): of map item `item`, or of its single call.
    pub(super) fn call_for(&self, task: &Task, item: Option<&Value>) -> Call {
        match (item, &self.own) {
            (Some(item), Some(own)) => item_call(item, &own.0, &own.1),
            // Not reached: a map's task keeps its own args.
            (Some(item), None) => {
                let (args, kwargs) = literal_call(task);
                item_call(item, &args, &kwargs)
            }
            (None, Some(own)) => own.as_ref().clone(),
            (None, None) => literal_call(task),
        }
    }

    /// Takes the task's own args and kwargs (for the records of units that
    /// never ran).
    pub(super) fn take_own_call(&mut self, task: &Task) -> Call {
        match self.own.take() {
            Some(own) => *own,
            None => literal_call(task),
        }
    }

    /// What few tasks need, made now if it was not.
    pub(super) fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Default::default)
    }

    pub(super) fn retry_is_empty(&self) -> bool {
        self.rare.as_ref().is_none_or(|r| r.retry.is_empty())
    }

    pub(super) fn extra_is_empty(&self) -> bool {
        self.rare.as_ref().is_none_or(|r| r.extra.is_empty())
    }

    pub(super) fn has_ready_unit(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| r.ready_unit.is_some())
    }

    pub(super) fn first_error(&self) -> Option<String> {
        self.rare.as_ref().and_then(|r| r.first_error.clone())
    }
}

/// A task's args and kwargs when none refers to a result: its values as
/// written.
fn literal_call(task: &Task) -> Call {
    let value = |a: &Arg| match a {
        Arg::Value(v) => v.clone(),
        // Not reached: a task with a result reference keeps its own.
        Arg::Result(_) => Value::Null,
    };
    (
        task.args.iter().map(value).collect(),
        task.kwargs()
            .iter()
            .map(|(k, a)| (k.clone(), value(a)))
            .collect(),
    )
}

/// Whether a task's args or kwargs refer to a result.
pub(super) fn refers_to_results(task: &Task) -> bool {
    let is_result = |a: &Arg| matches!(a, Arg::Result(_));
    task.args.iter().any(is_result) || task.kwargs().iter().any(|(_, a)| is_result(a))
}

/// Durations of a function's units (ms, moving average): a function whose
/// units are quick may have several queued on one worker.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Speed {
    pub(super) finished: u64,
    pub(super) mean_ms: f64,
}

/// Where a worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WorkerState {
    /// Waiting for work.
    Idle,
    /// Running its pool's initializer: it takes nothing else until that ends.
    Initializing,
    /// Running the units it was sent.
    Busy,
    /// Told to cancel what it runs (`terminate`, or a signal); its
    /// deadline kills it if it does not answer in time. It takes no more work.
    Cancelling,
    /// Gone by itself, its exit status not known yet (see
    /// [`super::workers::PendingExit`]): its units wait for it.
    Exiting,
    /// Gone: its slot may take a new worker.
    Dead,
}

impl WorkerState {
    /// Is the engine still talking to it (its connection polled, its
    /// deadline watched)?
    pub(super) fn connected(self) -> bool {
        !matches!(self, WorkerState::Exiting | WorkerState::Dead)
    }
}

pub(super) struct WorkerSlot {
    /// The process the engine controls: the worker itself, or the `srun`
    /// that runs it as a Slurm step.
    pub(super) pid: u32,
    /// The worker's own pid, as it reported it (on a node for Slurm).
    pub(super) reported_pid: u32,
    /// It runs elsewhere (a Slurm step): see [`super::launcher::Started`].
    pub(super) remote: bool,
    /// It sent its `ready` frame.
    pub(super) ready: bool,
    /// The machine it runs on, when that is not the engine's.
    pub(super) host: Option<String>,
    pub(super) pool: PoolId,
    /// Its number in its pool, 1..=processes (`JOBFILE_SLOT`): the lowest
    /// one free when it started, so a replacement takes the number of the
    /// worker it replaces.
    pub(super) number: usize,
    pub(super) conn: Conn,
    pub(super) state: WorkerState,
    /// Units sent and not answered yet, in the order they run.
    pub(super) units: VecDeque<UnitId>,
    /// The running command's process group, when the worker said it in a
    /// `spawned` frame (Slurm steps, or a full group table).
    pub(super) pgid: Option<i32>,
    pub(super) deadline: Option<Instant>,
    pub(super) tasks_run: u64,
    /// Every call it has run was a Python call: at `max_tasks_per_child` it
    /// can take a fresh interpreter instead of being replaced.
    pub(super) python_only: bool,
    /// Reading paused: a stream consumer is behind.
    pub(super) paused: bool,
    /// When the unit at the head of `units` started (wall clock, monotonic).
    pub(super) current: Option<(SystemTime, Instant)>,
}

impl WorkerSlot {
    /// The process group of the command it runs, if any: from its frame,
    /// or from its entry of the group table a local worker shares.
    pub(super) fn command_group(&self) -> Option<i32> {
        self.pgid
            .or_else(|| crate::exec::groups::of_worker(self.pid))
    }
}

/// Which worker ran a unit, for its record.
#[derive(Debug, Clone, Default)]
pub(super) struct RanOn {
    /// The worker's pid, as it reported it.
    pub(super) pid: u32,
    /// The machine, when it is not the engine's.
    pub(super) host: Option<String>,
}

pub(super) struct PoolState {
    pub(super) size: usize,
    pub(super) live: usize,
    pub(super) init_failures: u32,
    /// Slurm workers that ended before they were ready, in a row.
    pub(super) step_failures: u32,
    pub(super) gave_up: Option<String>,
    /// Its tasks that may hand out units, in submission order.
    pub(super) runnable: BTreeSet<TaskId>,
}

/// The engine's workers, by [`WorkerId`].
#[derive(Default)]
pub(super) struct WorkerTable(Vec<WorkerSlot>);

impl WorkerTable {
    /// Every slot's id, dead ones too (the iterator borrows nothing).
    pub(super) fn ids(&self) -> impl Iterator<Item = WorkerId> + use<> {
        (0..self.0.len()).map(WorkerId)
    }

    /// The slots with their ids.
    pub(super) fn iter(&self) -> impl Iterator<Item = (WorkerId, &WorkerSlot)> {
        self.0.iter().enumerate().map(|(i, w)| (WorkerId(i), w))
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut WorkerSlot> {
        self.0.iter_mut()
    }

    /// Puts a new worker in the first dead slot, or a new one.
    pub(super) fn insert(&mut self, slot: WorkerSlot) -> WorkerId {
        match self.0.iter().position(|w| w.state == WorkerState::Dead) {
            Some(i) => {
                self.0[i] = slot;
                WorkerId(i)
            }
            None => {
                self.0.push(slot);
                WorkerId(self.0.len() - 1)
            }
        }
    }
}

impl std::ops::Index<WorkerId> for WorkerTable {
    type Output = WorkerSlot;

    fn index(&self, id: WorkerId) -> &WorkerSlot {
        &self.0[id.0]
    }
}

impl std::ops::IndexMut<WorkerId> for WorkerTable {
    fn index_mut(&mut self, id: WorkerId) -> &mut WorkerSlot {
        &mut self.0[id.0]
    }
}

/// Stream lines buffered per consumer before the producer is held back.
pub(super) const STREAM_HIGH_WATER: usize = 1024;

/// Hashes unit numbers (distinct counters) with one multiplication, which
/// spreads consecutive numbers over the table's high bits.
pub(super) type UnitHasher = std::hash::BuildHasherDefault<UnitNumberHasher>;

/// See [`UnitHasher`].
#[derive(Default)]
pub(super) struct UnitNumberHasher(u64);

impl std::hash::Hasher for UnitNumberHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// How far past the first unit still running kept records are written:
/// those behind it wait in the reorder buffer, so this bounds what waits.
pub(super) const KEEP_AHEAD: u64 = 16_384;

/// How much work, in milliseconds by its function's mean time, is queued
/// on one worker: enough that a worker never waits for the engine's round
/// trip, little enough that the last units of a run are not stuck behind
/// one worker while another is idle.
pub(super) const QUEUE_MS: f64 = 5.0;

/// Units of a quick function queued on one worker, at least and at most.
/// Past a few hundred, a no-op's frames are few and large already; fewer,
/// and the engine makes a write and wakes a worker for every few units.
pub(super) const QUEUE_DEPTH: std::ops::RangeInclusive<usize> = 4..=512;

/// Units of a function taking `mean_ms` queued on one worker: [`QUEUE_MS`]
/// of work, within [`QUEUE_DEPTH`].
pub(super) fn queue_depth(mean_ms: f64) -> usize {
    let (least, most) = (*QUEUE_DEPTH.start(), *QUEUE_DEPTH.end());
    if mean_ms.is_nan() || mean_ms * most as f64 <= QUEUE_MS {
        return most;
    }
    ((QUEUE_MS / mean_ms) as usize).clamp(least, most)
}

/// A task's args with result references replaced by the values they name.
pub(super) fn resolve(tasks: &[TaskState], args: &[Arg]) -> Vec<Value> {
    args.iter().map(|a| resolve_one(tasks, a)).collect()
}

/// [`resolve`] for kwargs.
pub(super) fn resolve_kw(tasks: &[TaskState], kwargs: &[(String, Arg)]) -> Map<String, Value> {
    kwargs
        .iter()
        .map(|(k, a)| (k.clone(), resolve_one(tasks, a)))
        .collect()
}

fn resolve_one(tasks: &[TaskState], a: &Arg) -> Value {
    match a {
        Arg::Value(v) => v.clone(),
        Arg::Result(id) => tasks[id.0].value(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_kinds_read_back_as_written() {
        for kind in [UnitKind::Main, UnitKind::Callback, UnitKind::ErrorCallback] {
            let name = kind.record().name("thumbs");
            assert_eq!(RecordKind::parse(&name), ("thumbs", kind.record()));
        }
        assert_eq!(RecordKind::Callback.name("a"), "a:callback");
        assert_eq!(RecordKind::ErrorCallback.name("a"), "a:error_callback");
        let shared = RecordKind::Shared.name("ignored");
        assert_eq!(shared, "@shared");
        assert_eq!(RecordKind::parse(&shared), ("", RecordKind::Shared));
        // Not a callback: the whole string is the id, which no task has.
        assert_eq!(RecordKind::parse("a:b"), ("a:b", RecordKind::Main));
    }

    #[test]
    fn run_phases_only_move_on() {
        let mut run = RunPhase::Running;
        assert!(!run.stopping());
        run.advance(RunPhase::Terminating);
        assert!(run.stopping() && run.terminating());
        run.advance(RunPhase::Stopping);
        assert_eq!(run, RunPhase::Terminating);
        run.advance(RunPhase::Interrupted);
        assert_eq!(run, RunPhase::Interrupted);
    }

    #[test]
    fn a_worker_holds_a_few_milliseconds_of_quick_units() {
        // No-ops: as many as a queue holds.
        assert_eq!(queue_depth(0.0), 512);
        assert_eq!(queue_depth(0.001), 512);
        assert_eq!(queue_depth(f64::NAN), 512);
        // 5 ms of 50 µs calls; of 0.9 ms calls, the least.
        assert_eq!(queue_depth(0.05), 100);
        assert_eq!(queue_depth(0.9), 5);
        assert_eq!(queue_depth(3.0), 4);
    }
}

#[cfg(test)]
mod size {
    /// A task waiting or done costs its [`super::TaskState`] only.
    #[test]
    fn a_task_is_small() {
        let size = std::mem::size_of::<super::TaskState>();
        assert!(size <= 64, "{size} bytes");
    }

    /// A task that can start but waits for a worker costs its box too:
    /// what few tasks need is boxed apart.
    #[test]
    fn a_running_task_is_small() {
        let size = std::mem::size_of::<super::Running>();
        assert!(size <= 160, "{size} bytes");
    }
}
