//! Running the short Slurm commands (`squeue`, `scancel`, `scontrol`,
//! `sinfo`) and what can go wrong with them.

use std::io;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

/// How long [`crate::exec::slurm::Allocation::release`] waits for the job
/// to leave `squeue`.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an allocation could not be had or given back.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// A Slurm tool is not on `PATH`.
    #[error(
        "{program} not found: is Slurm installed? `{program}` must be on PATH (and SLURM_CONF set if the configuration is not in /etc/slurm)"
    )]
    NotFound { program: &'static str },
    /// A Slurm tool could not be started or talked to.
    #[error("could not run {program}: {source}")]
    Io {
        program: &'static str,
        #[source]
        source: io::Error,
    },
    /// `salloc` ended without granting an allocation.
    #[error("salloc refused the allocation ({status}): {message}")]
    Refused { status: ExitStatus, message: String },
    /// The partition has fewer nodes than the pool asks for.
    #[error(
        "the pool asks for {wanted} nodes (`nodes`) but partition `{partition}` has {has}; Slurm would keep the request pending for ever"
    )]
    TooFewNodes {
        partition: String,
        wanted: u32,
        has: u32,
    },
    /// No allocation was granted in time; a pending request was cancelled.
    #[error("no Slurm allocation within {waited:?} (salloc said: {message})")]
    TimedOut { waited: Duration, message: String },
    /// A Slurm query (`squeue`, `scontrol`, `sinfo`) failed.
    #[error("{program} failed ({status}): {message}")]
    Failed {
        program: &'static str,
        status: ExitStatus,
        message: String,
    },
    /// `scancel` failed.
    #[error("scancel {target} failed: {message}")]
    Cancel { target: String, message: String },
    /// No step of this allocation has the name a step was started with.
    #[error("no step named {name} in job {job_id} (it has ended, or not started yet)")]
    NoSuchStep { job_id: u32, name: String },
    /// The job was still listed by `squeue` after it was cancelled.
    #[error("job {job_id} still listed by squeue {waited:?} after scancel")]
    StillListed { job_id: u32, waited: Duration },
}

pub(super) fn spawn_error(program: &'static str, e: io::Error) -> SlurmError {
    match e.kind() {
        io::ErrorKind::NotFound => SlurmError::NotFound { program },
        _ => SlurmError::Io { program, source: e },
    }
}

/// Runs a short Slurm query or command and returns its stdout.
pub(super) fn run_tool(program: &'static str, args: &[&str]) -> Result<String, SlurmError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(program, e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(SlurmError::Failed {
            program,
            status: out.status,
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

pub(super) fn squeue(args: &[&str]) -> Result<String, SlurmError> {
    run_tool("squeue", args)
}

pub(super) fn scancel(target: &str) -> Result<(), SlurmError> {
    run_tool("scancel", &[target])
        .map(drop)
        .map_err(|e| match e {
            SlurmError::Failed { message, .. } => SlurmError::Cancel {
                target: target.to_owned(),
                message,
            },
            other => other,
        })
}

/// The host names a Slurm host list (`node[1-3],gpu7`) stands for.
pub(super) fn hostnames(list: &str) -> Result<Vec<String>, SlurmError> {
    if !list.contains('[') {
        return Ok(list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect());
    }
    Ok(run_tool("scontrol", &["show", "hostnames", list])?
        .lines()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

/// How many nodes partition `partition` has (Slurm's default partition
/// when `None`), in any state; `None` when `sinfo` does not know it (then
/// `salloc` says what is wrong).
pub(super) fn partition_nodes(
    partition: Option<&str>,
) -> Result<Option<(String, u32)>, SlurmError> {
    let out = run_tool("sinfo", &["-h", "-o", "%P %D"])?;
    let mut found: Option<(String, u32)> = None;
    for line in out.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(count)) = (parts.next(), parts.next()) else {
            continue;
        };
        let is_default = name.ends_with('*');
        let name = name.trim_end_matches('*');
        let wanted = match partition {
            Some(p) => p == name,
            None => is_default,
        };
        if !wanted {
            continue;
        }
        let count: u32 = count.parse().unwrap_or(0);
        match &mut found {
            Some((_, n)) => *n += count,
            None => found = Some((name.to_owned(), count)),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_host_lists_need_no_scontrol() {
        assert_eq!(hostnames("node1,node2").unwrap(), ["node1", "node2"]);
        assert_eq!(hostnames("node4").unwrap(), ["node4"]);
    }

    #[test]
    fn missing_tools_say_so() {
        let e = spawn_error("salloc", io::Error::from(io::ErrorKind::NotFound));
        assert!(
            e.to_string()
                .starts_with("salloc not found: is Slurm installed?"),
            "{e}"
        );
    }
}
