//! Which process group each local worker's command runs in, in memory the
//! engine shares with its workers, so that a worker need not tell the
//! engine with a frame (which woke the engine once per command).
//!
//! The engine maps the table (`MAP_SHARED | MAP_ANONYMOUS`) before it forks
//! the fork server; every worker inherits it. A worker claims one entry at
//! start. Each command's child, between `clone` and `exec`, writes its own
//! pid, which is its new group's id, into that entry right after `setpgid`;
//! the worker clears it once the command's group is killed. When a worker
//! is lost the engine reads the entry by the worker's pid and kills the
//! group, as it did with the group a `spawned` frame named, so nothing a
//! crashed worker started outlives the run (SPEC section 4).
//!
//! The frame left a window (from `clone` to the frame's write) in which a
//! worker killed left a command the engine could not name; the entry has
//! none. The child writes it before it checks that its worker still lives
//! (the check after `PR_SET_PDEATHSIG`), so either the worker died before
//! that check, and the child ends without running anything, or the entry
//! was written first, and the command's group (the child itself dies of
//! its death signal) is killed by the engine.
//!
//! An entry is one `u64`: the worker's pid in the high half, the group in
//! the low half (0: no command). Workers started another way (`jobfile
//! worker` under Slurm, with no table) or finding the table full send a
//! `spawned` frame as before.

use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// Entries in the table: far more workers than a machine runs at once.
const ENTRIES: usize = 4096;

/// The table, or null when this process has none.
static TABLE: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

/// This worker's entry, plus one; 0 when it has none.
static MINE: AtomicUsize = AtomicUsize::new(0);

fn table() -> Option<&'static [AtomicU64]> {
    let p = TABLE.load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null TABLE points at ENTRIES zero-initialised u64s of
    // a shared mapping made once by `install` and never unmapped; AtomicU64
    // has the layout of u64.
    Some(unsafe { std::slice::from_raw_parts(p, ENTRIES) })
}

/// Maps the table; called by the engine once, before it forks the fork
/// server. Without it (mapping refused) workers send frames instead.
pub(crate) fn install() {
    if !TABLE.load(Ordering::Acquire).is_null() {
        return;
    }
    let len = ENTRIES * std::mem::size_of::<AtomicU64>();
    // SAFETY: a fresh anonymous mapping, touching no existing memory; it
    // is zero-filled and lives as long as the process.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p != libc::MAP_FAILED {
        TABLE.store(p.cast(), Ordering::Release);
    }
}

/// Claims an entry for this worker (pid `me`); `false` when there is no
/// table or no free entry.
pub(crate) fn claim(me: u32) -> bool {
    let Some(t) = table() else {
        return false;
    };
    let owner = u64::from(me) << 32;
    // An entry still under this pid is an earlier worker's, lost without
    // the engine seeing it: it can no longer be anyone's.
    for e in t {
        if e.load(Ordering::Acquire) >> 32 == u64::from(me) {
            e.store(0, Ordering::Release);
        }
    }
    let start = me as usize % ENTRIES;
    for i in (start..ENTRIES).chain(0..start) {
        if t[i]
            .compare_exchange(0, owner, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            MINE.store(i + 1, Ordering::Release);
            return true;
        }
    }
    false
}

/// Gives this worker's entry back (it ends).
pub(crate) fn release() {
    if let (Some(t), i @ 1..) = (table(), MINE.swap(0, Ordering::AcqRel)) {
        t[i - 1].store(0, Ordering::Release);
    }
}

/// Does this worker have an entry, so its commands need no frame?
pub(crate) fn claimed() -> bool {
    table().is_some() && MINE.load(Ordering::Acquire) != 0
}

/// Notes `group` as the running command's (0: none). Also called in the
/// child between `clone` and `exec`: atomic loads and a store only.
pub(crate) fn set(group: i32) {
    let i = MINE.load(Ordering::Acquire);
    let p = TABLE.load(Ordering::Acquire);
    if i == 0 || p.is_null() {
        return;
    }
    // SAFETY: as in `table`; `i - 1 < ENTRIES` since `claim` stored it.
    let e = unsafe { &*p.add(i - 1) };
    let owner = e.load(Ordering::Acquire) & !0xffff_ffff;
    e.store(owner | u64::from(group as u32), Ordering::Release);
}

/// The group of the command worker `pid` runs, if it runs one.
pub(crate) fn of_worker(pid: u32) -> Option<i32> {
    let t = table()?;
    let owner = u64::from(pid);
    t.iter()
        .map(|e| e.load(Ordering::Acquire))
        .find(|&v| v >> 32 == owner)
        .map(|v| (v & 0xffff_ffff) as u32 as i32)
        .filter(|&g| g > 0)
}

/// Frees the entry of worker `pid`, which is gone.
pub(crate) fn forget(pid: u32) {
    let Some(t) = table() else {
        return;
    };
    for e in t {
        let v = e.load(Ordering::Acquire);
        if v >> 32 == u64::from(pid) {
            let _ = e.compare_exchange(v, 0, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}
