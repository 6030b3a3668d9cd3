//! How many records ended in each status, indexed by the status itself.

use std::ops::{Index, IndexMut};

use super::Status;

/// A number for each [`Status`]: `counts[Status::Failed]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts([u64; STATUSES.len()]);

impl Counts {
    /// Each status with its count, in the order of [`STATUSES`].
    pub fn iter(&self) -> impl Iterator<Item = (Status, u64)> + '_ {
        STATUSES.into_iter().zip(self.0)
    }

    /// Records that are not `ok`.
    pub fn not_ok(&self) -> u64 {
        self.iter()
            .filter(|(s, _)| *s != Status::Ok)
            .map(|(_, n)| n)
            .sum()
    }

    /// Records of every status.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// Every status, in the order summaries list them.
pub const STATUSES: [Status; 6] = [
    Status::Ok,
    Status::Failed,
    Status::Timeout,
    Status::Crashed,
    Status::Skipped,
    Status::Cancelled,
];

fn slot(s: Status) -> usize {
    match s {
        Status::Ok => 0,
        Status::Failed => 1,
        Status::Timeout => 2,
        Status::Crashed => 3,
        Status::Skipped => 4,
        Status::Cancelled => 5,
    }
}

impl Index<Status> for Counts {
    type Output = u64;

    fn index(&self, s: Status) -> &u64 {
        &self.0[slot(s)]
    }
}

impl IndexMut<Status> for Counts {
    fn index_mut(&mut self, s: Status) -> &mut u64 {
        &mut self.0[slot(s)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_by_status_in_their_order() {
        let mut c = Counts::default();
        c[Status::Failed] += 2;
        c[Status::Ok] += 1;
        c[Status::Cancelled] += 1;
        assert_eq!(c[Status::Failed], 2);
        assert_eq!((c.total(), c.not_ok()), (4, 3));
        for (i, (s, _)) in c.iter().enumerate() {
            assert_eq!(slot(s), i, "{s:?}");
        }
    }
}
