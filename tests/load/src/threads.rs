//! Where the bus's processes spend a document, thread by thread: time on a CPU, time runnable
//! but waiting for a CPU, context switches and minor page faults (a page touched for the first
//! time, or again after the allocator gave it back), read from `/proc` (Linux) before and after
//! a phase of the run. Threads are grouped by kind: their name without its number
//! (`tokio-rt-worker`, `sqlx-sqlite-worker`, `lapin-io-loop`, the broker's `scheduler`...).

use std::collections::BTreeMap;

/// One thread's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub run_ns: u64,
    pub wait_ns: u64,
    pub voluntary: u64,
    pub involuntary: u64,
    pub minor_faults: u64,
}

impl Counters {
    fn since(self, before: Counters) -> Counters {
        Counters {
            run_ns: self.run_ns.saturating_sub(before.run_ns),
            wait_ns: self.wait_ns.saturating_sub(before.wait_ns),
            voluntary: self.voluntary.saturating_sub(before.voluntary),
            involuntary: self.involuntary.saturating_sub(before.involuntary),
            minor_faults: self.minor_faults.saturating_sub(before.minor_faults),
        }
    }

    fn add(&mut self, other: Counters) {
        self.run_ns += other.run_ns;
        self.wait_ns += other.wait_ns;
        self.voluntary += other.voluntary;
        self.involuntary += other.involuntary;
        self.minor_faults += other.minor_faults;
    }

    pub fn switches(&self) -> u64 {
        self.voluntary + self.involuntary
    }
}

/// A process to watch, as `NAME=PID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub name: String,
    pub pid: u32,
}

impl std::str::FromStr for Watched {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, pid) = s
            .split_once('=')
            .ok_or_else(|| format!("{s}: expected NAME=PID"))?;
        let pid = pid
            .parse()
            .map_err(|_| format!("{s}: the PID is not a number"))?;
        Ok(Watched {
            name: name.to_owned(),
            pid,
        })
    }
}

/// Every watched process's threads at one moment: (process, thread id) → (kind, counters).
#[derive(Debug, Clone, Default)]
pub struct Snapshot(BTreeMap<(String, u32), (String, Counters)>);

/// A thread's kind: its name without the number that tells threads of a pool apart.
pub fn kind(comm: &str) -> String {
    let s = comm.trim();
    let s = match s.split_once(['_', '-']) {
        Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => s,
    };
    let s = s.trim_end_matches(|c: char| c.is_ascii_digit());
    let s = s.trim_end_matches(['-', '_']);
    if s.is_empty() { comm.trim() } else { s }.to_owned()
}

/// `schedstat`: nanoseconds on a CPU, nanoseconds waiting on a run queue, time slices.
fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    Some((it.next()?.ok()?, it.next()?.ok()?))
}

/// `stat`: the minor page faults, its tenth field, counted after the name's closing parenthesis
/// (a thread's name may hold spaces and parentheses).
fn parse_minor_faults(text: &str) -> Option<u64> {
    let (_, rest) = text.rsplit_once(')')?;
    rest.split_whitespace().nth(7)?.parse().ok()
}

fn status_field(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .parse()
        .ok()
}

/// Reads every thread of the watched processes; a process or thread gone is left out.
pub fn snapshot(watched: &[Watched]) -> Snapshot {
    let mut out = BTreeMap::new();
    for w in watched {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", w.pid)) else {
            continue;
        };
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<u32>().ok())
            else {
                continue;
            };
            let path = task.path();
            let read = |f: &str| std::fs::read_to_string(path.join(f)).ok();
            let (Some(comm), Some(sched), Some(status), Some(stat)) = (
                read("comm"),
                read("schedstat"),
                read("status"),
                read("stat"),
            ) else {
                continue;
            };
            let Some((run_ns, wait_ns)) = parse_schedstat(&sched) else {
                continue;
            };
            let counters = Counters {
                run_ns,
                wait_ns,
                voluntary: status_field(&status, "voluntary_ctxt_switches").unwrap_or(0),
                involuntary: status_field(&status, "nonvoluntary_ctxt_switches").unwrap_or(0),
                minor_faults: parse_minor_faults(&stat).unwrap_or(0),
            };
            out.insert((w.name.clone(), tid), (kind(&comm), counters));
        }
    }
    Snapshot(out)
}

/// What one kind of thread of one process did between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cost {
    pub process: String,
    pub kind: String,
    /// Threads seen in both snapshots.
    pub threads: usize,
    pub counters: Counters,
}

/// The threads present in both snapshots, grouped by process and kind, busiest first within a
/// process.
pub fn costs(before: &Snapshot, after: &Snapshot) -> Vec<Cost> {
    let mut groups: BTreeMap<(String, String), (usize, Counters)> = BTreeMap::new();
    for (key, (kind, now)) in &after.0 {
        let Some((_, was)) = before.0.get(key) else {
            continue;
        };
        let g = groups.entry((key.0.clone(), kind.clone())).or_default();
        g.0 += 1;
        g.1.add(now.since(*was));
    }
    let mut out: Vec<Cost> = groups
        .into_iter()
        .filter(|(_, (_, c))| c.run_ns > 0 || c.switches() > 0)
        .map(|((process, kind), (threads, counters))| Cost {
            process,
            kind,
            threads,
            counters,
        })
        .collect();
    out.sort_by(|a, b| {
        a.process
            .cmp(&b.process)
            .then(b.counters.run_ns.cmp(&a.counters.run_ns))
    });
    out
}

