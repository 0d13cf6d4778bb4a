//! Sharded sweeps: two shards run in parallel into their own directories and merged give the results of
//! one unsharded sweep (same rows, same values; only wall-clock seconds differ).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn sweep(dir: &Path, out: &str, shard: Option<&str>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fairbits"));
    c.current_dir(dir).args(words(
        "sweep --csv data.csv --target y --sensitive s --gammas 0,1 --seeds 0,1,2 --methods sqnn,mlp --epochs 5 \
         --hidden 8,4 --draws 2 --forest-trees 5 --jobs 1 --quiet --out",
    ));
    c.arg(out);
    if let Some(s) = shard {
        c.args(["--shard", s]);
    }
    c
}

/// `results.csv` without its wall-clock columns, rows sorted.
fn results_without_timing(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len()).filter(|&i| !header[i].contains("seconds")).collect();
    let mut rows: Vec<Vec<String>> = std::iter::once(header.join(","))
        .chain(lines.map(String::from))
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| cells[i].to_string()).collect()
        })
        .collect();
    rows[1..].sort();
    rows
}

#[test]
fn two_shards_merged_equal_one_unsharded_sweep() {
    let (dir, _) = workdir();
    let quiet = |mut c: Command| c.stdout(std::process::Stdio::null()).spawn().unwrap();
    let (mut a, mut b) = (quiet(sweep(dir.path(), "a", Some("1/2"))), quiet(sweep(dir.path(), "b", Some("2/2"))));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let count = |d: &str| std::fs::read_dir(dir.path().join(d).join("runs")).unwrap().count();
    // sqnn at 2 gammas and mlp (gamma 0 only) x 3 seeds = 9 runs: 5 and 4, none in both.
    assert_eq!((count("a"), count("b")), (5, 4));
    let o = fairbits(dir.path(), &["report", "--from", "a", "b", "--merge", "merged", "--out", "R.md"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sweep(dir.path(), "whole", None).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let merged = results_without_timing(&dir.path().join("merged/results.csv"));
    assert_eq!(merged.len(), 10);
    assert_eq!(merged, results_without_timing(&dir.path().join("whole/results.csv")));
    assert!(dir.path().join("merged/summary.csv").exists() && dir.path().join("R.md").exists());
    // A shared directory (Slurm, Kubernetes with one volume) is "merged" into itself: its tables are written.
    let o = fairbits(dir.path(), &["report", "--from", "a", "--merge", "a", "--out", "R4.md"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Merging shards of different sweeps is refused.
    let o = fairbits(dir.path(), &["report", "--from", "a", "whole", "--merge", "m2", "--out", "R2.md"]);
    assert!(o.status.success(), "the whole sweep is the same sweep: {}", stderr(&o));
    let mut other = sweep(dir.path(), "other", Some("1/3"));
    other.args(["--gammas", "0,2"]);
    assert!(other.output().unwrap().status.success());
    let o = fairbits(dir.path(), &["report", "--from", "a", "other", "--merge", "m3", "--out", "R3.md"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a shard of the same sweep"), "{}", stderr(&o));
}

#[test]
fn a_bad_shard_is_refused() {
    let (dir, _) = workdir();
    for bad in ["0/2", "3/2", "1", "a/b", "1/0"] {
        let o = sweep(dir.path(), "x", Some(bad)).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("--shard"), "{}", stderr(&o));
    }
}
