//! From a unit's outcome to records: retries, failure policies, the end of
//! a task, its callbacks and what depends on it.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::finish::resolved_args;
use super::state::*;
use super::supervisor::Engine;
use crate::exec::protocol::CallOutcome;
use crate::plan::{EdgeKind, ItemIter, NONE, UnitCall, item_call, unit_outputs};
use crate::report::{Record, Status};
use crate::spec::{MapSource, OnFailure, TaskId};

impl Engine<'_> {
    pub(super) fn on_done(&mut self, w: WorkerId, n: UnitId, outcome: CallOutcome) {
        let Some(flight) = self.units.remove(&n) else {
            return;
        };
        // The next queued unit (if any) starts now: its clock and deadline.
        let next_budget = self.workers[w]
            .units
            .iter()
            .find(|&&u| u != n)
            .and_then(|u| self.units.get(u))
            .and_then(InFlight::unit)
            .and_then(|next| self.budget(next));
        let now = self.now();
        let slot = &mut self.workers[w];
        // Units end in the order they were queued: the answer is the head's.
        if slot.units.front() == Some(&n) {
            slot.units.pop_front();
        } else {
            slot.units.retain(|&u| u != n);
        }
        slot.pgid = None;
        let cancelling = slot.state == WorkerState::Cancelling;
        if slot.units.is_empty() {
            if !cancelling {
                slot.state = WorkerState::Idle;
            }
            slot.deadline = None;
            slot.current = None;
        } else {
            slot.current = Some(now);
            slot.deadline = if cancelling {
                slot.deadline
            } else {
                next_budget.map(|b| now.1 + b)
            };
        }
        let unit = match flight {
            InFlight::Task(unit) => unit,
            InFlight::Initializer => {
                let pool = slot.pool;
                let init = self.job.pools[pool.0].initializer.as_ref();
                slot.python_only &=
                    init.is_some_and(|i| self.job.function(i.function).kind.is_python());
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
        };
        if outcome.unstarted {
            // It never ran: it goes back as it was, ahead of what was
            // queued behind it, and the worker ends.
            let queued: Vec<UnitId> = slot.units.drain(..).collect();
            self.requeue(queued);
            self.uncount_in_flight(unit.task);
            self.give_back(vec![unit]);
            self.retire(w, false);
            return;
        }
        slot.python_only &= self.job.function(unit.function).kind.is_python();
        slot.tasks_run += 1;
        let cancel_rest = cancelling && !slot.units.is_empty();
        // A unit stopped because the run is being terminated is cancelled,
        // whatever the signal did to it.
        let stopped = cancelling && self.run.terminating() && !outcome.ok;
        let status = if outcome.ok {
            Status::Ok
        } else if stopped {
            Status::Cancelled
        } else if outcome.crashed {
            Status::Crashed
        } else if outcome.timed_out {
            Status::Timeout
        } else if outcome.cancelled {
            Status::Cancelled
        } else {
            Status::Failed
        };
        let ran_on = RanOn {
            pid: slot.reported_pid,
            host: slot.host.clone(),
        };
        let limit = self.job.pools[slot.pool.0].max_tasks_per_child;
        if outcome.retire {
            // The worker ends after this answer: what was queued behind
            // it never started.
            let queued: Vec<UnitId> = slot.units.drain(..).collect();
            self.requeue(queued);
            self.retire(w, false);
        } else if limit.is_some_and(|l| slot.tasks_run >= l) && slot.units.is_empty() {
            if slot.python_only {
                self.renew(w);
            } else {
                self.retire(w, false);
            }
        }
        let speed = &mut self.speeds[unit.function.0];
        speed.finished += 1;
        speed.mean_ms += (outcome.duration_ms - speed.mean_ms) / (speed.finished.min(16) as f64);
        self.unit_done(unit, outcome, status, Some(ran_on));
        if cancel_rest && self.run.terminating() {
            // Cancelled while more units were queued on it: they never run.
            self.kill_worker(w);
            self.worker_lost(w, Some(Status::Cancelled));
        }
    }

    /// A unit ended: retry it, or record it. A unit that ended ok but left
    /// one of its `outputs` missing failed.
    pub(super) fn unit_done(
        &mut self,
        mut unit: Unit,
        mut outcome: CallOutcome,
        mut status: Status,
        worker: Option<RanOn>,
    ) {
        let task = self.job.task(unit.task);
        if status == Status::Ok && unit.kind == UnitKind::Main && !task.outputs().is_empty() {
            let call = UnitCall {
                args: &unit.args,
                kwargs: &unit.kwargs,
                item: unit.item.as_ref(),
            };
            match unit_outputs(self.job, task, &call) {
                Ok(d) => unit.outputs = d,
                Err(missing) => {
                    status = Status::Failed;
                    outcome.error = Some(format!(
                        "output `{missing}` is missing: the unit ended ok but did not make it"
                    ));
                }
            }
        }
        let retryable = status.ran_and_failed();
        if retryable
            && unit.kind == UnitKind::Main
            && unit.attempt <= task.retries
            && !self.run.stopping()
        {
            let id = unit.task;
            if let Some(st) = self.tasks[id.0].running_mut() {
                st.in_flight -= 1;
                let mut again = unit;
                again.attempt += 1;
                st.rare().retry.push_back(again);
            }
            self.make_runnable(id);
            return;
        }
        self.record_final(unit, outcome, status, worker);
    }

    pub(super) fn record_final(
        &mut self,
        mut unit: Unit,
        mut outcome: CallOutcome,
        status: Status,
        worker: Option<RanOn>,
    ) {
        let id = unit.task;
        let task = self.job.task(id);
        let function = self.job.function(unit.function);
        let name = unit.kind.record().name(&task.id);
        let error = if status == Status::Ok {
            None
        } else {
            outcome.error.clone().or(Some(status.as_str().to_string()))
        };
        let print = self.unit_print(&unit, &name, status);
        let keep_values = self.tasks[id.0].keep_values;
        // The unit ends here: its args go to the record, and its value too
        // unless the task keeps values for others.
        let value = if keep_values {
            outcome.value.clone()
        } else {
            std::mem::take(&mut outcome.value)
        };
        let record = Record {
            task: name,
            index: unit.index,
            function: function.name.clone(),
            args: std::mem::take(&mut unit.args),
            kwargs: std::mem::take(&mut unit.kwargs),
            status,
            value,
            exit_code: outcome.exit_code,
            signal: outcome.signal,
            error: error.clone(),
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            truncated: outcome.truncated,
            attempts: unit.attempt,
            host: worker.as_ref().and_then(|w| w.host.clone()),
            worker: worker.map(|w| w.pid),
            started: (outcome.started_ms > 0.0)
                .then(|| UNIX_EPOCH + Duration::from_secs_f64(outcome.started_ms / 1000.0)),
            duration_ms: (outcome.started_ms > 0.0).then_some(outcome.duration_ms),
            print,
        };
        let has_callback = task.callback().is_some() || task.error_callback().is_some();
        let Some(st) = self.tasks[id.0].running_mut() else {
            return;
        };
        let last = unit.kind == UnitKind::Main
            && has_callback
            && st.exhausted
            && st.in_flight == 1
            && st.retry_is_empty();
        if last {
            // The task's own records are all known now: the sink puts its
            // callback's record, if one runs, right after this one.
            let own = st.records + 1;
            self.sink.own_records(id.0, own);
        }
        self.sink.emit(id.0, unit.seq, record);
        let task = &mut self.tasks[id.0];
        let value = &mut task.value;
        let TaskPhase::Running(st) = &mut task.phase else {
            return;
        };
        st.in_flight -= 1;
        st.records += 1;
        match unit.kind {
            UnitKind::Main => {
                if let Some(rare) = st.rare.as_mut() {
                    rare.outstanding.remove(&unit.seq);
                }
                if status != Status::Ok {
                    if !st.failed {
                        st.rare().first_error = Some(match unit.index {
                            Some(i) => format!("item {i}: {}", error.unwrap_or_default()),
                            None => error.unwrap_or_default(),
                        });
                    }
                    st.failed = true;
                }
                if keep_values {
                    match unit.index {
                        Some(i) => {
                            let i = i as usize;
                            let values = &mut st.rare().values;
                            if values.len() <= i {
                                values.resize(i + 1, None);
                            }
                            values[i] = Some(outcome.value);
                        }
                        None => *value = Some(Box::new(outcome.value)),
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
        }
    }

    /// Applies the failure policy of the failed task's pool.
    pub(super) fn on_failure(&mut self, id: TaskId) {
        let policy = self.job.pools[self.job.task(id).pool.0].on_failure;
        if policy == OnFailure::Continue || self.run.stopping() {
            return;
        }
        self.run.advance(RunPhase::Stopping);
        if policy == OnFailure::Terminate {
            self.run.advance(RunPhase::Terminating);
            for w in self.workers.ids() {
                if self.workers[w].state == WorkerState::Busy {
                    self.cancel_worker(w);
                }
            }
        }
    }

    /// Has a task ended? Then record what follows from it.
    pub(super) fn check_task_done(&mut self, id: TaskId) {
        let task = &mut self.tasks[id.0];
        let producer_ended = matches!(task.producer, Producer::Ended { .. });
        let Some(st) = task.running_mut() else {
            return;
        };
        if let Source::Queue(q) = &st.source {
            if q.is_empty() && producer_ended {
                st.exhausted = true;
            }
        }
        if !st.exhausted || st.in_flight > 0 || !st.retry_is_empty() || st.has_ready_unit() {
            return;
        }
        if st.ended.is_none() {
            self.task_ended(id);
        }
        let Some(st) = self.tasks[id.0].running() else {
            return;
        };
        if st.ended.is_some() && !st.callback_pending && st.extra_is_empty() {
            let total = st.records;
            let pool = self.job.task(id).pool.0;
            self.pools[pool].runnable.remove(&id);
            // What it held while it ran is freed here.
            self.tasks[id.0].phase = TaskPhase::Done;
            self.sink.close(id.0, total);
        }
    }

    /// All units of a task ended: its value, callbacks and dependents.
    pub(super) fn task_ended(&mut self, id: TaskId) {
        let task = self.job.task(id);
        let state = &mut self.tasks[id.0];
        let producer_failed = state.producer == Producer::Ended { ok: false };
        let keep_values = state.keep_values;
        let value = &mut state.value;
        let TaskPhase::Running(st) = &mut state.phase else {
            return;
        };
        let ok = !st.failed && !producer_failed;
        st.ended = Some(ok);
        if self.run == RunPhase::Interrupted {
            return;
        }
        if keep_values && task.map().is_some() {
            let values = st
                .rare
                .as_mut()
                .map(|r| std::mem::take(&mut r.values))
                .unwrap_or_default();
            *value = Some(Box::new(Value::Array(
                values
                    .into_iter()
                    .map(|v| v.unwrap_or(Value::Null))
                    .collect(),
            )));
        }
        let own_ok = !st.failed;
        let first_error = st.first_error();
        let seq = st.records;
        let callback = if own_ok {
            task.callback().map(|f| (f, UnitKind::Callback))
        } else {
            task.error_callback().map(|f| (f, UnitKind::ErrorCallback))
        };
        if let Some((f, kind)) = callback {
            if !self.run.stopping() || kind == UnitKind::ErrorCallback {
                let arg = if own_ok {
                    self.tasks[id.0].value()
                } else {
                    Value::String(first_error.unwrap_or_default())
                };
                let unit = Unit {
                    task: id,
                    kind,
                    index: None,
                    seq,
                    function: f,
                    args: vec![arg],
                    kwargs: Map::new(),
                    item: None,
                    attempt: 1,
                    inputs: NONE,
                    outputs: NONE,
                };
                // A task that ran nothing again keeps its callback's record.
                if let Some(record) = self.kept_callback(&unit) {
                    if let Some(st) = self.tasks[id.0].running_mut() {
                        st.records += 1;
                    }
                    self.sink.emit(id.0, seq, record);
                } else {
                    if let Some(st) = self.tasks[id.0].running_mut() {
                        st.rare().extra.push_back(unit);
                        st.callback_pending = true;
                    }
                    self.make_runnable(id);
                }
            }
        }
        // Stream consumers of this task: no more lines will come.
        let consumers = self.consumers[id.0].clone();
        for c in consumers {
            let cs = &mut self.tasks[c.0];
            cs.producer = Producer::Ended { ok };
            if cs.running().is_some() {
                self.maybe_retire_task(c);
            }
        }
        self.release_dependents(id, ok);
    }

    pub(super) fn release_dependents(&mut self, id: TaskId, ok: bool) {
        let plan = self.plan;
        for &d in &plan.dependents[id.0] {
            let kind = self.plan.deps[d.0]
                .iter()
                .find(|e| e.on == id)
                .map(|e| e.kind);
            if kind == Some(EdgeKind::Stream) {
                if !ok && self.tasks[d.0].is_waiting() {
                    // The producer ended without starting its consumer.
                    self.skip(d, &self.job.task(id).id.clone());
                }
                continue;
            }
            if ok {
                if let TaskPhase::Waiting { pending } = &mut self.tasks[d.0].phase {
                    *pending = pending.saturating_sub(1);
                }
                self.maybe_start(d);
            } else if self.tasks[d.0].is_waiting() {
                self.skip(d, &self.job.task(id).id.clone());
            }
        }
    }

    /// A task that will never run because `because` did not end ok.
    pub(super) fn skip(&mut self, id: TaskId, because: &str) {
        let error = format!("dependency `{because}` did not end ok");
        let n = self.not_run_records(id, Status::Skipped, &error);
        self.tasks[id.0].phase = TaskPhase::Done;
        self.sink.close(id.0, n);
        self.release_dependents(id, false);
    }

    /// Records for a task that never ran: one per item when the items are
    /// known without running anything, else one without index.
    pub(super) fn not_run_records(&mut self, id: TaskId, status: Status, error: &str) -> u64 {
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
        let static_items = match task.map() {
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
                if task.map().is_none() {
                    r.args = resolved_args(self, id);
                }
                self.sink.emit(id.0, 0, r);
                1
            }
        }
    }
}
