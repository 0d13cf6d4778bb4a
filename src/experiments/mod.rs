//! Experiments: grids of trainings (methods or penalties x gammas x seeds, and colour biases for images)
//! run by one runner ([`run_grid`]): in parallel, one model per worker, resumable (each finished run is one
//! JSON file under `runs/`, written atomically), and safe when several processes share the directory
//! (each run is claimed by the process that trains it). Then one summary (mean and std over seeds per
//! cell), `results.csv`, `summary.csv`, plots ([`plots`]) and the Markdown report ([`report`]).
//! [`tabular`] and [`images`] are the two grids: the same runner over different axes. A grid can be split
//! into [`Shard`]s (one per job of a Slurm array or a Kubernetes Indexed Job) and their directories merged
//! ([`merge`]).

pub mod images;
pub(crate) mod plots;
pub mod tabular;

use crate::data::{DataSpec, Prepared};
use crate::error::{Error, Result};
use crate::eval::metrics::mean_std;
use crate::files;
use crate::progress::{Event, Observer};
use crate::schema::Param;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// One run of a grid: its file name under `runs/` (without `.json`), its data, and what to train.
#[derive(Clone, Debug)]
pub struct Run<T> {
    /// Identifier and file stem.
    pub id: String,
    /// The data (runs with equal data share one preparation).
    pub data: DataSpec,
    /// The grid's description of the run.
    pub job: T,
}

/// What a grid run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridOutcome {
    /// Runs in the grid.
    pub total: usize,
    /// Runs found finished and skipped.
    pub skipped: usize,
    /// Runs trained by another process sharing the directory (waited for).
    pub by_others: usize,
}

/// A deterministic share of a grid: run `k` (0-based, in the grid's order) belongs to shard
/// `k mod count + 1`, so every run is in exactly one shard whatever `count`, and shards differ in size by at
/// most one run. Written `INDEX/COUNT`, 1-based (`2/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: usize,
    /// How many.
    pub count: usize,
}

