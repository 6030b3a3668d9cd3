//! Where the next worker step goes: the allocation's nodes, how many CPUs
//! each one has in it, how many of the pool's workers run there, and which
//! nodes are gone.

/// A node a worker failed to start on this many times in a row (it exited
/// before it said it was ready) gets no more workers.
pub const MAX_FAILED_STARTS: u32 = 2;

/// One node of the allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    name: String,
    /// CPUs of the allocation on this node.
    cpus: usize,
    /// The pool's workers started on it and not ended yet.
    workers: usize,
    /// Left the allocation (down, not responding, or cut off).
    lost: bool,
    /// Workers that ended before they were ready, in a row.
    failed_starts: u32,
}

impl Node {
    fn usable(&self) -> bool {
        !self.lost && self.failed_starts < MAX_FAILED_STARTS
    }
}

/// The nodes of an allocation and the workers on them. Balanced: each new
/// worker goes to the node with the fewest workers (the first in the node
/// list on a tie) among the nodes with a CPU of the allocation free, else
/// among all the nodes left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    nodes: Vec<Node>,
}

impl Placement {
    /// A placement over `layout`: each node's name and its CPUs in the
    /// allocation, in Slurm's order.
    pub fn new(layout: Vec<(String, usize)>) -> Placement {
        Placement {
            nodes: layout
                .into_iter()
                .map(|(name, cpus)| Node {
                    name,
                    cpus,
                    workers: 0,
                    lost: false,
                    failed_starts: 0,
                })
                .collect(),
        }
    }

    /// The node the next worker should start on; `None` when no node is
    /// left that can take one.
    pub fn pick(&self) -> Option<&str> {
        self.nodes
            .iter()
            .filter(|n| n.usable())
            .min_by_key(|n| (n.workers >= n.cpus, n.workers))
            .map(|n| n.name.as_str())
    }

    /// A worker was started on `node`.
    pub fn started(&mut self, node: &str) {
        if let Some(n) = self.node_mut(node) {
            n.workers += 1;
        }
    }

    /// A worker on `node` ended; `ready` says whether it had said it was
    /// ready. A node whose workers keep ending before that (no `jobfile`
    /// there, say) is given up after [`MAX_FAILED_STARTS`]. Returns `true`
    /// when that just happened.
    pub fn ended(&mut self, node: &str, ready: bool) -> bool {
        let Some(n) = self.node_mut(node) else {
            return false;
        };
        n.workers = n.workers.saturating_sub(1);
        if ready {
            n.failed_starts = 0;
            return false;
        }
        n.failed_starts += 1;
        n.failed_starts == MAX_FAILED_STARTS
    }

    /// Marks every node not in `alive` as lost; returns the names of those
    /// that were not lost before.
    pub fn keep_only(&mut self, alive: &[String]) -> Vec<String> {
        let mut newly = Vec::new();
        for n in &mut self.nodes {
            if !n.lost && !alive.contains(&n.name) {
                n.lost = true;
                newly.push(n.name.clone());
            }
        }
        newly
    }

    /// Is `node` lost?
    pub fn is_lost(&self, node: &str) -> bool {
        self.nodes.iter().any(|n| n.name == node && n.lost)
    }

    /// The nodes, lost ones too, in Slurm's order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| n.name.as_str())
    }

    fn node_mut(&mut self, node: &str) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.name == node)
    }
}

/// The nodes of a job and its CPUs on each, from `scontrol -o show job -d
/// J`: its `Nodes=LIST CPU_IDs=IDS` pairs, with each host list expanded by
/// `expand`. Empty when the text has none.
pub fn parse_cpu_layout<E>(
    text: &str,
    mut expand: impl FnMut(&str) -> Result<Vec<String>, E>,
) -> Result<Vec<(String, usize)>, E> {
    let mut layout = Vec::new();
    let words: Vec<&str> = text.split_whitespace().collect();
    for pair in words.windows(2) {
        let (Some(list), Some(ids)) = (
            pair[0].strip_prefix("Nodes="),
            pair[1].strip_prefix("CPU_IDs="),
        ) else {
            continue;
        };
        let cpus = count_ids(ids);
        for name in expand(list)? {
            if !layout.iter().any(|(n, _)| *n == name) {
                layout.push((name, cpus));
            }
        }
    }
    Ok(layout)
}

/// How many ids `0-3,6,8-9` lists (at least 1).
fn count_ids(ids: &str) -> usize {
    ids.split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 1,
            },
            None => 1,
        })
        .sum::<usize>()
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Placement {
        Placement::new(vec![
            ("node1".into(), 2),
            ("node2".into(), 2),
            ("node3".into(), 2),
        ])
    }

    fn place(p: &mut Placement, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let node = p.pick().expect("a node").to_string();
                p.started(&node);
                node
            })
            .collect()
    }

    #[test]
    fn workers_are_spread_evenly() {
        let mut p = three();
        assert_eq!(
            place(&mut p, 6),
            ["node1", "node2", "node3", "node1", "node2", "node3"]
        );
    }

    #[test]
    fn a_node_with_a_free_cpu_comes_first() {
        let mut p = Placement::new(vec![("node1".into(), 3), ("node2".into(), 1)]);
        assert_eq!(place(&mut p, 4), ["node1", "node2", "node1", "node1"]);
        // All CPUs taken: the least loaded node takes one more.
        assert_eq!(place(&mut p, 1), ["node2"]);
    }

    #[test]
    fn replacements_go_to_the_nodes_left() {
        let mut p = three();
        place(&mut p, 6);
        assert_eq!(p.keep_only(&["node1".into(), "node3".into()]), ["node2"]);
        assert!(p.is_lost("node2"));
        assert!(p.keep_only(&["node1".into(), "node3".into()]).is_empty());
        p.ended("node2", true);
        p.ended("node2", true);
        assert_eq!(place(&mut p, 2), ["node1", "node3"]);
    }

    #[test]
    fn a_node_where_workers_cannot_start_is_given_up() {
        let mut p = Placement::new(vec![("node1".into(), 1), ("node2".into(), 1)]);
        place(&mut p, 2);
        assert!(!p.ended("node1", false));
        p.started("node1");
        assert!(p.ended("node1", false));
        assert_eq!(place(&mut p, 2), ["node2", "node2"]);
        assert!(!p.ended("node2", false));
        assert!(p.ended("node2", false));
        assert_eq!(p.pick(), None);
    }

    #[test]
    fn cpu_layout_from_scontrol() {
        let text = "JobId=5 NodeList=node[1-3] NumCPUs=8   Nodes=node1 CPU_IDs=0-3 Mem=0 GRES=   Nodes=node[2-3] CPU_IDs=0,2 Mem=0";
        let layout = parse_cpu_layout(text, |list| {
            Ok::<_, ()>(match list {
                "node[2-3]" => vec!["node2".into(), "node3".into()],
                other => vec![other.to_string()],
            })
        })
        .unwrap();
        assert_eq!(
            layout,
            [
                ("node1".to_string(), 4),
                ("node2".to_string(), 2),
                ("node3".to_string(), 2)
            ]
        );
        assert_eq!(
            parse_cpu_layout("JobId=5", |_| Ok::<_, ()>(vec![])).unwrap(),
            []
        );
    }
}
