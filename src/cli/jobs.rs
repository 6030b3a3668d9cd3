//! `-j N`, `-j 0` and `-j N%`: how many processes the default pool gets.

use nix::unistd::Pid;

/// The value of `-j` / `JOBFILE_JOBS`, before the CPUs are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jobs {
    /// Exactly this many (at least 1).
    Count(usize),
    /// `0`: one per CPU this process may use.
    AllCpus,
    /// `N%`: that share of the CPUs this process may use, rounded down,
    /// at least 1 (`200%` is two per CPU).
    Percent(u32),
}

impl Jobs {
    /// The number of processes, given the CPUs this process may use.
    pub fn processes(self, cpus: usize) -> usize {
        match self {
            Jobs::Count(n) => n,
            Jobs::AllCpus => cpus.max(1),
            Jobs::Percent(p) => (cpus.saturating_mul(p as usize) / 100).max(1),
        }
    }
}

/// Parses `-j`'s value (clap calls it with the raw text).
pub fn parse_jobs(s: &str) -> Result<Jobs, String> {
    let expected = "expected a number of processes (1 or more), 0 for one per CPU, or a share of the CPUs such as 50%";
    let s = s.trim();
    if let Some(p) = s.strip_suffix('%') {
        return match p.parse::<u32>() {
            Ok(0) => Err(format!("a share of 0% runs nothing; {expected}")),
            Ok(p) => Ok(Jobs::Percent(p)),
            Err(_) => Err(expected.to_string()),
        };
    }
    match s.parse::<usize>() {
        Ok(0) => Ok(Jobs::AllCpus),
        Ok(n) if n <= 1 << 20 => Ok(Jobs::Count(n)),
        Ok(_) => Err(format!("too many processes; {expected}")),
        Err(_) => Err(expected.to_string()),
    }
}

/// The CPUs this process may run on (its affinity mask), at least 1.
pub fn usable_cpus() -> usize {
    nix::sched::sched_getaffinity(Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_zero_and_shares() {
        assert_eq!(parse_jobs("3"), Ok(Jobs::Count(3)));
        assert_eq!(parse_jobs("0"), Ok(Jobs::AllCpus));
        assert_eq!(parse_jobs("50%"), Ok(Jobs::Percent(50)));
        for bad in ["", "-1", "x", "1.5", "0%", "%", "-5%", "99999999999"] {
            assert!(parse_jobs(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Jobs::AllCpus.processes(6), 6);
        assert_eq!(Jobs::Percent(50).processes(6), 3);
        assert_eq!(Jobs::Percent(50).processes(1), 1);
        assert_eq!(Jobs::Percent(10).processes(2), 1);
        assert_eq!(Jobs::Percent(200).processes(2), 4);
        assert_eq!(Jobs::Count(7).processes(2), 7);
    }
}
