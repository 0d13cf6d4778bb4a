//! Tables larger than memory (`--stream`, or chosen by the memory estimate): a CSV, Parquet or Arrow IPC
//! file is read in batches, four times, and never held whole. Pass 1 finds the rows with a missing used cell, the target and group of every other
//! row, and how many cells of each feature are numbers; the splits follow. Pass 2 sums the numeric
//! features and collects the categories of the text ones over the training rows, pass 3 the numeric
//! features' squared deviations; pass 4 encodes every kept row into the binary cache file of its split
//! ([`super::cache`]), which training then reads through a memory map. Every rule and every sum runs in the
//! order of the in-memory path ([`super::tabular::prepare_table`]), so the encoders, the splits and hence the
//! metrics are byte-identical to it (`tests/columnar.rs`); what is not computed is the warning about an
//! identifier-like column.

use super::cache::{CacheWriter, Floats};
use super::columnar::{self, Format};
use super::encoding::{ColumnEncoder, Encoding, Place, SensitiveEncoding, TargetEncoding};
use super::table::Duplicates;
use super::table::{Column, RawTable};
use super::tabular::{check_group_sizes, file_roles, Missing, Roles, Source, TableSpec};
use super::{split, Dataset, Prepared, MAX_CATEGORIES};
use crate::error::{Error, Result};
use crate::schema::Param;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Which split a kept row went to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Train,
    Val,
    Test,
    Certify,
}

/// Distinct text values, numbered in order of appearance.
#[derive(Default)]
struct Values {
    index: HashMap<String, u32>,
    names: Vec<String>,
}

impl Values {
    fn id(&mut self, v: &str) -> u32 {
        if let Some(&i) = self.index.get(v) {
            return i;
        }
        let i = self.names.len() as u32;
        self.index.insert(v.to_string(), i);
        self.names.push(v.to_string());
        i
    }
}

/// What pass 1 learns.
struct Scan {
    roles: Roles,
    source: String,
    keep: Vec<bool>,
    y_ids: Vec<u32>,
    s_ids: Vec<u32>,
    y_values: Values,
    s_values: Values,
    numeric_cells: Vec<usize>,
}

/// How a streamed file is read, batch by batch.
#[derive(Clone, Copy)]
enum Input {
    /// Parquet or Arrow IPC ([`columnar::for_each_batch`]).
    Columnar(Format),
    /// CSV, with its separator ([`RawTable::csv_batches`]).
    Csv(Option<char>),
}

impl Input {
    fn for_each_batch(self, path: &Path, f: impl FnMut(RawTable) -> Result<()>) -> Result<()> {
        match self {
            Input::Columnar(format) => columnar::for_each_batch(path, format, f),
            Input::Csv(delimiter) => RawTable::csv_batches(path, Duplicates::Reject, delimiter, f),
        }
    }
}

fn file_of(spec: &TableSpec) -> Result<(&Path, Input)> {
    let Source::Csv { path, sensitive_bins, delimiter, .. } = &spec.source else {
        return Err(Error::param(
            Param::Stream,
            spec.name(),
            "streaming reads a table file (CSV, Parquet or Arrow IPC), not shipped data",
        ));
    };
    if let Some(k) = sensitive_bins {
        let why = "not while streaming (the quantiles need every value): cut the column into groups before, or read \
                   the file in memory";
        return Err(Error::param(Param::SensitiveBins, k, why));
    }
    Ok((path, Format::of(path).map_or(Input::Csv(*delimiter), Input::Columnar)))
}

