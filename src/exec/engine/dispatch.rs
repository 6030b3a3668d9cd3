//! Handing out work: tasks that may start, their next units in submission
//! order, and which worker gets them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::finish::resolved_args;
use super::state::*;
use super::supervisor::Engine;
use crate::exec::invocation::{Setting, add_env, invocation};
use crate::exec::process::GRACE;
use crate::exec::protocol::{Call, CallOutcome, Invocation, RunFrame};
use crate::plan::{ItemIter, NONE, UnitCall, items_of_value, unit_inputs, with_shared_inputs};
use crate::report::{Record, Status};
use crate::spec::{FunctionKind, MapSource, PoolId, TaskId};

impl Engine<'_> {
    /// Starts a waiting task whose dependencies have all ended ok.
    pub(super) fn maybe_start(&mut self, id: TaskId) {
        if !self.tasks[id.0].may_start() {
            return;
        }
        if self.run.stopping() {
            return;
        }
        self.start_task(id);
    }

    /// Starts a task: its items' source, its own args and kwargs.
    pub(super) fn start_task(&mut self, id: TaskId) {
        let task = self.job.task(id);
        let source = match task.map() {
            None => Source::Single(true),
            Some(MapSource::Stream(_)) => Source::Queue(VecDeque::new()),
            Some(MapSource::Result(src)) => {
                let value = self.tasks[src.0].value();
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
        // A map's items share its args: resolved once. A single call's
        // are read from the job when it is handed out, unless they refer
        // to results.
        let own = (task.map().is_some() || refers_to_results(task)).then(|| {
            (
                resolve(&self.tasks, &task.args),
                resolve_kw(&self.tasks, task.kwargs()),
            )
        });
        let print = self
            .opts
            .prints
            .as_ref()
            .and_then(|p| p.get(id.0))
            .map(|p| with_shared_inputs(self.job, task, p));
        let may_keep = self.may_keep(id);
        let mut running = Running::new(source, own);
        running.print = print;
        let st = &mut self.tasks[id.0];
        st.may_keep = may_keep;
        st.phase = TaskPhase::Running(Box::new(running));
        self.make_runnable(id);
    }

    /// Puts a task among its pool's runnable ones. Scheduling repeats until
    /// this stops happening, so a task that becomes runnable while work is
    /// handed out (earlier in the file than where the hand-out is) still
    /// gets a worker in the same round.
    pub(super) fn make_runnable(&mut self, id: TaskId) {
        let pool = self.job.task(id).pool.0;
        self.pools[pool].runnable.insert(id);
        self.runnable_events += 1;
    }

    /// A task that could not even produce its items: one failed record.
    pub(super) fn fail_whole_task(&mut self, id: TaskId, error: String) {
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
        let mut running = Running::new(Source::None, None);
        running.records = 1;
        running.failed = true;
        running.rare().first_error = Some(error);
        running.exhausted = true;
        let st = &mut self.tasks[id.0];
        st.ran = true;
        st.phase = TaskPhase::Running(Box::new(running));
        self.on_failure(id);
        self.check_task_done(id);
    }

    /// The next unit a running task can hand out now.
    pub(super) fn next_unit(&mut self, id: TaskId) -> Option<Unit> {
        let task = &mut self.tasks[id.0];
        let may_keep = task.may_keep;
        let st = task.running_mut()?;
        if !self.run.terminating() {
            if let Some(u) = st.rare.as_mut().and_then(|r| r.extra.pop_front()) {
                return Some(u);
            }
        }
        if self.run.stopping() {
            return None;
        }
        if let Some(u) = st.rare.as_mut().and_then(|r| r.retry.pop_front()) {
            return Some(u);
        }
        if may_keep {
            // The items before it were kept; find the next one to run.
            let rare = st.rare.as_mut()?;
            let unit = *rare.ready_unit.take()?;
            rare.outstanding.insert(unit.seq);
            self.keep_until_run(id);
            return Some(unit);
        }
        if st.exhausted {
            return None;
        }
        let producer_ended = matches!(self.tasks[id.0].producer, Producer::Ended { .. });
        let task = &mut self.tasks[id.0];
        task.ran = true;
        let st = task.running_mut()?;
        let item = match &mut st.source {
            Source::None => None,
            Source::Single(avail) => {
                if !*avail {
                    return None;
                }
                *avail = false;
                st.exhausted = true;
                st.next_index = 1;
                let (args, kwargs) = st.call_for(self.job.task(id), None);
                let unit = self.main_unit(id, None, args, kwargs, None);
                self.use_up_earlier(&unit);
                return Some(unit);
            }
            Source::Iter(it) => match it.next() {
                Some(Ok(v)) => {
                    // Known to be the last: the task can end with its last
                    // unit, without one more round of scheduling.
                    if it.is_drained() {
                        st.exhausted = true;
                    }
                    Some(v)
                }
                Some(Err(e)) => {
                    self.source_broke(id, e.0);
                    return None;
                }
                None => {
                    st.exhausted = true;
                    None
                }
            },
            Source::Queue(q) => {
                let item = q.pop_front();
                if q.is_empty() && producer_ended {
                    st.exhausted = true;
                }
                if q.len() < STREAM_HIGH_WATER / 2 {
                    // Consumers caught up: read the producers again.
                    for w in self.workers.iter_mut() {
                        w.paused = false;
                    }
                }
                item
            }
        };
        let item = item?;
        let st = self.tasks[id.0].running_mut()?;
        let index = st.next_index;
        st.next_index += 1;
        let (args, kwargs) = st.call_for(self.job.task(id), Some(&item));
        let unit = self.main_unit(id, Some(index), args, kwargs, Some(item));
        self.use_up_earlier(&unit);
        Some(unit)
    }

    /// `--resume`, for a unit that runs without looking for its earlier
    /// record (its task may not keep): that record is used up all the same.
    fn use_up_earlier(&mut self, unit: &Unit) {
        if let Some(previous) = self.opts.previous.as_mut() {
            let task = &self.job.task(unit.task).id;
            previous.take(&crate::report::unit_key(task, &unit.args, &unit.kwargs));
        }
    }

    /// A task's source broke midway: what came so far runs, the task
    /// records the error as one more failed item.
    pub(super) fn source_broke(&mut self, id: TaskId, error: String) {
        let task = self.job.task(id);
        self.tasks[id.0].ran = true;
        let Some(st) = self.tasks[id.0].running_mut() else {
            return;
        };
        st.exhausted = true;
        let index = st.next_index;
        st.next_index += 1;
        let mut r = Record::not_run(
            task.id.clone(),
            Some(index),
            self.job.function(task.function).name.clone(),
            Status::Failed,
            error,
        );
        r.attempts = 0;
        st.records += 1;
        st.failed = true;
        self.sink.emit(id.0, index, r);
    }

    /// A unit of the task's own function: a call, or map item `index`.
    /// Its inputs are fingerprinted now, as it is about to start.
    pub(super) fn main_unit(
        &self,
        id: TaskId,
        index: Option<u64>,
        args: Vec<Value>,
        kwargs: serde_json::Map<String, Value>,
        item: Option<Value>,
    ) -> Unit {
        let task = self.job.task(id);
        let inputs = match self.opts.prints {
            Some(_) => unit_inputs(
                self.job,
                task,
                &UnitCall {
                    args: &args,
                    kwargs: &kwargs,
                    item: item.as_ref(),
                },
            ),
            None => NONE,
        };
        Unit {
            task: id,
            kind: UnitKind::Main,
            index,
            seq: index.unwrap_or(0),
            function: task.function,
            args,
            kwargs,
            item,
            attempt: 1,
            inputs,
            outputs: NONE,
        }
    }

    /// Hands out work to idle workers, spawning workers as needed; then,
    /// when the next task's units are quick, queues a few more on busy
    /// workers so they never wait for a round trip to the engine.
    pub(super) fn schedule(&mut self) {
        if self.opts.previous.is_some() {
            let runnable: Vec<TaskId> = self
                .pools
                .iter()
                .flat_map(|p| p.runnable.iter().copied())
                .collect();
            for id in runnable {
                self.advance_kept(id);
            }
        }
        self.schedule_idle();
        for p in (0..self.pools.len()).map(PoolId) {
            loop {
                let head = self.pools[p.0]
                    .runnable
                    .iter()
                    .copied()
                    .find(|&id| self.can_hand_out(id));
                let Some(head) = head else { break };
                if !self.is_quick(head) {
                    break;
                }
                let depth = self.queue_depth(head);
                // Only behind quick units: never behind a slow one (a stream
                // producer, say), which would hold the queued ones back.
                let target = self
                    .workers
                    .iter()
                    .filter(|(_, s)| {
                        s.pool == p
                            && s.state == WorkerState::Busy
                            && s.units.len() < depth
                            // A queue is one chunk of one task, then quick
                            // units only: its head tells whether it is quick.
                            && s.units.front().is_some_and(|u| {
                                self.units
                                    .get(u)
                                    .and_then(InFlight::unit)
                                    .is_some_and(|unit| self.is_quick(unit.task))
                            })
                    })
                    .min_by_key(|(_, s)| s.units.len())
                    .map(|(w, _)| w);
                let Some(w) = target else { break };
                if !self.dispatch(p, w) {
                    break;
                }
            }
        }
    }

    pub(super) fn flush_workers(&mut self) {
        for w in self.workers.iter_mut() {
            if w.conn.wants_write() && w.state.connected() {
                let _ = w.conn.flush();
            }
        }
    }

    /// How long a unit may run before the engine kills its worker: the
    /// timeout for a builtin; for a command, which the worker times out
    /// itself, the timeout plus the grace and a margin.
    pub(super) fn budget(&self, unit: &Unit) -> Option<Duration> {
        let timeout = self.job.task(unit.task).timeout?;
        let backstop = if self.job.function(unit.function).kind.is_builtin() {
            Duration::ZERO
        } else {
            GRACE + Duration::from_secs(3)
        };
        Some(timeout + backstop)
    }

    /// How many units of a quick task a worker may hold.
    pub(super) fn queue_depth(&self, id: TaskId) -> usize {
        queue_depth(self.speeds[self.job.task(id).function.0].mean_ms)
    }

    /// Are this task's units quick enough to queue several on a worker?
    pub(super) fn is_quick(&self, id: TaskId) -> bool {
        let task = self.job.task(id);
        let speed = self.speeds[task.function.0];
        speed.finished >= 2
            && speed.mean_ms < 1.0
            && task.timeout.is_none()
            && self.job.pools[task.pool.0].max_tasks_per_child.is_none()
            && !self.opts.live
            && !self.tasks[id.0].has_stream_consumers
    }

    pub(super) fn schedule_idle(&mut self) {
        for p in (0..self.pools.len()).map(PoolId) {
            loop {
                if self.pools[p.0].runnable.is_empty() {
                    break;
                }
                let idle = self
                    .workers
                    .iter()
                    .find(|(_, w)| w.pool == p && w.state == WorkerState::Idle)
                    .map(|(w, _)| w);
                let worker = match idle {
                    Some(w) => w,
                    None => {
                        if self.pools[p.0].live >= self.pools[p.0].size
                            || self.pools[p.0].gave_up.is_some()
                        {
                            break;
                        }
                        if !self.has_work(p) {
                            break;
                        }
                        match self.spawn_worker(p) {
                            Some(w) => {
                                if self.workers[w].state == WorkerState::Initializing {
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

    pub(super) fn has_work(&self, p: PoolId) -> bool {
        self.pools[p.0]
            .runnable
            .iter()
            .any(|&id| self.can_hand_out(id))
    }

    /// Could [`Engine::next_unit`] give a unit of this task now?
    pub(super) fn can_hand_out(&self, id: TaskId) -> bool {
        let task = &self.tasks[id.0];
        let Some(st) = task.running() else {
            return false;
        };
        (!st.extra_is_empty() && !self.run.terminating())
            || (!st.retry_is_empty() && !self.run.stopping())
            || (st.has_ready_unit() && !self.run.stopping())
            || (!task.may_keep
                && !st.exhausted
                && !self.run.stopping()
                && match &st.source {
                    Source::Queue(q) => {
                        !q.is_empty() || matches!(task.producer, Producer::Ended { .. })
                    }
                    _ => true,
                })
    }

    /// Sends the next units of pool `p` to `worker`; false if none.
    pub(super) fn dispatch(&mut self, p: PoolId, worker: WorkerId) -> bool {
        let mut cursor = TaskId(0);
        while let Some(&id) = self.pools[p.0].runnable.range(cursor..).next() {
            cursor = TaskId(id.0 + 1);
            let mut chunk = self.job.task(id).chunksize().max(1);
            // Each item counts towards max_tasks_per_child: a chunk never
            // takes a worker past its limit.
            if let Some(limit) = self.job.pools[p.0].max_tasks_per_child {
                let slot = &self.workers[worker];
                let used = slot.tasks_run + slot.units.len() as u64;
                chunk = chunk.min(limit.saturating_sub(used).max(1) as usize);
            }
            let mut frame = std::mem::take(&mut self.frame);
            frame.clear();
            let was_idle = self.workers[worker].units.is_empty();
            let mut handed = 0;
            let mut deadline = None;
            while handed < chunk {
                let Some(unit) = self.next_unit(id) else {
                    break;
                };
                match self.make_call(unit, worker, &mut frame) {
                    Some((n, d)) => {
                        deadline = deadline.or(d);
                        self.workers[worker].units.push_back(n);
                        handed += 1;
                    }
                    None => continue,
                }
            }
            self.maybe_retire_task(id);
            if handed == 0 {
                self.frame = frame;
                continue;
            }
            let now = self.now();
            let w = &mut self.workers[worker];
            w.state = WorkerState::Busy;
            w.deadline = match (w.deadline, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if was_idle {
                w.current = Some(now);
            }
            // Sent by `flush_workers` once scheduling is done: one write
            // for everything a worker gets this round.
            w.conn.queue_run(&frame);
            self.frame = frame;
            return true;
        }
        false
    }

    /// Takes a task out of the runnable set once it has nothing more to hand out.
    pub(super) fn maybe_retire_task(&mut self, id: TaskId) {
        let drained = self.tasks[id.0].running().is_none_or(|st| {
            st.exhausted && st.retry_is_empty() && st.extra_is_empty() && !st.has_ready_unit()
        });
        if drained {
            self.pools[self.job.task(id).pool.0].runnable.remove(&id);
        }
        self.check_task_done(id);
    }

    /// Registers a unit as in flight on `worker` and writes its call into
    /// `frame`; a unit whose invocation cannot be built fails at once.
    pub(super) fn make_call(
        &mut self,
        unit: Unit,
        worker: WorkerId,
        frame: &mut RunFrame,
    ) -> Option<(UnitId, Option<Instant>)> {
        let task = self.job.task(unit.task);
        let function = self.job.function(unit.function);
        let forward = self.opts.live
            || (unit.kind == UnitKind::Main && self.tasks[unit.task.0].has_stream_consumers);
        let setting = Setting::of_task(task, function, forward);
        // A builtin runs in the worker with nothing to render: its call is
        // written from the unit itself (the engine, busy with hundreds of
        // thousands of them a second, builds none). Anything else gets its
        // invocation, and which unit it is and which worker of the pool
        // runs it.
        enum Rendered<'a> {
            Builtin(&'a str),
            Invocation(Invocation),
        }
        let rendered = match &function.kind {
            FunctionKind::Builtin(name) => Rendered::Builtin(name),
            _ => match invocation(
                self.job,
                function,
                &unit.args,
                &unit.kwargs,
                unit.item.as_ref(),
                &setting,
            ) {
                Ok(mut inv) => {
                    let id = unit.kind.record().name(&task.id);
                    let mut vars = vec![("JOBFILE_TASK".to_string(), id)];
                    if let Some(i) = unit.index.filter(|_| unit.kind == UnitKind::Main) {
                        vars.push(("JOBFILE_INDEX".to_string(), i.to_string()));
                    }
                    let slot = self.workers[worker].number;
                    vars.push(("JOBFILE_SLOT".to_string(), slot.to_string()));
                    add_env(&mut inv, vars);
                    Rendered::Invocation(inv)
                }
                Err(e) => {
                    let outcome = CallOutcome {
                        error: Some(e),
                        ..CallOutcome::default()
                    };
                    self.count_in_flight(unit.task);
                    self.unit_done(unit, outcome, Status::Failed, None);
                    return None;
                }
            },
        };
        let deadline = self.budget(&unit).map(|b| Instant::now() + b);
        let n = self.next_unit;
        self.next_unit += 1;
        self.count_in_flight(unit.task);
        if unit.kind == UnitKind::Main {
            self.stream_producer_started(unit.task);
        }
        match rendered {
            Rendered::Invocation(invocation) => frame.call(&Call {
                unit: n,
                invocation,
            }),
            Rendered::Builtin(name) => frame.builtin(n, name, &unit.args, &unit.kwargs),
        }
        self.units.insert(UnitId(n), InFlight::Task(unit));
        Some((UnitId(n), deadline))
    }

    pub(super) fn stream_producer_started(&mut self, id: TaskId) {
        let consumers = self.consumers[id.0].clone();
        for c in consumers {
            if self.tasks[c.0].producer == Producer::NotStarted {
                self.tasks[c.0].producer = Producer::Running;
                self.maybe_start(c);
            }
        }
    }

    /// One more unit of `id` is handed out.
    pub(super) fn count_in_flight(&mut self, id: TaskId) {
        if let Some(st) = self.tasks[id.0].running_mut() {
            st.in_flight += 1;
        }
    }

    /// One unit of `id` handed out came back without a record.
    pub(super) fn uncount_in_flight(&mut self, id: TaskId) {
        if let Some(st) = self.tasks[id.0].running_mut() {
            st.in_flight -= 1;
        }
    }
}