/// The name the load generator watches itself under: the client's cost, apart from the bus's.
pub const CLIENT: &str = "client";

/// The sum of `costs` for one process (`None`: every process but the [`CLIENT`], that is the
/// bus's processes and the broker).
pub fn total(costs: &[Cost], process: Option<&str>) -> Counters {
    let mut t = Counters::default();
    for c in costs.iter().filter(|c| match process {
        Some(p) => c.process == p,
        None => c.process != CLIENT,
    }) {
        t.add(c.counters);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_drop_the_pool_number() {
        assert_eq!(kind("tokio-rt-worker"), "tokio-rt-worker");
        assert_eq!(kind("sqlx-sqlite-worker-3"), "sqlx-sqlite-worker");
        assert_eq!(kind("1_scheduler"), "scheduler");
        assert_eq!(kind("12_dirty_io_sched"), "dirty_io_sched");
        assert_eq!(kind("lapin-io-loop\n"), "lapin-io-loop");
        assert_eq!(kind("42"), "42");
    }

    #[test]
    fn proc_files_are_read() {
        assert_eq!(parse_schedstat("123456 7890 12\n"), Some((123_456, 7_890)));
        assert_eq!(parse_schedstat("garbage"), None);
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t17\nnonvoluntary_ctxt_switches:\t4\n";
        assert_eq!(status_field(status, "voluntary_ctxt_switches"), Some(17));
        assert_eq!(status_field(status, "nonvoluntary_ctxt_switches"), Some(4));
        assert_eq!("gateway=12".parse::<Watched>().map(|w| w.pid), Ok(12));
        assert!("gateway".parse::<Watched>().is_err());
        let stat = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 9876 0 3 0 12 4 0 0 20 0";
        assert_eq!(parse_minor_faults(stat), Some(9876));
        assert_eq!(parse_minor_faults("4242 (x) S 1 2"), None);
    }

    #[test]
    fn the_client_is_counted_apart_from_the_bus_and_the_broker() {
        let cost = |process: &str, run_ns| Cost {
            process: process.to_owned(),
            kind: "k".to_owned(),
            threads: 1,
            counters: Counters {
                run_ns,
                ..Counters::default()
            },
        };
        let costs = [
            cost("worker", 5),
            cost(crate::report::BROKER, 3),
            cost(CLIENT, 100),
        ];
        assert_eq!(total(&costs, None).run_ns, 8);
        assert_eq!(total(&costs, Some(CLIENT)).run_ns, 100);
        assert_eq!(total(&costs, Some("worker")).run_ns, 5);
    }

    #[test]
    fn only_threads_seen_twice_count_grouped_by_kind() {
        let c = |run_ns, voluntary| Counters {
            run_ns,
            wait_ns: run_ns / 2,
            voluntary,
            involuntary: 1,
            minor_faults: 0,
        };
        let snap = |rows: &[(&str, u32, &str, Counters)]| {
            Snapshot(
                rows.iter()
                    .map(|(p, tid, k, c)| (((*p).to_owned(), *tid), ((*k).to_owned(), *c)))
                    .collect(),
            )
        };
        let before = snap(&[
            ("worker", 1, "tokio-rt-worker", c(100, 10)),
            ("worker", 2, "tokio-rt-worker", c(100, 10)),
            ("worker", 3, "sqlx-sqlite-worker", c(50, 5)),
            ("worker", 4, "gone", c(50, 5)),
        ]);
        let after = snap(&[
            ("worker", 1, "tokio-rt-worker", c(300, 20)),
            ("worker", 2, "tokio-rt-worker", c(200, 15)),
            ("worker", 3, "sqlx-sqlite-worker", c(450, 45)),
            ("worker", 5, "new", c(1_000, 100)),
        ]);
        let got = costs(&before, &after);
        let rows: Vec<(&str, usize, u64, u64)> = got
            .iter()
            .map(|c| {
                (
                    c.kind.as_str(),
                    c.threads,
                    c.counters.run_ns,
                    c.counters.voluntary,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("sqlx-sqlite-worker", 1, 400, 40),
                ("tokio-rt-worker", 2, 300, 15)
            ]
        );
        assert_eq!(total(&got, None).run_ns, 700);
        assert_eq!(total(&got, Some("nobody")), Counters::default());
    }

    #[test]
    fn this_thread_is_read_from_proc() {
        let me = [Watched {
            name: "me".into(),
            pid: std::process::id(),
        }];
        let tid: u32 = std::fs::read_link("/proc/thread-self")
            .expect("/proc/thread-self")
            .file_name()
            .and_then(|n| n.to_str()?.parse().ok())
            .expect("a thread id");
        let before = snapshot(&me);
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        // 16 MiB written for the first time: fresh pages, each a minor fault of this thread.
        let fresh = vec![1u8; 16 << 20];
        std::hint::black_box(&fresh);
        let after = snapshot(&me);
        let key = ("me".to_owned(), tid);
        let (was, now) = (before.0[&key].1, after.0[&key].1);
        assert!(now.run_ns > was.run_ns, "{was:?} {now:?}");
        assert!(
            now.minor_faults >= was.minor_faults + 1_000,
            "4,096 pages touched: {was:?} {now:?}"
        );
    }
}
