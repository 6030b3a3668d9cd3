//! `--resume` in the engine: which units keep their earlier records.
//!
//! A unit keeps its earlier record when its task may keep (none of the
//! tasks it depends on ran anything again, and it feeds no stream), the
//! earlier record found by its key (task id, args, kwargs; the n-th unit
//! with one key takes the n-th record with it) was `ok`, and its state
//! (task fingerprint, its inputs' and its outputs' contents now) is the
//! one that record was written with. A kept record is read back from the
//! earlier results file and written again in its place; anything that
//! cannot be shown unchanged runs.
//!
//! Every record of a run with a results file carries its print, so the
//! next `--resume` can do the same.

use serde_json::{Map, Value};

use super::state::*;
use super::supervisor::{Engine, RunEnd};
use crate::plan::{NONE, UnitCall, unit_outputs, unit_state};
use crate::report::{Record, Status, UnitPrint, unit_key};
use crate::spec::TaskId;

impl Engine<'_> {
    /// May the units of this task, about to start, keep earlier records?
    pub(super) fn may_keep(&self, id: TaskId) -> bool {
        // A stream producer's items are what it prints as it runs, so it
        // and its consumers always run.
        self.opts.previous.is_some()
            && self.opts.prints.is_some()
            && self.job.task(id).stream_source().is_none()
            && !self.tasks[id.0].has_stream_consumers
            && self.plan.deps[id.0].iter().all(|e| !self.tasks[e.on.0].ran)
    }

    /// Keeps the earlier records of the task's next units, in item order,
    /// up to the next unit that must run (then its [`TaskState::ready_unit`]).
    pub(super) fn advance_kept(&mut self, id: TaskId) {
        self.keep_until_run(id);
        self.maybe_retire_task(id);
    }

    /// [`Engine::advance_kept`] without ending the task: for
    /// [`Engine::next_unit`], whose unit is not in flight yet.
    pub(super) fn keep_until_run(&mut self, id: TaskId) {
        loop {
            let task = &mut self.tasks[id.0];
            if !task.may_keep {
                break;
            }
            let Some(st) = task.running_mut() else {
                break;
            };
            if st.has_ready_unit() || st.exhausted {
                break;
            }
            if let Some(&first) = st.rare.as_ref().and_then(|r| r.outstanding.first()) {
                if st.next_index.saturating_sub(first) >= KEEP_AHEAD {
                    return;
                }
            }
            let (index, item) = match &mut st.source {
                Source::Single(avail) if *avail => {
                    *avail = false;
                    st.exhausted = true;
                    st.next_index = 1;
                    (None, None)
                }
                Source::Iter(it) => match it.next() {
                    Some(Ok(v)) => {
                        if it.is_drained() {
                            st.exhausted = true;
                        }
                        let i = st.next_index;
                        st.next_index += 1;
                        (Some(i), Some(v))
                    }
                    Some(Err(e)) => {
                        self.source_broke(id, e.0);
                        break;
                    }
                    None => {
                        st.exhausted = true;
                        break;
                    }
                },
                _ => {
                    st.exhausted = true;
                    break;
                }
            };
            let (args, kwargs) = st.call_for(self.job.task(id), item.as_ref());
            match self.kept_record(id, index, &args, &kwargs, item.as_ref()) {
                Some(record) => self.keep(id, index, record),
                None => {
                    let unit = self.main_unit(id, index, args, kwargs, item);
                    let task = &mut self.tasks[id.0];
                    task.ran = true;
                    if let Some(st) = task.running_mut() {
                        st.rare().ready_unit = Some(Box::new(unit));
                    }
                }
            }
        }
    }

    /// Writes a kept record in its place and takes its value.
    fn keep(&mut self, id: TaskId, index: Option<u64>, record: Record) {
        self.resumed.kept += 1;
        let task = &mut self.tasks[id.0];
        let keep_values = task.keep_values;
        let value = &mut task.value;
        if let TaskPhase::Running(st) = &mut task.phase {
            st.records += 1;
            if keep_values {
                match index {
                    Some(i) => {
                        let i = i as usize;
                        let values = &mut st.rare().values;
                        if values.len() <= i {
                            values.resize(i + 1, None);
                        }
                        values[i] = Some(record.value.clone());
                    }
                    None => *value = Some(Box::new(record.value.clone())),
                }
            }
        }
        self.sink.emit(id.0, index.unwrap_or(0), record);
    }

    /// The earlier record of a unit of `id`'s own function, if it stands.
    pub(super) fn kept_record(
        &mut self,
        id: TaskId,
        index: Option<u64>,
        args: &[Value],
        kwargs: &Map<String, Value>,
        item: Option<&Value>,
    ) -> Option<Record> {
        let task = self.job.task(id);
        let key = unit_key(&task.id, args, kwargs);
        let task_print = self.tasks.get(id.0)?.running()?.print?;
        let earlier = self.opts.previous.as_mut()?.take(&key)?;
        if !earlier.ok() {
            return None;
        }
        let call = UnitCall { args, kwargs, item };
        let inputs = crate::plan::unit_inputs(self.job, task, &call);
        let outputs = unit_outputs(self.job, task, &call).ok()?;
        let state = unit_state(&task_print, &inputs, &outputs);
        if state != earlier.print().state {
            return None;
        }
        let mut record = self.opts.previous.as_mut()?.read(&earlier)?;
        if record.task != task.id {
            return None;
        }
        record.index = index;
        record.print = Some(UnitPrint { key, state });
        Some(record)
    }

    /// The earlier record of a task's callback, when the task ran nothing
    /// again and the callback's record stands.
    pub(super) fn kept_callback(&mut self, unit: &Unit) -> Option<Record> {
        let st = &self.tasks[unit.task.0];
        // Taken even when it cannot stand: it is this callback's.
        let may_keep = st.may_keep && !st.ran;
        let task_print = st.running()?.print?;
        let name = self.record_name(unit);
        let key = unit_key(&name, &unit.args, &unit.kwargs);
        let previous = self.opts.previous.as_mut()?;
        let earlier = previous.take(&key)?;
        let state = unit_state(&task_print, &NONE, &NONE);
        if !may_keep || !earlier.ok() || earlier.print().state != state {
            return None;
        }
        let mut record = previous.read(&earlier)?;
        if record.task != name {
            return None;
        }
        record.print = Some(UnitPrint { key, state });
        self.resumed.kept += 1;
        Some(record)
    }

    /// The task id a unit's record carries.
    pub(super) fn record_name(&self, unit: &Unit) -> String {
        unit.kind.record().name(&self.job.task(unit.task).id)
    }

    /// The print a finished unit's record carries, when results are kept
    /// for `--resume`.
    pub(super) fn unit_print(&self, unit: &Unit, name: &str, status: Status) -> Option<UnitPrint> {
        let task_print = self.tasks.get(unit.task.0)?.running()?.print?;
        let key = unit_key(name, &unit.args, &unit.kwargs);
        let state = if status == Status::Ok {
            unit_state(&task_print, &unit.inputs, &unit.outputs)
        } else {
            NONE
        };
        Some(UnitPrint { key, state })
    }

    /// After the run: the earlier records no unit took. An interrupted run
    /// writes those of tasks the job still has after its own records, so
    /// nothing that was ok is lost; a finished run leaves them out (their
    /// items are gone).
    pub(super) fn settle_previous(&mut self, end: RunEnd) {
        let Some(previous) = self.opts.previous.as_mut() else {
            return;
        };
        let rest = previous.untaken();
        let interrupted = end != RunEnd::Completed;
        // Tasks that could not keep (they started so, or depend on a task
        // that ran again or could not keep): their earlier records are
        // carried, but no longer stand. A task's own reruns do not touch
        // its other items.
        let mut tainted: Vec<bool> = self
            .tasks
            .iter()
            .map(|t| !t.is_waiting() && !t.may_keep)
            .collect();
        loop {
            let mut changed = false;
            for (i, deps) in self.plan.deps.iter().enumerate() {
                let bad = |d: usize| tainted[d] || self.tasks[d].ran;
                if !tainted[i] && deps.iter().any(|e| bad(e.on.0)) {
                    tainted[i] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut carried = Vec::new();
        let mut dropped = 0;
        for entry in rest {
            let ok = entry.flags & crate::report::PRINT_OK != 0;
            let record = match (interrupted && ok).then(|| previous.read_entry(&entry)) {
                Some(Some(r)) => r,
                _ => {
                    dropped += 1;
                    continue;
                }
            };
            let (base, _) = record.kind();
            match self.job.task_named(base) {
                Some(t) => {
                    let mut record = record;
                    if tainted[t.0] {
                        if let Some(p) = &mut record.print {
                            p.state = NONE;
                        }
                    }
                    carried.push(record);
                }
                None => dropped += 1,
            }
        }
        self.resumed.unreadable = previous.unreadable;
        self.resumed.dropped = dropped;
        self.resumed.carried = carried.len() as u64;
        for r in carried {
            self.sink.append(r);
        }
    }

    /// `--resume` after a stop: a waiting task whose earlier records stand
    /// keeps them instead of being cancelled. True when it was started so.
    pub(super) fn start_to_keep(&mut self, id: TaskId) -> bool {
        if !self.tasks[id.0].may_start() || !self.may_keep(id) {
            return false;
        }
        self.start_task(id);
        self.tasks[id.0].running().is_some() && self.tasks[id.0].may_keep
    }
}
