//! The server's CPU time and memory, read from /proc for its process and
//! every descendant (multi-process servers are measured whole).

use std::fs;

/// Clock ticks per second of /proc/PID/stat's times: 100 on Linux's every
/// common architecture (`getconf CLK_TCK`).
const TICKS_PER_SECOND: f64 = 100.0;

fn tree(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let mut next = 0;
    while next < pids.len() {
        let parent = pids[next];
        next += 1;
        let Ok(tasks) = fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Ok(children) = fs::read_to_string(task.path().join("children")) {
                pids.extend(
                    children
                        .split_whitespace()
                        .filter_map(|child| child.parse::<u32>().ok()),
                );
            }
        }
    }
    pids
}

/// utime + stime of the tree, in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> u64 {
    tree(pid)
        .into_iter()
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            // The command name may hold spaces: fields are counted after its ')'.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = after.split_whitespace().collect();
            // utime and stime are fields 14 and 15; after ')' the first is field 3.
            let field = |n: usize| {
                fields
                    .get(n - 3)
                    .and_then(|value| value.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            field(14) + field(15)
        })
        .sum()
}

pub(crate) fn ticks_to_us(ticks: u64) -> f64 {
    ticks as f64 * 1_000_000.0 / TICKS_PER_SECOND
}

/// VmRSS of the tree, in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    tree(pid)
        .into_iter()
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .sum()
}
