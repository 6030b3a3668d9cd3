//! Worker processes: starting them through their pool's launcher (forked
//! or as Slurm steps), stopping them, and what happens to their units when
//! one is lost.

use std::collections::VecDeque;
use std::time::{Duration, Instant, UNIX_EPOCH};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::launcher::{LaunchError, Launcher, Started};
use super::state::*;
use super::supervisor::Engine;
use crate::exec::fork_server::WorkerExit;
use crate::exec::invocation::{Setting, add_env, invocation};
use crate::exec::process::{GRACE, signal_name};
use crate::exec::protocol::{Call, CallOutcome, ToWorker};
use crate::report::Status;
use crate::spec::{PoolId, TaskId};

/// How long a worker that went by itself may take to become a zombie
/// after its socket closed, before its units are recorded without its
/// signal.
const EXIT_WAIT: Duration = Duration::from_millis(500);

/// A lost worker whose exit status is not known yet.
pub(super) struct PendingExit {
    pub(super) worker: WorkerId,
    /// Readable once the process has exited (none before Linux 5.3: the
    /// loop then looks again every few milliseconds).
    pub(super) pidfd: Option<std::os::fd::OwnedFd>,
    pub(super) until: Instant,
}

impl Engine<'_> {
    /// The launcher of `pool`'s workers.
    pub(super) fn launcher(&mut self, pool: PoolId) -> &mut dyn Launcher {
        &mut *self.launchers[self.pool_launcher[pool.0]]
    }

    /// Reads what the pending launchers (Slurm allocations asked for) said:
    /// a granted pool starts workers on the next round; a refused one
    /// gives up.
    pub(super) fn advance_launchers(&mut self) {
        for p in 0..self.job.pools.len() {
            let l = self.pool_launcher[p];
            if self.launchers[l].pending().is_none() {
                continue;
            }
            if let Some(Err(error)) = self.launchers[l].advance() {
                self.pool_gives_up(PoolId(p), error);
            }
        }
    }

    pub(super) fn spawn_worker(&mut self, pool: PoolId) -> Option<WorkerId> {
        let Started { pid, conn, remote } = match self.launcher(pool).spawn() {
            Ok(l) => l,
            Err(LaunchError::Pending) => return None,
            Err(LaunchError::Failed(e)) => {
                self.pool_gives_up(pool, e);
                return None;
            }
        };
        let number = (1..)
            .find(|n| {
                !self
                    .workers
                    .iter()
                    .any(|(_, w)| w.pool == pool && w.number == *n && w.state != WorkerState::Dead)
            })
            .unwrap_or(1);
        let slot = WorkerSlot {
            number,
            pid,
            reported_pid: pid,
            remote,
            ready: false,
            host: None,
            pool,
            conn,
            state: WorkerState::Idle,
            units: VecDeque::new(),
            pgid: None,
            deadline: None,
            tasks_run: 0,
            python_only: true,
            paused: false,
            current: None,
        };
        let w = self.workers.insert(slot);
        self.pools[pool.0].live += 1;
        if let Some((local, remote)) = &self.python_setup {
            let setup = if self.workers[w].remote {
                remote.clone()
            } else {
                local.clone()
            };
            let slot = &mut self.workers[w];
            slot.conn.queue(&ToWorker::Python { setup });
            let _ = slot.conn.flush();
        }
        if !self.start_initializer(w) {
            return None;
        }
        Some(w)
    }

    /// Sends a worker its pool's initializer, when the pool has one, as the
    /// first call of a new worker or of a renewed interpreter; `false` when
    /// the pool gave up.
    pub(super) fn start_initializer(&mut self, w: WorkerId) -> bool {
        let pool = self.workers[w].pool;
        let number = self.workers[w].number;
        let Some(init) = &self.job.pools[pool.0].initializer else {
            return true;
        };
        {
            let function = self.job.function(init.function);
            let setting = Setting::of_function(function);
            let inv = match invocation(self.job, function, &init.args, &init.kwargs, None, &setting)
            {
                Ok(mut inv) => {
                    add_env(&mut inv, [("JOBFILE_SLOT".to_string(), number.to_string())]);
                    inv
                }
                Err(e) => {
                    self.pool_gives_up(pool, format!("the initializer cannot run: {e}"));
                    return false;
                }
            };
            let n = self.next_unit;
            self.next_unit += 1;
            self.units.insert(UnitId(n), InFlight::Initializer);
            let slot = &mut self.workers[w];
            if slot.state != WorkerState::Cancelling {
                slot.state = WorkerState::Initializing;
            }
            slot.units = VecDeque::from([UnitId(n)]);
            slot.conn.queue(&ToWorker::Run {
                calls: vec![Call {
                    unit: n,
                    invocation: inv,
                }],
            });
            let _ = slot.conn.flush();
        }
        true
    }

    /// A worker that has run only Python calls reached
    /// `max_tasks_per_child`: it keeps its process and takes a fresh
    /// interpreter (from the template's spares), which runs the pool's
    /// initializer first, as a new worker's would.
    pub(super) fn renew(&mut self, w: WorkerId) {
        let slot = &mut self.workers[w];
        slot.tasks_run = 0;
        slot.conn.queue(&ToWorker::Renew);
        let _ = slot.conn.flush();
        self.start_initializer(w);
    }

    /// Three failed initializer starts in a row: the pool's tasks fail.
    pub(super) fn pool_gives_up(&mut self, pool: PoolId, error: String) {
        self.pools[pool.0].gave_up = Some(error.clone());
        let ids: Vec<TaskId> = self.pools[pool.0].runnable.iter().copied().collect();
        for id in ids {
            loop {
                let Some(unit) = self.next_unit(id) else {
                    break;
                };
                self.count_in_flight(id);
                let outcome = CallOutcome {
                    error: Some(error.clone()),
                    ..CallOutcome::default()
                };
                self.record_final(unit, outcome, Status::Failed, None);
            }
            self.maybe_retire_task(id);
        }
    }

    /// Stops what a worker runs: cancel frame and TERM to the command's
    /// group now; the deadline kills the worker if it does not answer.
    pub(super) fn cancel_worker(&mut self, w: WorkerId) {
        let slot = &mut self.workers[w];
        slot.conn.queue(&ToWorker::Cancel);
        let _ = slot.conn.flush();
        if let Some(pgid) = slot.command_group() {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
        }
        let initializer = self.job.pools[slot.pool.0]
            .initializer
            .as_ref()
            .map(|i| i.function);
        let builtin = slot.units.iter().any(|u| {
            let function = match self.units.get(u) {
                Some(InFlight::Task(unit)) => Some(unit.function),
                Some(InFlight::Initializer) => initializer,
                None => None,
            };
            function.is_some_and(|f| self.job.function(f).kind.is_builtin())
        });
        let soon = Instant::now()
            + if builtin {
                Duration::ZERO
            } else {
                GRACE + Duration::from_millis(500)
            };
        let slot = &mut self.workers[w];
        slot.deadline = Some(slot.deadline.map_or(soon, |d| d.min(soon)));
        slot.state = WorkerState::Cancelling;
    }

    pub(super) fn kill_worker(&mut self, w: WorkerId) {
        let slot = &self.workers[w];
        if let Some(pgid) = slot.command_group() {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        let (pool, pid) = (slot.pool, slot.pid);
        self.launcher(pool).kill(pid);
    }

    /// A worker is gone (or was killed): its units end as `status`, or as
    /// `crashed` with the worker's signal. A worker that went by itself may
    /// not be reaped yet (its socket closes a moment before it is a
    /// zombie): then its end waits in [`Engine::exits`] for its pidfd, or
    /// for a short deadline, and the loop goes on meanwhile.
    pub(super) fn worker_lost(&mut self, w: WorkerId, status: Option<Status>) {
        let slot = &mut self.workers[w];
        if let Some(pgid) = slot.command_group() {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        slot.conn.close();
        let (pool, pid) = (slot.pool, slot.pid);
        if status.is_some() {
            // Stopped by the engine: how it exits adds nothing to the
            // records; it is reaped later.
            self.retired.push((pool, pid));
            self.end_lost(w, status, None);
            return;
        }
        let exit = self.launcher(pool).try_exit(pid);
        if exit.is_some() {
            self.end_lost(w, None, exit);
            return;
        }
        let pidfd = self.launcher(pool).exit_fd(pid);
        self.workers[w].state = WorkerState::Exiting;
        self.exits.push(PendingExit {
            worker: w,
            pidfd,
            until: Instant::now() + EXIT_WAIT,
        });
    }

    /// Ends the lost workers that have exited (or waited long enough: those
    /// are reaped later, and their units crash without a signal).
    pub(super) fn advance_exits(&mut self, force: bool) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.exits.len() {
            let w = self.exits[i].worker;
            let (pool, pid) = (self.workers[w].pool, self.workers[w].pid);
            let exit = self.launcher(pool).try_exit(pid);
            if exit.is_none() && !force && now < self.exits[i].until {
                i += 1;
                continue;
            }
            self.exits.swap_remove(i);
            if exit.is_none() {
                self.retired.push((pool, pid));
            }
            self.end_lost(w, None, exit);
        }
    }

    /// The rest of [`Engine::worker_lost`], once the exit is known (or
    /// given up on).
    fn end_lost(&mut self, w: WorkerId, status: Option<Status>, exit: Option<WorkerExit>) {
        let ran_on = RanOn {
            pid: self.workers[w].reported_pid,
            host: self.workers[w].host.clone(),
        };
        // A Slurm worker that died before it was ready ran nothing: its
        // units go back to their tasks, and the start counts as failed.
        let never_started = self.workers[w].remote && !self.workers[w].ready && status.is_none();
        let node_lost = self.step_over(w, status.is_none());
        let slot = &mut self.workers[w];
        slot.state = WorkerState::Dead;
        let units: Vec<UnitId> = slot.units.drain(..).collect();
        let pool = slot.pool;
        let began = slot.current.take();
        self.pools[pool.0].live = self.pools[pool.0].live.saturating_sub(1);
        let signal = exit.and_then(|e| e.signal());
        let mut requeue: Vec<Unit> = Vec::new();
        for (pos, n) in units.into_iter().enumerate() {
            let unit = match self.units.remove(&n) {
                None => continue,
                Some(InFlight::Initializer) => {
                    if never_started {
                        // It never ran: the failed start is counted below.
                        continue;
                    }
                    self.pools[pool.0].init_failures += 1;
                    if self.pools[pool.0].init_failures >= 3 {
                        self.pool_gives_up(
                            pool,
                            "the pool's initializer crashed its worker".into(),
                        );
                    }
                    continue;
                }
                Some(InFlight::Task(unit)) => unit,
            };
            if (pos > 0 || never_started) && status != Some(Status::Cancelled) {
                // Queued behind the unit that was running: it never
                // started, so it goes back to its task as it was.
                self.uncount_in_flight(unit.task);
                requeue.push(unit);
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
                        _ if node_lost.is_some() => format!(
                            "the worker died: its node {} was lost",
                            node_lost.as_deref().unwrap_or_default()
                        ),
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
            let outcome = CallOutcome {
                error: Some(error),
                signal: if status == Status::Crashed {
                    signal
                } else {
                    None
                },
                started_ms,
                duration_ms,
                ..CallOutcome::default()
            };
            self.unit_done(unit, outcome, status, Some(ran_on.clone()));
        }
        self.give_back(requeue);
        if never_started {
            self.failed_start(pool, exit);
        }
    }

    /// Units that were queued on a worker but never started go back to
    /// their tasks, by number.
    pub(super) fn requeue(&mut self, numbers: Vec<UnitId>) {
        let mut units = Vec::with_capacity(numbers.len());
        for n in numbers {
            if let Some(InFlight::Task(unit)) = self.units.remove(&n) {
                self.uncount_in_flight(unit.task);
                units.push(unit);
            }
        }
        self.give_back(units);
    }

    /// Units that never started go back to the front of their tasks' queues,
    /// in their order.
    pub(super) fn give_back(&mut self, units: Vec<Unit>) {
        for unit in units.into_iter().rev() {
            let id = unit.task;
            if let Some(st) = self.tasks[id.0].running_mut() {
                match unit.kind {
                    UnitKind::Main => st.rare().retry.push_front(unit),
                    UnitKind::Callback | UnitKind::ErrorCallback => {
                        st.rare().extra.push_front(unit)
                    }
                }
            }
            self.make_runnable(id);
        }
    }

    /// A worker is over (lost when `lost`, else let go): its launcher is
    /// told (a Slurm node has one worker less, and after a loss the
    /// allocation is asked which nodes it still has). The worker's node,
    /// when it is lost.
    fn step_over(&mut self, w: WorkerId, lost: bool) -> Option<String> {
        let slot = &self.workers[w];
        let (pool, pid, ready) = (slot.pool, slot.pid, slot.ready);
        self.launcher(pool).ended(pid, ready, lost)
    }

    /// A remote worker ended before it was ready: the pool gives up once
    /// its launcher says no worker will start.
    fn failed_start(&mut self, pool: PoolId, exit: Option<WorkerExit>) {
        let state = &mut self.pools[pool.0];
        state.step_failures += 1;
        let failures = state.step_failures;
        if let Some(error) = self.launcher(pool).failed_start(failures, exit) {
            self.pool_gives_up(pool, error);
        }
    }

    /// Reaps the retired workers that have exited.
    pub(super) fn reap_retired(&mut self) {
        let (launchers, of_pool) = (&mut self.launchers, &self.pool_launcher);
        self.retired
            .retain(|&(pool, pid)| launchers[of_pool[pool.0]].try_exit(pid).is_none());
    }

    /// At the end: waits briefly for the retired workers, then kills what
    /// is left of them, and reaps whatever else was adopted meanwhile (the
    /// leftovers of a dead worker's commands).
    pub(super) fn reap_all(&mut self) {
        let until = Instant::now() + Duration::from_secs(2);
        while !self.retired.is_empty() && Instant::now() < until {
            self.reap_retired();
            std::thread::sleep(Duration::from_millis(5));
        }
        for (pool, pid) in std::mem::take(&mut self.retired) {
            let launcher = self.launcher(pool);
            launcher.signal(pid, Signal::SIGKILL);
            launcher.wait(pid);
        }
        // Slurm pools first: they reap their steps and release their
        // allocations (and sentinels) before the local launcher kills
        // whatever children are left.
        for launcher in self.launchers.iter_mut().rev() {
            launcher.end();
        }
    }

    /// Closes a worker's socket so it exits (max_tasks_per_child, a failed
    /// initializer); a new worker takes its place when there is work.
    pub(super) fn retire(&mut self, w: WorkerId, kill_it: bool) {
        let (pool, pid) = (self.workers[w].pool, self.workers[w].pid);
        if kill_it {
            self.launcher(pool).signal(pid, Signal::SIGKILL);
        }
        let slot = &mut self.workers[w];
        slot.state = WorkerState::Dead;
        slot.conn.close();
        self.step_over(w, false);
        // It exits on its closed connection: reaped later.
        self.retired.push((pool, pid));
        self.pools[pool.0].live = self.pools[pool.0].live.saturating_sub(1);
    }
}
