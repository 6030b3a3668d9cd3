//! The end of a run: stopping what still runs, recording what never will,
//! the shared values' record, closing the output.

use std::time::Instant;

use serde_json::{Map, Value};

use super::state::*;
use super::supervisor::{Engine, RunEnd, RunReport};
use crate::exec::process::GRACE;
use crate::plan::item_call;
use crate::report::{Record, RecordKind, Status};
use crate::spec::TaskId;

impl Engine<'_> {
    /// Ends the run: stops workers, records what was stopped, closes output.
    pub(super) fn finish(mut self, end: RunEnd) -> RunReport {
        match end {
            RunEnd::Completed => {
                // Whatever is left was held back by the stop policy.
                for i in 0..self.tasks.len() {
                    if !self.tasks[i].is_done() {
                        self.cancel_rest(TaskId(i));
                    }
                }
            }
            RunEnd::Signalled(_) | RunEnd::OutputLost | RunEnd::PollFailed(_) => {
                self.run.advance(RunPhase::Interrupted);
                for w in self.workers.ids() {
                    if !self.workers[w].units.is_empty() {
                        self.cancel_worker(w);
                    }
                }
                let until = Instant::now() + GRACE;
                while !self.units.is_empty() && Instant::now() < until {
                    if self.poll_once().is_err() {
                        break;
                    }
                }
                self.advance_exits(true);
                for w in self.workers.ids() {
                    if self.workers[w].state != WorkerState::Dead {
                        self.kill_worker(w);
                        if !self.workers[w].units.is_empty() {
                            self.worker_lost(w, Some(Status::Cancelled));
                        }
                    }
                }
            }
        }
        self.advance_exits(true);
        for w in self.workers.ids() {
            if self.workers[w].state != WorkerState::Dead {
                self.retire(w, false);
            }
        }
        self.settle_previous(end);
        if let Some(template) = self.python.take() {
            template.stop();
        }
        self.reap_all();
        if let Some((store, _, _)) = &self.shared {
            let mut r = Record::not_run(
                RecordKind::Shared.name(""),
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
        let (counts, write_error) = self.sink.finish();
        RunReport {
            end,
            counts,
            write_error,
            resumed: self.resumed,
        }
    }

    /// Records `cancelled` for what a stopped run never ran.
    pub(super) fn cancel_rest(&mut self, id: TaskId) {
        let error = "cancelled: the run stopped after a failure";
        // `--resume`: records that stand are kept, not cancelled.
        if self.tasks[id.0].is_waiting() {
            self.start_to_keep(id);
        }
        let may_keep = self.tasks[id.0].may_keep;
        match self.tasks[id.0].phase {
            TaskPhase::Waiting { .. } => {
                let n = self.not_run_records(id, Status::Cancelled, error);
                self.tasks[id.0].phase = TaskPhase::Done;
                self.sink.close(id.0, n);
            }
            TaskPhase::Running(_) => {
                let task = self.job.task(id);
                let function = self.job.function(task.function).name.clone();
                let cancelled =
                    |index: Option<u64>, args: Vec<Value>, kwargs: Map<String, Value>| {
                        let mut r = Record::not_run(
                            task.id.clone(),
                            index,
                            function.clone(),
                            Status::Cancelled,
                            error.into(),
                        );
                        r.args = args;
                        r.kwargs = kwargs;
                        r
                    };
                // Units waiting for a retry (callbacks do not run now).
                let Some(st) = self.tasks[id.0].running_mut() else {
                    return;
                };
                let mut pending: Vec<Unit> = Vec::new();
                if let Some(rare) = st.rare.as_mut() {
                    pending.extend(rare.retry.drain(..));
                    pending.extend(rare.extra.drain(..).filter(|u| u.kind == UnitKind::Main));
                    pending.extend(rare.ready_unit.take().map(|u| *u));
                }
                st.records += pending.len() as u64;
                for u in pending {
                    let mut r = cancelled(u.index, u.args, u.kwargs);
                    r.attempts = u.attempt - 1;
                    self.sink.emit(id.0, u.seq, r);
                }
                // What was never handed out, one item at a time (a map of
                // millions is never held whole).
                let Some(st) = self.tasks[id.0].running_mut() else {
                    return;
                };
                let (args, kwargs) = st.take_own_call(self.job.task(id));
                if matches!(st.source, Source::Single(true)) && !st.exhausted {
                    st.records += 1;
                    let r = match may_keep {
                        true => self.kept_record(id, None, &args, &kwargs, None),
                        false => None,
                    };
                    let r = match r {
                        Some(r) => {
                            self.resumed.kept += 1;
                            r
                        }
                        None => cancelled(None, args.clone(), kwargs.clone()),
                    };
                    self.sink.emit(id.0, 0, r);
                }
                while let Some(st) = self.tasks[id.0].running_mut() {
                    let item = match &mut st.source {
                        _ if st.exhausted => None,
                        Source::Iter(it) => it.next().and_then(Result::ok),
                        Source::Queue(q) => q.pop_front(),
                        _ => None,
                    };
                    let Some(item) = item else { break };
                    let index = st.next_index;
                    st.next_index += 1;
                    st.records += 1;
                    let (a, k) = item_call(&item, &args, &kwargs);
                    let kept = match may_keep {
                        true => self.kept_record(id, Some(index), &a, &k, Some(&item)),
                        false => None,
                    };
                    let r = match kept {
                        Some(r) => {
                            self.resumed.kept += 1;
                            r
                        }
                        None => cancelled(Some(index), a, k),
                    };
                    self.sink.emit(id.0, index, r);
                }
                let n = self.tasks[id.0].running().map_or(0, |st| st.records);
                self.tasks[id.0].phase = TaskPhase::Done;
                self.sink.close(id.0, n);
            }
            TaskPhase::Done => {}
        }
    }
}

pub(super) fn resolved_args(e: &Engine<'_>, id: TaskId) -> Vec<Value> {
    resolve(&e.tasks, &e.job.task(id).args)
}