impl Shard {
    /// The whole grid.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// The runs of `runs` this shard owns, in order.
    pub fn select<T>(self, runs: Vec<Run<T>>) -> Vec<Run<T>> {
        runs.into_iter().enumerate().filter(|(k, _)| k % self.count + 1 == self.index).map(|(_, r)| r).collect()
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || Error::param(Param::Shard, text, "must be INDEX/COUNT with 1 <= INDEX <= COUNT, e.g. 2/8");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// The axes of a sweep as given: table methods; image penalties and colour biases (none: the data's);
/// gammas (none: the kind's default) and seeds.
#[derive(Clone, Debug, Default)]
pub struct Axes {
    /// Tables: the methods.
    pub methods: Vec<tabular::Method>,
    /// Images: the penalties.
    pub penalties: Vec<crate::penalty::PenaltySpec>,
    /// Images: the colour biases.
    pub rhos: Vec<f64>,
    /// Penalty weights.
    pub gammas: Option<Vec<f64>>,
    /// Seeds.
    pub seeds: Vec<u64>,
}

/// Runs (or resumes) the sweep of `spec` (a table or images) over `axes`, or its `shard`, into `out`,
/// `jobs` runs at a time, with the other settings from `params`.
pub fn sweep(
    spec: DataSpec,
    axes: Axes,
    params: &crate::estimator::ValidParams,
    out: &Path,
    (jobs, shard): (usize, Shard),
    observer: &dyn Observer,
) -> Result<GridOutcome> {
    Ok(match spec {
        spec @ DataSpec::Table(_) => {
            let cfg = tabular::SweepConfig::new(spec, axes.methods, axes.gammas, axes.seeds, params)?;
            tabular::run(&cfg, out, shard, jobs, observer)?.0
        }
        DataSpec::Images(spec) => {
            let cfg = images::ImageSweepConfig::new(spec, axes.rhos, axes.penalties, axes.gammas, axes.seeds, params)?;
            images::run(&cfg, out, shard, jobs, observer)?.0
        }
    })
}

/// The identifiers of the runs of the sweep of `spec` over `axes`, in grid order (run `k` is shard `k + 1` of
/// `len()`: the Python package's Ray sweep gives each run a task of its own).
pub fn grid_ids(spec: DataSpec, axes: Axes, params: &crate::estimator::ValidParams) -> Result<Vec<String>> {
    Ok(match spec {
        spec @ DataSpec::Table(_) => {
            let cfg = tabular::SweepConfig::new(spec, axes.methods, axes.gammas, axes.seeds, params)?;
            tabular::runs(&cfg).into_iter().map(|r| r.id).collect()
        }
        DataSpec::Images(spec) => {
            let cfg = images::ImageSweepConfig::new(spec, axes.rhos, axes.penalties, axes.gammas, axes.seeds, params)?;
            images::runs(&cfg).into_iter().map(|r| r.id).collect()
        }
    })
}

/// The settings file of each kind of grid.
const SETTINGS: [&str; 2] = ["sweep.json", "image_sweep.json"];

/// Merges the directories of a grid's shards (or of copies of one grid) into `into`: the settings must be
/// the same in all, every finished run is copied (a run finished in two directories must have the same
/// record), then `results.csv`, `summary.csv` and the plots are written for all of them. Returns the number
/// of runs in `into`.
pub fn merge(sources: &[PathBuf], into: &Path) -> Result<usize> {
    let first = sources.first().ok_or_else(|| Error::param(Param::Sources, "none", "no directory to merge"))?;
    let name = SETTINGS.iter().copied().find(|n| first.join(n).exists()).ok_or_else(|| {
        Error::param(Param::Sources, first.display(), "not a sweep directory (no sweep.json or image_sweep.json)")
    })?;
    let settings: serde_json::Value = files::read_json(&first.join(name))?;
    files::create_dir(&into.join("runs"))?;
    let target = into.join(name);
    if target.exists() && files::read_json::<serde_json::Value>(&target)? != settings {
        return Err(Error::param(Param::Merged, into.display(), "the directory holds a sweep with other settings"));
    }
    for dir in sources {
        let other: serde_json::Value = files::read_json(&dir.join(name)).map_err(|_| {
            Error::param(
                Param::Sources,
                dir.display(),
                format!("not a shard of the same sweep as {} (no {name})", first.display()),
            )
        })?;
        if other != settings {
            return Err(Error::param(
                Param::Sources,
                dir.display(),
                format!("its {name} differs from that of {}: not a shard of the same sweep", first.display()),
            ));
        }
        let runs = dir.join("runs");
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&runs)
            .map_err(|source| Error::Io { path: runs.clone(), source })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort();
        for path in entries {
            let bytes = std::fs::read(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
            let dest = into.join("runs").join(path.file_name().unwrap());
            match std::fs::read(&dest) {
                Ok(existing) if existing == bytes => {}
                // Wall-clock seconds differ between two trainings of one run; anything else is a conflict.
                Ok(existing) if same_but_timing(&existing, &bytes) => {}
                Ok(_) => {
                    return Err(Error::param(
                        Param::Sources,
                        path.display(),
                        format!("differs from the same run's record already in {}", dest.display()),
                    ))
                }
                Err(_) => files::write_atomic(&dest, &bytes)?,
            }
        }
    }
    let source = first.join(name);
    files::write_atomic(&target, &std::fs::read(&source).map_err(|e| Error::Io { path: source, source: e })?)?;
    if name == SETTINGS[0] {
        Ok(tabular::finish(into)?.len())
    } else {
        Ok(images::finish(into)?.len())
    }
}

/// Two run records that differ only in their training seconds.
fn same_but_timing(a: &[u8], b: &[u8]) -> bool {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| !k.ends_with("seconds"));
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    match (serde_json::from_slice::<serde_json::Value>(a), serde_json::from_slice::<serde_json::Value>(b)) {
        (Ok(mut a), Ok(mut b)) => {
            strip(&mut a);
            strip(&mut b);
            a == b
        }
        _ => false,
    }
}

/// A `f64` ordered by `total_cmp`, for grid keys.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Key(pub f64);

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Records a grid's settings in `out/name`, or checks that the settings already there are the same (a
/// resumed grid must run the same runs; another grid in the same directory is refused).
pub fn claim_directory<T>(out: &Path, name: &str, cfg: &T) -> Result<()>
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq,
{
    let path = out.join(name);
    if !path.exists() {
        return files::write_json(&path, cfg);
    }
    let different = || {
        Error::param(
            Param::Out,
            out.display(),
            "the directory holds a sweep with other settings; use another directory to start a new sweep",
        )
    };
    let old: T = files::read_json(&path).map_err(|_| different())?;
    if old != *cfg {
        return Err(different());
    }
    Ok(())
}

/// A claim on a run: `runs/ID.claim` holding the claiming process's id, created exclusively. A claim whose
/// process has died (a killed sweep) is taken over.
struct Claim(PathBuf);

impl Claim {
    fn path(runs: &Path, id: &str) -> PathBuf {
        runs.join(format!("{id}.claim"))
    }