fn scan(spec: &TableSpec, path: &Path, input: Input) -> Result<Scan> {
    if spec.missing == Missing::Impute {
        let why = "not with streaming: a column's median needs its training values in memory (impute before \
                   streaming, or drop the rows)";
        return Err(Error::param(Param::Missing, "impute", why));
    }
    let mut scan: Option<Scan> = None;
    input.for_each_batch(path, |t| {
        let s = match scan.as_mut() {
            Some(s) => s,
            None => {
                let roles = file_roles(&t, spec)?;
                let n_features = roles.features.len();
                scan.insert(Scan {
                    roles,
                    source: t.source.clone(),
                    keep: Vec::new(),
                    y_ids: Vec::new(),
                    s_ids: Vec::new(),
                    y_values: Values::default(),
                    s_values: Values::default(),
                    numeric_cells: vec![0; n_features],
                })
            }
        };
        let (yc, sc) = (t.col(&s.roles.target)?, t.col(&s.roles.sensitive)?);
        let fc: Vec<usize> = s.roles.features.iter().map(|f| t.col(f)).collect::<Result<_>>()?;
        for r in 0..t.n_rows() {
            let kept = [yc, sc].iter().chain(&fc).all(|&c| !t.columns[c].missing(r));
            if !kept && spec.missing == Missing::Error {
                let c = [yc, sc].into_iter().chain(fc.iter().copied()).find(|&c| t.columns[c].missing(r));
                let c = c.unwrap_or(yc);
                return Err(Error::Csv {
                    path: t.source.clone(),
                    line: t.lines[r],
                    message: format!("column '{}' has a missing value ('{}')", t.header[c], t.columns[c].get(r)),
                });
            }
            s.keep.push(kept);
            if kept {
                s.y_ids.push(s.y_values.id(t.columns[yc].get(r)));
                s.s_ids.push(s.s_values.id(t.columns[sc].get(r)));
                for (k, &c) in fc.iter().enumerate() {
                    s.numeric_cells[k] += t.columns[c].number(r).is_some() as usize;
                }
            }
        }
        Ok(())
    })?;
    scan.ok_or_else(|| Error::NoRows { path: path.display().to_string(), detail: String::new() })
}

/// A two-column table of the distinct target and group values, so that the encoders' own rules (sorting,
/// the positive value, at least two groups) and messages apply.
fn values_table(source: &str, roles: &Roles, y: &[String], s: &[String]) -> RawTable {
    let n = y.len().max(s.len());
    let pad = |v: &[String]| Column::from_cells((0..n).map(|i| v.get(i).unwrap_or(&v[0]).as_str()));
    let (header, columns) = if roles.target == roles.sensitive {
        (vec![roles.target.clone()], vec![pad(y)])
    } else {
        (vec![roles.target.clone(), roles.sensitive.clone()], vec![pad(y), pad(s)])
    };
    RawTable { source: source.to_string(), header, columns, lines: (1..=n as u64).collect() }
}

/// The kept rows of a batch (with their global kept-row index), in file order.
fn kept_rows(t: &mut RawTable, keep: &[bool], first_row: usize) {
    let k: Vec<bool> = (0..t.n_rows()).map(|r| keep[first_row + r]).collect();
    t.retain_rows(&k);
}

/// Loads, filters, splits and encodes a CSV, Parquet or Arrow IPC file in passes, the inputs going to cache files
/// under the system's temporary directory; with `encoding` (a saved model) its encoders are applied.
pub fn prepare(spec: &TableSpec, encoding: Option<&Encoding>) -> Result<Prepared> {
    spec.validate()?;
    // The passes read the target's values as labels; a regression target is read whole (in memory).
    let regression = encoding
        .map_or(matches!(spec.source, super::Source::Csv { task: super::Task::Regression, .. }), |e| {
            e.target.regression.is_some()
        });
    if regression {
        let why = "streamed training reads labels; a regression target is read with the table in memory";
        return Err(Error::param(crate::schema::Param::Stream, true, why));
    }
    let (path, input) = file_of(spec)?;
    let mut sc = scan(spec, path, input)?;
    let kept = sc.keep.iter().filter(|k| **k).count();
    let n_dropped = sc.keep.len() - kept;
    if kept == 0 {
        return Err(Error::NoRows {
            path: sc.source.clone(),
            detail: if n_dropped == 0 {
                String::new()
            } else {
                format!(" left: all {n_dropped} rows have a missing value in a used column")
            },
        });
    }
    let (target, sensitive, y, s) = labels(&mut sc, encoding, path)?;
    let n_groups = sensitive.groups.len();
    let splits = split::splits(&y, &s, n_groups, spec)?;
    check_group_sizes(&sc.source, &sensitive, &s, &splits.train, &splits.test)?;
    let mut part = vec![Part::Train; kept];
    for (p, idx) in [(Part::Val, &splits.val), (Part::Test, &splits.test), (Part::Certify, &splits.certify)] {
        idx.iter().for_each(|&i| part[i] = p);
    }
    let encoding = match encoding {
        Some(e) => e.clone(),
        None => fit_encoders(path, input, &sc.roles, &sc.numeric_cells, kept, &sc.keep, &part, target, sensitive)?,
    };
    let d = encoding.n_features();
    // The cache files hold every kept row's inputs: refused before the disk fills.
    encoding.check_size(&sc.source, kept, Place::Disk { dir: std::env::temp_dir() })?;
    let mut files = write_caches(path, input, &sc, &encoding, &part)?.into_iter();
    let mut set = |idx: &[usize]| -> Result<Dataset> {
        Ok(Dataset {
            x: files.next().ok_or_else(|| Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other("a cache file is missing"),
            })?,
            n: idx.len(),
            d,
            shape: vec![d],
            y: idx.iter().map(|&i| y[i]).collect(),
            s: idx.iter().map(|&i| s[i]).collect(),
            n_groups,
            n_classes: encoding.target.n_classes(),
            w: None,
            t: None,
        })
    };
    let sets = [set(&splits.train)?, set(&splits.val)?, set(&splits.test)?, set(&splits.certify)?];
    Ok(Prepared::table(spec.name(), encoding, sets, n_dropped))
}

