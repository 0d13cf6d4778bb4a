//! Sweeps: a sweep killed midway and restarted finishes without redoing finished runs; the report reads it.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

fn sweep_args() -> Vec<&'static str> {
    words(concat!(
        "sweep --csv data.csv --target y --sensitive s --gammas 0,1,3 --seeds 0,1 ",
        "--methods sqnn,mlp,adversarial,sqnn-joint --epochs 150 --hidden 16,8 --draws 2 ",
        "--forest-trees 10 --mc-samples 100 --jobs 1 --out sweep",
    ))
}

#[test]
fn sweep_killed_midway_resumes_without_redoing_finished_runs() {
    let (dir, _) = workdir();
    let runs = dir.path().join("sweep/runs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fairbits"))
        .current_dir(dir.path())
        .args(sweep_args())
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a few runs are finished, then kill -9.
    let start = Instant::now();
    let count = || {
        std::fs::read_dir(&runs)
            .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "json")).count())
            .unwrap_or(0)
    };
    while count() < 3 {
        assert!(start.elapsed() < Duration::from_secs(120), "no run finished");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the sweep ended before it could be killed: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let finished: Vec<(std::path::PathBuf, SystemTime, Vec<u8>)> = std::fs::read_dir(&runs)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| (p.clone(), std::fs::metadata(&p).unwrap().modified().unwrap(), std::fs::read(&p).unwrap()))
        .collect();
    let total = 3 * 2 * 3 + 2; // sqnn, adversarial, sqnn-joint at 3 gammas, mlp once, 2 seeds
    assert!(finished.len() < total, "the kill came too late to test anything");
    let out = fairbits(dir.path(), &sweep_args());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let expected =
        format!("{total} runs ({} already finished and skipped, 0 trained by another process)", finished.len());
    assert!(text.contains(&expected), "{text}");
    for (p, mtime, bytes) in &finished {
        assert_eq!(std::fs::metadata(p).unwrap().modified().unwrap(), *mtime, "{} was redone", p.display());
        assert_eq!(&std::fs::read(p).unwrap(), bytes);
    }
    assert_eq!(count(), total);
    for f in [
        "results.csv",
        "summary.csv",
        "auc_vs_dp_gap.svg",
        "auc_vs_dp_gap.png",
        "auc_vs_forest_s_auc.svg",
        "auc_vs_joint_mi.png",
    ] {
        assert!(dir.path().join("sweep").join(f).exists(), "{f}");
    }
    let csv = std::fs::read_to_string(dir.path().join("sweep/results.csv")).unwrap();
    assert_eq!(csv.lines().count(), total + 1);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert!(header.contains(&"task.auc"));
    // Every column name is unique: metrics.json's own gamma and seed do not repeat the key columns' names.
    let unique: std::collections::BTreeSet<&str> = header.iter().copied().collect();
    assert_eq!(unique.len(), header.len(), "repeated column names in {header:?}");
    assert_eq!(header[..4], ["method", "gamma", "seed", "hidden"]);
    assert!(header.contains(&"metrics.gamma"), "{header:?}");
    // No temporary file is left behind.
    assert!(std::fs::read_dir(&runs).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")));
    // A different sweep in the same directory is refused.
    let mut other = sweep_args();
    assert_eq!(other[9], "--seeds");
    other[10] = "0,2";
    let o = fairbits(dir.path(), &other);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // The report reads the sweep and answers both questions.
    let o = fairbits(dir.path(), &["report", "--from", "sweep", "--out", "RESULTS.md"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(dir.path().join("RESULTS.md")).unwrap();
    for needle in ["| sqnn | 1 | 2 |", "| mlp | 0 | 2 |", "**Q1", "**Q2", "](sweep/auc_vs_dp_gap.svg)"] {
        assert!(md.contains(needle), "missing {needle} in\n{md}");
    }
}