    /// Claims `id`, or returns `None` when a live process holds it.
    fn take(runs: &Path, id: &str) -> Result<Option<Claim>> {
        let path = Self::path(runs, id);
        for _ in 0..2 {
            match Self::create(runs, &path, id) {
                Ok(()) => return Ok(Some(Claim(path))),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if Self::holder(&path).is_some_and(files::process_alive) {
                        return Ok(None);
                    }
                    // The holder died (or, on a filesystem without hard links, is still writing its id):
                    // take the claim over.
                    let _ = std::fs::remove_file(&path);
                }
                Err(source) => return Err(Error::Io { path, source }),
            }
        }
        Ok(None)
    }

    /// Creates the claim file `path` holding this process's id, failing with `AlreadyExists` if it exists.
    /// The file appears with the id already in it: written under a name of this take's own, then
    /// hard-linked to `path`. Created empty and written after, a claim seen in between passed for a dead
    /// holder's, and two processes trained the run.
    fn create(runs: &Path, path: &Path, id: &str) -> std::io::Result<()> {
        static TAKES: AtomicUsize = AtomicUsize::new(0);
        let pid = std::process::id();
        let own = runs.join(format!(".{id}.claim.{pid}.{}.tmp", TAKES.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&own, pid.to_string())?;
        let linked = std::fs::hard_link(&own, path);
        let _ = std::fs::remove_file(&own);
        match linked {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                // No hard links here (some network and FUSE filesystems): create, then write.
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
                write!(f, "{pid}")
            }
            linked => linked,
        }
    }

    fn holder(path: &Path) -> Option<u32> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs (or resumes) `runs` into `out/runs/ID.json`, `jobs` at a time: runs sharing data are grouped and
/// the data prepared once per group. Each run is claimed before it starts; runs claimed by another live
/// process are waited for. `f` trains and evaluates one run.
pub fn run_grid<T, R, F>(out: &Path, runs: &[Run<T>], jobs: usize, observer: &dyn Observer, f: F) -> Result<GridOutcome>
where
    T: Sync,
    R: Serialize,
    F: Fn(&T, &Prepared) -> Result<R> + Sync,
{
    let dir = out.join("runs");
    files::create_dir(&dir)?;
    let done = |id: &str| dir.join(format!("{id}.json")).exists();
    let total = runs.len();
    let skipped = runs.iter().filter(|r| done(&r.id)).count();
    if skipped > 0 {
        tracing::info!(skipped, total, "resuming: finished runs are kept");
    }
    let mut groups: Vec<(DataSpec, Vec<&Run<T>>)> = Vec::new();
    for r in runs.iter().filter(|r| !done(&r.id)) {
        match groups.iter_mut().find(|g| g.0 == r.data) {
            Some(g) => g.1.push(r),
            None => groups.push((r.data.clone(), vec![r])),
        }
    }
    let finished = AtomicUsize::new(skipped);
    let report =
        || observer.event(Event::Evaluation { done: finished.load(Ordering::Relaxed), of: total, what: "runs" });
    report();
    let elsewhere: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| Error::param(Param::Jobs, jobs, e.to_string()))?;
    pool.install(|| {
        groups.par_iter().try_for_each(|(spec, group)| -> Result<()> {
            let mut data: Option<Prepared> = None;
            for r in group.iter() {
                // Claims are taken one run at a time, so processes sharing the directory share the work.
                let Some(claim) = Claim::take(&dir, &r.id)? else {
                    elsewhere.lock().unwrap().push(r.id.clone());
                    continue;
                };
                if done(&r.id) {
                    // Finished by another process since this one looked.
                    elsewhere.lock().unwrap().push(r.id.clone());
                    continue;
                }
                if data.is_none() {
                    data = Some(spec.prepare()?);
                }
                let record = f(&r.job, data.as_ref().unwrap())?;
                files::write_json(&dir.join(format!("{}.json", r.id)), &record)?;
                drop(claim);
                finished.fetch_add(1, Ordering::Relaxed);
                report();
            }
            Ok(())
        })
    })?;
    let elsewhere = elsewhere.into_inner().unwrap();
    for id in &elsewhere {
        let claim = Claim::path(&dir, id);
        while !done(id) {
            match Claim::holder(&claim) {
                Some(pid) if files::process_alive(pid) => std::thread::sleep(Duration::from_millis(200)),
                _ if done(id) => break,
                _ => {
                    return Err(Error::param(
                        Param::Out,
                        out.display(),
                        format!(
                            "run {id} was claimed by another process that stopped before finishing it; \
                             run the sweep again to train it"
                        ),
                    ))
                }
            }
        }
        finished.fetch_add(1, Ordering::Relaxed);
        report();
    }
    Ok(GridOutcome { total, skipped, by_others: elsewhere.len() })
}