/// The target and group mappings (fitted on the values present, or a saved model's) and every kept row's
/// `y` and `s`; a value the mapping does not know is an error naming it.
fn labels(
    sc: &mut Scan,
    encoding: Option<&Encoding>,
    path: &Path,
) -> Result<(TargetEncoding, SensitiveEncoding, Vec<u8>, Vec<u32>)> {
    let present = |ids: &[u32], values: &Values| -> Vec<String> {
        let mut seen = vec![false; values.names.len()];
        ids.iter().for_each(|&i| seen[i as usize] = true);
        values.names.iter().zip(seen).filter(|(_, s)| *s).map(|(v, _)| v.clone()).collect()
    };
    let (ys, ss) = (present(&sc.y_ids, &sc.y_values), present(&sc.s_ids, &sc.s_values));
    let (target, sensitive) = match encoding {
        Some(e) => (e.target.clone(), e.sensitive.clone()),
        None => {
            let vt = values_table(&sc.source, &sc.roles, &ys, &ss);
            (TargetEncoding::fit(&vt, &sc.roles)?, SensitiveEncoding::fit(&vt, &sc.roles)?)
        }
    };
    let y_of: Vec<Option<u8>> = sc.y_values.names.iter().map(|v| target.index(v)).collect();
    let s_of: Vec<Option<u32>> =
        sc.s_values.names.iter().map(|v| sensitive.groups.iter().position(|g| g == v).map(|i| i as u32)).collect();
    let unknown = |column: &str, value: &str, known: String| Error::UnknownValue {
        path: path.display().to_string(),
        column: column.to_string(),
        value: value.to_string(),
        known,
    };
    if let Some(bad) = sc.y_values.names.iter().zip(&y_of).find(|(_, m)| m.is_none()) {
        return Err(unknown(&target.column, bad.0, target.labels().join(", ")));
    }
    if let Some(bad) = sc.s_values.names.iter().zip(&s_of).find(|(_, m)| m.is_none()) {
        return Err(unknown(&sensitive.column, bad.0, sensitive.groups.join(", ")));
    }
    // Every value was found above, so the lookups below are total.
    let y: Vec<u8> = std::mem::take(&mut sc.y_ids).iter().map(|&i| y_of[i as usize].unwrap_or(0)).collect();
    let s: Vec<u32> = std::mem::take(&mut sc.s_ids).iter().map(|&i| s_of[i as usize].unwrap_or(0)).collect();
    Ok((target, sensitive, y, s))
}

/// Pass 4: every kept row encoded into the cache file of its split (train, val, test, certify).
fn write_caches(path: &Path, input: Input, sc: &Scan, encoding: &Encoding, part: &[Part]) -> Result<Vec<Floats>> {
    let d = encoding.n_features();
    let dir = std::env::temp_dir();
    // Train, val, test, certify.
    let writers: Result<Vec<CacheWriter>> = (0..4).map(|_| CacheWriter::create(&dir)).collect();
    let mut writers = writers?;
    let mut unseen: HashMap<String, usize> = HashMap::new();
    let (mut first_row, mut k, mut batches) = (0usize, 0usize, 0usize);
    input.for_each_batch(path, |mut t| {
        let n = t.n_rows();
        kept_rows(&mut t, &sc.keep, first_row);
        first_row += n;
        let (x, warnings) = encoding.transform_reporting(&t)?;
        for w in warnings {
            *unseen.entry(w.split(": ").nth(1).unwrap_or("").to_string()).or_default() += 1;
        }
        for row in x.chunks(d.max(1)) {
            writers[part[k] as usize].write(row)?;
            k += 1;
        }
        if k > 0 && batches == 0 {
            // The crash tests kill the process here, with cache files half written.
            crate::files::pause_point("caching");
        }
        batches += 1;
        Ok(())
    })?;
    for column in unseen.keys() {
        tracing::warn!("{}: {column}: categories not seen in training encode as all zeros", sc.source);
    }
    writers.into_iter().map(CacheWriter::finish).collect()
}

/// Passes 2 and 3: the feature encoders, by the rules of [`Encoding::fit`] (numeric when not forced
/// categorical and more than half the kept cells are numbers; mean, population std and categories over the
/// training rows).
#[allow(clippy::too_many_arguments)]
fn fit_encoders(
    path: &Path,
    input: Input,
    roles: &Roles,
    numeric_cells: &[usize],
    kept: usize,
    keep: &[bool],
    part: &[Part],
    target: TargetEncoding,
    sensitive: SensitiveEncoding,
) -> Result<Encoding> {
    let numeric: Vec<bool> = roles
        .features
        .iter()
        .zip(numeric_cells)
        .map(|(f, &c)| !roles.categorical.contains(f) && 2 * c > kept)
        .collect();
    let n_train = part.iter().filter(|p| **p == Part::Train).count().max(1) as f64;
    let mut sums = vec![0f64; numeric.len()];
    let mut categories: Vec<BTreeSet<String>> = vec![BTreeSet::new(); numeric.len()];
    // Over the training rows, in file order: pass 2 the sums (or categories), pass 3 the squared deviations.
    let mut means: Option<Vec<f64>> = None;
    let mut squares = vec![0f64; numeric.len()];
    for pass in 0..2 {
        let (mut first_row, mut k) = (0usize, 0usize);
        input.for_each_batch(path, |mut t| {
            let n = t.n_rows();
            kept_rows(&mut t, keep, first_row);
            first_row += n;
            let train: Vec<bool> = (0..t.n_rows()).map(|r| part[k + r] == Part::Train).collect();
            k += t.n_rows();
            for (j, name) in roles.features.iter().enumerate() {
                if numeric[j] {
                    let values = super::encoding::parse_column(&t, name)?;
                    for (v, _) in values.iter().zip(&train).filter(|(_, tr)| **tr) {
                        match &means {
                            None => sums[j] += v,
                            Some(m) => squares[j] += (v - m[j]).powi(2),
                        }
                    }
                } else if pass == 0 {
                    let c = t.col(name)?;
                    for r in (0..t.n_rows()).filter(|&r| train[r]) {
                        let cell = t.columns[c].get(r);
                        if !categories[j].contains(cell) {
                            categories[j].insert(cell.to_string());
                            // Stops at once: the file may be larger than memory, and so may the values.
                            if categories[j].len() > MAX_CATEGORIES {
                                return Err(Error::TooManyCategories {
                                    path: path.display().to_string(),
                                    column: name.clone(),
                                    count: categories[j].len(),
                                    limit: MAX_CATEGORIES,
                                });
                            }
                        }
                    }
                }
            }
            Ok(())
        })?;
        if pass == 0 {
            means = Some(sums.iter().map(|s| s / n_train).collect());
        }
    }
    let means = means.unwrap();
    let columns = roles
        .features
        .iter()
        .enumerate()
        .map(|(j, name)| {
            if numeric[j] {
                let var = squares[j] / n_train;
                if !(means[j].is_finite() && var.is_finite()) {
                    let what = format!("{}: column '{name}'", path.display());
                    let reason = "its values are so large that their mean or spread overflows (a standardised input \
                                  would be meaningless): fix or rescale the column"
                        .to_string();
                    return Err(Error::Values { what, reason });
                }
                Ok(ColumnEncoder::Numeric {
                    name: name.clone(),
                    mean: means[j],
                    std: if var > 0.0 { var.sqrt() } else { 1.0 },
                })
            } else {
                Ok(ColumnEncoder::Categorical {
                    name: name.clone(),
                    categories: std::mem::take(&mut categories[j]).into_iter().collect(),
                })
            }
        })
        .collect::<Result<_>>()?;
    Ok(Encoding { columns, target, sensitive, impute: Vec::new() })
}