/// The finished runs of a sweep directory (`dir/runs/*.json`), in file-name order.
pub fn read_runs<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<Vec<T>> {
    let runs = dir.join("runs");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&runs)
        .map_err(|source| Error::Io { path: runs.clone(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths.iter().map(|p| files::read_json(p)).collect()
}

/// A value as flat `key -> text` pairs (`task.auc`, ...): numbers and strings as text, `NaN` for null,
/// arrays of scalars joined by `;`; the keys in `skip` (e.g. per-epoch histories) left out.
pub fn flatten<T: Serialize>(value: &T, skip: &[&str]) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &serde_json::Value, skip: &[&str], out: &mut BTreeMap<String, String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    if !skip.contains(&key.as_str()) {
                        walk(&key, v, skip, out);
                    }
                }
            }
            serde_json::Value::Array(items) => {
                let parts: Vec<String> =
                    items.iter().map(|i| i.as_str().map(String::from).unwrap_or_else(|| i.to_string())).collect();
                out.insert(prefix.to_string(), parts.join(";"));
            }
            serde_json::Value::Null => {
                out.insert(prefix.to_string(), "NaN".into());
            }
            serde_json::Value::String(s) => {
                out.insert(prefix.to_string(), s.clone());
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", &serde_json::to_value(value).unwrap_or_default(), skip, &mut out);
    out
}

/// Mean and sample standard deviation over the runs of one cell, per summarised column.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow<K> {
    /// The cell.
    pub key: K,
    /// Runs averaged.
    pub n: usize,
    /// `(mean, std)` per column (`NaN` where a run lacks the value).
    pub values: Vec<(f64, f64)>,
}

/// Groups flattened runs by their cell `K` (in `K`'s order) and averages `columns` over each cell.
pub fn summarize<K: Ord + Clone>(runs: &[(K, BTreeMap<String, String>)], columns: &[&str]) -> Vec<SummaryRow<K>> {
    let mut cells: BTreeMap<K, Vec<&BTreeMap<String, String>>> = BTreeMap::new();
    for (k, flat) in runs {
        cells.entry(k.clone()).or_default().push(flat);
    }
    cells
        .into_iter()
        .map(|(key, flats)| {
            let values = columns
                .iter()
                .map(|c| {
                    let v: Vec<f64> = flats.iter().filter_map(|f| f.get(*c)?.parse::<f64>().ok()).collect();
                    if v.len() < flats.len() || v.iter().any(|x| x.is_nan()) || v.is_empty() {
                        (f64::NAN, f64::NAN)
                    } else {
                        mean_std(&v)
                    }
                })
                .collect();
            SummaryRow { key, n: flats.len(), values }
        })
        .collect()
}

impl<K> SummaryRow<K> {
    /// The `(mean, std)` of a column of `columns`.
    pub fn get(&self, columns: &[&str], name: &str) -> (f64, f64) {
        self.values[columns.iter().position(|c| *c == name).expect("a summarised column")]
    }
}

/// Writes `out/results.csv`: the key columns of each run, then every flattened metric (sorted by name). A
/// metric named like a key column (`gamma`, `seed`: `metrics.json` records them too) is written as
/// `metrics.NAME`, so that every column name is unique.
pub fn write_results(out: &Path, key_names: &[&str], runs: &[(Vec<String>, BTreeMap<String, String>)]) -> Result<()> {
    let mut columns: Vec<String> = runs.iter().flat_map(|(_, f)| f.keys().cloned()).collect();
    columns.sort();
    columns.dedup();
    let mut header: Vec<String> = key_names.iter().map(|s| s.to_string()).collect();
    header.extend(
        columns.iter().map(|c| if key_names.contains(&c.as_str()) { format!("metrics.{c}") } else { c.clone() }),
    );
    let rows = runs.iter().map(|(key, f)| {
        let mut row = key.clone();
        row.extend(columns.iter().map(|c| f.get(c).cloned().unwrap_or_default()));
        row
    });
    write_csv(&out.join("results.csv"), &header, rows)
}

/// A summary line: the cell's key cells, its run count, and `(mean, std)` per column.
pub type SummaryLine = (Vec<String>, usize, Vec<(f64, f64)>);

/// Writes `out/summary.csv`: the cell's columns, the run count, then `COLUMN.mean`, `COLUMN.std`.
pub fn write_summary(out: &Path, key_names: &[&str], columns: &[&str], rows: &[SummaryLine]) -> Result<()> {
    let mut header: Vec<String> = key_names.iter().map(|s| s.to_string()).collect();
    header.push("n".into());
    for c in columns {
        header.push(format!("{c}.mean"));
        header.push(format!("{c}.std"));
    }
    let lines = rows.iter().map(|(key, n, values)| {
        let mut cells = key.clone();
        cells.push(n.to_string());
        for (m, s) in values {
            cells.push(m.to_string());
            cells.push(s.to_string());
        }
        cells
    });
    write_csv(&out.join("summary.csv"), &header, lines)
}

fn write_csv(path: &Path, header: &[String], rows: impl Iterator<Item = Vec<String>>) -> Result<()> {
    let csv_err = |e: csv::Error| Error::Csv { path: path.display().to_string(), line: 0, message: e.to_string() };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(csv_err)?;
    for row in rows {
        w.write_record(&row).map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| csv_err(e.into_error().into()))?;
    files::write_atomic(path, &bytes)
}

/// `target` relative to the directory `base` (both made absolute first).
pub fn relative(target: &Path, base: &Path) -> PathBuf {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (t, b) = (abs(target), abs(base));
    let tc: Vec<Component> = t.components().collect();
    let bc: Vec<Component> = b.components().collect();
    let common = tc.iter().zip(&bc).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..bc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c);
    }
    out
}

/// `mean ± std` with three decimals, `n/a` when undefined.
pub fn pm((m, s): (f64, f64)) -> String {
    if m.is_nan() {
        "n/a".into()
    } else {
        format!("{m:.3} ± {s:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_exclusive_and_a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let first = Claim::take(dir.path(), "r").unwrap().unwrap();
        // Our own claim counts as alive: a second take fails while it is held.
        assert!(Claim::take(dir.path(), "r").unwrap().is_none());
        drop(first);
        assert!(!Claim::path(dir.path(), "r").exists());
        // A claim left by a process that no longer exists (pid far above the kernel's maximum).
        std::fs::write(Claim::path(dir.path(), "r"), "999999999").unwrap();
        assert!(Claim::take(dir.path(), "r").unwrap().is_some());
    }

    #[test]
    fn simultaneous_takes_of_one_run_give_it_to_exactly_one_taker() {
        // A claim seen before its holder's id is in it must not pass for a dead one (the run would be
        // trained twice): several threads race for one run, many times over.
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..300 {
            let barrier = std::sync::Barrier::new(4);
            let claims: Vec<Option<Claim>> = std::thread::scope(|s| {
                let takers: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            Claim::take(dir.path(), "r").unwrap()
                        })
                    })
                    .collect();
                takers.into_iter().map(|t| t.join().unwrap()).collect()
            });
            assert_eq!(claims.iter().filter(|c| c.is_some()).count(), 1);
        }
        // Only the claim files' names are left behind: none at all once the claims are dropped.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn summary_marks_a_cell_undefined_when_a_run_lacks_the_value() {
        let flat = |v: &str| BTreeMap::from([("a".to_string(), v.to_string())]);
        let rows = summarize(&[(1, flat("1")), (1, flat("3")), (2, flat("NaN")), (2, flat("1"))], &["a"]);
        assert_eq!(rows[0].values[0], (2.0, 2f64.sqrt()));
        assert!(rows[1].values[0].0.is_nan());
    }
}
