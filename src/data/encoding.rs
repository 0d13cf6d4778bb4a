//! Encoders fitted on the training split (docs/design.md, section 6): numeric columns standardised, text columns
//! one-hot, the target mapped to {0, 1} and the sensitive attribute to group indices. All of it is saved
//! in `config.json`, so a saved model encodes new rows exactly as it was trained.

use super::table::{is_missing, number_text, parse_number, sort_values, RawTable};
use super::{Roles, MAX_CATEGORIES, MAX_CLASSES};
use crate::error::{Error, Result};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

/// Mean and population standard deviation; a constant column's std is 1 (so that standardising leaves
/// its values at 0 rather than dividing by zero).
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, if var > 0.0 { var.sqrt() } else { 1.0 })
}

/// How one raw column becomes model inputs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ColumnEncoder {
    /// `(v - mean) / std`, one input.
    Numeric {
        /// Column name.
        name: String,
        /// Training mean.
        mean: f64,
        /// Training standard deviation (population; 1 when the column is constant).
        std: f64,
    },
    /// One input per training category; an unseen category encodes as all zeros.
    Categorical {
        /// Column name.
        name: String,
        /// Categories seen in training, sorted.
        categories: Vec<String>,
    },
}

impl ColumnEncoder {
    /// The raw column's name.
    pub fn name(&self) -> &str {
        match self {
            ColumnEncoder::Numeric { name, .. } | ColumnEncoder::Categorical { name, .. } => name,
        }
    }

    /// Inputs this column produces.
    pub fn width(&self) -> usize {
        match self {
            ColumnEncoder::Numeric { .. } => 1,
            ColumnEncoder::Categorical { categories, .. } => categories.len(),
        }
    }
}

/// The target: a binary one (which raw value is positive) or one of `k >= 3` classes (the values in sorted
/// order, `y = i` meaning `classes[i]`). A binary target keeps its `positive`/`negative` form, so a
/// binary `config.json` reads and writes exactly as before classes existed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TargetEncoding {
    /// Target column.
    pub column: String,
    /// Binary: the value mapped to 1 (empty for more classes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub positive: String,
    /// Binary: the value mapped to 0 (empty for more classes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub negative: String,
    /// Three or more classes, sorted like the groups ([`sort_values`]); empty for a binary target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// A regression target's scale (docs/design.md, section 5c); absent for labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<Scale>,
}

/// How a regression target is scaled: the network fits `(v - mean) / std` and predictions are mapped
/// back, so the head's output is in standard units whatever the target's. The rows are also cut at the
/// median into two halves, the labels `y` (0 below, 1 above): the splits are stratified on them, and
/// the penalties and certificates that condition on a label (equalised odds) read them.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Scale {
    /// The training rows' mean.
    pub mean: f64,
    /// The training rows' standard deviation (population form; > 0).
    pub std: f64,
    /// The median of every row, cutting the halves.
    pub median: f64,
}

impl Scale {
    /// A standardised value back in the target's units.
    pub fn unscale(&self, z: f64) -> f64 {
        self.mean + self.std * z
    }
}

impl TargetEncoding {
    /// A binary target.
    pub fn binary(column: &str, positive: &str, negative: &str) -> Self {
        TargetEncoding {
            column: column.to_string(),
            positive: positive.to_string(),
            negative: negative.to_string(),
            classes: Vec::new(),
            regression: None,
        }
    }

    /// The numbers of the target column, an error naming the first cell that is not a finite number.
    fn numbers(table: &RawTable, column: &str) -> Result<Vec<f64>> {
        let cells = table.column(column)?;
        (0..cells.len())
            .map(|r| {
                cells.number(r).filter(|v| v.is_finite()).ok_or_else(|| Error::Csv {
                    path: table.source.clone(),
                    line: table.lines[r],
                    message: format!(
                        "target column '{column}' has value '{}', not a finite number (the task is regression)",
                        cells.get(r)
                    ),
                })
            })
            .collect()
    }

    /// A regression target: every cell a number, at least two distinct ones; the median of every row cuts
    /// the halves, and the mean and std are those of every row until [`TargetEncoding::scaled_on`] fits
    /// them on the training rows.
    fn fit_regression(table: &RawTable, spec: &Roles) -> Result<Self> {
        if let Some(p) = &spec.positive {
            let why = "a positive value applies to a binary target; the task is regression";
            return Err(Error::param(crate::schema::Param::Positive, p, why));
        }
        let v = Self::numbers(table, &spec.target)?;
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.dedup();
        if sorted.len() < 2 {
            return Err(Error::TargetValues {
                path: table.source.clone(),
                column: spec.target.clone(),
                count: sorted.len(),
                values: preview(&table.column(&spec.target)?.iter().take(1).map(String::from).collect::<Vec<_>>()),
                need: "two distinct numbers or more to regress on".into(),
            });
        }
        let mut all = v.clone();
        all.sort_by(f64::total_cmp);
        let median = all[all.len() / 2];
        let (mean, std) = mean_std(&v);
        let scale = Scale { mean, std, median };
        Ok(TargetEncoding { regression: Some(scale), ..Self::binary(&spec.target, "", "") })
    }

    /// A regression target's mean and std refitted on the training rows `rows` (a constant training
    /// target keeps a std of 1: its predictions are then the mean); labels are returned as they are.
    pub fn scaled_on(self, table: &RawTable, rows: &[usize]) -> Result<Self> {
        let Some(scale) = self.regression else { return Ok(self) };
        let v = Self::numbers(table, &self.column)?;
        let train: Vec<f64> = rows.iter().map(|&r| v[r]).collect();
        if train.is_empty() {
            return Ok(self);
        }
        let (mean, std) = mean_std(&train);
        Ok(TargetEncoding { regression: Some(Scale { mean, std, ..scale }), ..self })
    }

    /// A regression target's standardised values `(v - mean) / std`, one per row; `None` for labels.
    pub fn values(&self, table: &RawTable) -> Result<Option<Vec<f32>>> {
        let Some(scale) = self.regression else { return Ok(None) };
        let v = Self::numbers(table, &self.column)?;
        Ok(Some(v.iter().map(|x| ((x - scale.mean) / scale.std) as f32).collect()))
    }

    /// Finds the values. Two make a binary target whose positive value is the one asked for or the
    /// larger of the two (numerically when both are numbers); three up to [`MAX_CLASSES`] make one class
    /// each, in sorted order (a positive value is a binary notion and is refused there).
    pub fn fit(table: &RawTable, spec: &Roles) -> Result<Self> {
        if spec.task == super::Task::Regression {
            return Self::fit_regression(table, spec);
        }
        let cells = table.column(&spec.target)?;
        let mut values: Vec<String> = distinct(cells.iter());
        sort_values(&mut values);
        if values.len() < 2 || values.len() > MAX_CLASSES {
            return Err(Error::TargetValues {
                path: table.source.clone(),
                column: spec.target.clone(),
                count: values.len(),
                values: preview(&values),
                need: format!("two values (binary) up to {MAX_CLASSES} (classes)"),
            });
        }
        if values.len() > 2 {
            if let Some(p) = &spec.positive {
                return Err(Error::PositiveMulticlass {
                    path: table.source.clone(),
                    column: spec.target.clone(),
                    value: p.clone(),
                    count: values.len(),
                });
            }
            return Ok(TargetEncoding { classes: values, ..Self::binary(&spec.target, "", "") });
        }
        let positive = match &spec.positive {
            Some(p) => {
                if !values.contains(p) {
                    return Err(Error::PositiveNotFound {
                        path: table.source.clone(),
                        column: spec.target.clone(),
                        value: p.clone(),
                        values: values.join(", "),
                    });
                }
                p.clone()
            }
            None => values[1].clone(),
        };
        let negative = if values[0] == positive { &values[1] } else { &values[0] };
        Ok(Self::binary(&spec.target, &positive, negative))
    }

    /// Task classes: 2 for a binary target.
    pub fn n_classes(&self) -> usize {
        if self.classes.is_empty() {
            2
        } else {
            self.classes.len()
        }
    }

    /// The raw values in label order (`y = i` is the `i`-th): binary `[negative, positive]`.
    pub fn labels(&self) -> Vec<String> {
        if self.classes.is_empty() {
            vec![self.negative.clone(), self.positive.clone()]
        } else {
            self.classes.clone()
        }
    }

    /// The label of a raw value, `None` for a value the encoding does not know (a regression target:
    /// its half, `None` for a cell that is not a number).
    pub fn index(&self, value: &str) -> Option<u8> {
        if let Some(scale) = self.regression {
            parse_number(value).filter(|v| v.is_finite()).map(|v| (v > scale.median) as u8)
        } else if self.classes.is_empty() {
            (value == self.positive).then_some(1).or((value == self.negative).then_some(0))
        } else {
            // At most MAX_CLASSES (< 256) classes, so the position fits.
            self.classes.iter().position(|c| c == value).map(|i| i as u8)
        }
    }

    /// Maps every row's target to its label; a value the encoding does not know is an error naming the row.
    pub fn apply(&self, table: &RawTable) -> Result<Vec<u8>> {
        if let Some(scale) = self.regression {
            return Ok(Self::numbers(table, &self.column)?.iter().map(|&v| (v > scale.median) as u8).collect());
        }
        let cells = table.column(&self.column)?;
        cells
            .iter()
            .enumerate()
            .map(|(r, v)| {
                self.index(v).ok_or_else(|| Error::Csv {
                    path: table.source.clone(),
                    line: table.lines[r],
                    message: if self.classes.is_empty() {
                        format!(
                            "target column '{}' has value '{v}', neither '{}' nor '{}'",
                            self.column, self.positive, self.negative
                        )
                    } else {
                        format!(
                            "target column '{}' has value '{v}', not one of the classes ({})",
                            self.column,
                            self.classes.join(", ")
                        )
                    },
                })
            })
            .collect()
    }
}

/// The sensitive attribute's groups, in sorted order (group index = position).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SensitiveEncoding {
    /// Sensitive column.
    pub column: String,
    /// Group values; `s = i` means `groups[i]`.
    pub groups: Vec<String>,
    /// For a numeric column cut into quantile groups: the inner edges fitted on the training file, which
    /// held-out rows are cut at ([`super::groups`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bins: Option<Vec<f64>>,
}

impl SensitiveEncoding {
    /// Collects the groups; fewer than two is an error.
    pub fn fit(table: &RawTable, spec: &Roles) -> Result<Self> {
        let cells = table.column(&spec.sensitive)?;
        let mut groups = distinct(cells.iter());
        sort_values(&mut groups);
        if groups.len() < 2 {
            return Err(Error::OneGroup {
                path: table.source.clone(),
                column: spec.sensitive.clone(),
                value: groups.first().cloned().unwrap_or_default(),
            });
        }
        super::groups::check_numeric(&table.source, &spec.sensitive, &groups)?;
        Ok(SensitiveEncoding { column: spec.sensitive.clone(), groups, bins: spec.bins.clone() })
    }

    /// Maps every row to its group index.
    pub fn apply(&self, table: &RawTable) -> Result<Vec<u32>> {
        let cells = table.column(&self.column)?;
        cells
            .iter()
            .enumerate()
            .map(|(r, v)| {
                self.groups.iter().position(|g| g == v).map(|i| i as u32).ok_or_else(|| Error::UnknownGroup {
                    path: table.source.clone(),
                    line: table.lines[r],
                    column: self.column.clone(),
                    value: v.to_string(),
                    known: self.groups.join(", "),
                })
            })
            .collect()
    }
}

/// How a feature column's missing cells are filled (the missing-value policy `impute`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Impute {
    /// The cell a missing one becomes: the training rows' median (a number, as text that parses back to
    /// it) or most frequent value (text; the first in sorted order among equals).
    pub fill: String,
    /// Whether the column has an indicator input (1 where the cell was missing): when a training row
    /// missed it.
    pub indicator: bool,
}

/// The whole fitted encoding of a table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Encoding {
    /// Feature columns, in input order.
    pub columns: Vec<ColumnEncoder>,
    /// The target mapping.
    pub target: TargetEncoding,
    /// The group mapping.
    pub sensitive: SensitiveEncoding,
    /// With the policy `impute`, one per feature column (empty: missing cells are not imputed). The
    /// indicator inputs follow every column's own inputs, in column order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub impute: Vec<Impute>,
}

impl Encoding {
    /// Fits the feature encoders: a column is numeric when it is not forced categorical and more than
    /// half of its cells (over all rows) are numbers; its mean and std come from the training rows, as do
    /// the categories of a text column. With `impute`, missing cells are allowed and filled
    /// ([`Encoding::fit_imputed`]).
    pub fn fit(
        table: &RawTable,
        spec: &Roles,
        train_rows: &[usize],
        target: TargetEncoding,
        sensitive: SensitiveEncoding,
        impute: bool,
    ) -> Result<Self> {
        if impute {
            return Self::fit_imputed(table, spec, train_rows, target, sensitive);
        }
        // Column by column in parallel; errors and warnings in column order, as a loop would give them.
        use rayon::prelude::*;
        let fitted: Vec<Result<(ColumnEncoder, Option<String>)>> =
            spec.features.par_iter().map(|name| Self::fit_column(table, spec, name, train_rows)).collect();
        let mut columns = Vec::with_capacity(fitted.len());
        for f in fitted {
            let (column, warning) = f?;
            if let Some(w) = warning {
                tracing::warn!("{w}");
            }
            columns.push(column);
        }
        Ok(Encoding { columns, target, sensitive, impute: Vec::new() })
    }

    /// One feature column's encoder ([`Encoding::fit`]), with the warning it gives, if any.
    fn fit_column(
        table: &RawTable,
        spec: &Roles,
        name: &String,
        train_rows: &[usize],
    ) -> Result<(ColumnEncoder, Option<String>)> {
        let cells = table.column(name)?;
        if spec.categorical.contains(name) {
            return Self::fit_text(table, name, cells, train_rows).map(|c| (c, None));
        }
        // A column of finite numbers is read as it is; any other is parsed once: the count decides the
        // kind, and a numeric column's values are these.
        let finite = cells.numbers().filter(|v| v.iter().all(|x| x.is_finite()));
        let values: std::borrow::Cow<[f64]> = match finite {
            Some(v) => v.into(),
            None => {
                // Stops once half the cells failed to parse: the column is text whatever the rest hold.
                let mut failed = 0;
                let parsed: Vec<Option<f64>> = (0..cells.len())
                    .map(|r| cells.number(r))
                    .take_while(|v| {
                        failed += v.is_none() as usize;
                        2 * failed < cells.len()
                    })
                    .collect();
                let numeric_cells = parsed.iter().filter(|v| v.is_some()).count();
                if 2 * numeric_cells <= cells.len() {
                    return Self::fit_text(table, name, cells, train_rows).map(|c| (c, None));
                }
                if numeric_cells == cells.len() && parsed.iter().flatten().all(|v| v.is_finite()) {
                    parsed.into_iter().flatten().collect::<Vec<_>>().into()
                } else {
                    parse_column(table, name)?.into() // the error naming the first bad cell
                }
            }
        };
        let ids = train_rows.iter().map(|&r| values[r]).filter(|v| v.fract() == 0.0).count();
        // All distinct, stopping at the first repeat (which comes early in a real feature).
        // A column of numbers compares their bits: distinct bits are distinct texts ([`number_text`]
        // writes every value apart, -0 included), without writing the texts.
        let distinct = || match cells.numbers() {
            Some(v) => {
                let mut seen = FxHashSet::default();
                train_rows.iter().all(|&r| seen.insert(v[r].to_bits()))
            }
            None => {
                let mut seen = std::collections::HashSet::new();
                train_rows.iter().all(|&r| seen.insert(cells.get(r)))
            }
        };
        let warning = (train_rows.len() >= 20 && ids == train_rows.len() && distinct()).then(|| {
            format!(
                "{}: column '{name}' holds a distinct whole number in every row, like an identifier; it is used as \
                 a numeric feature: drop the column if it is an ID",
                table.source
            )
        });
        let n = train_rows.len().max(1) as f64;
        let mean = train_rows.iter().map(|&r| values[r]).sum::<f64>() / n;
        let var = train_rows.iter().map(|&r| (values[r] - mean).powi(2)).sum::<f64>() / n;
        if !(mean.is_finite() && var.is_finite()) {
            // The sums overflow: name the cell that makes them, the largest in magnitude.
            let worst = train_rows.iter().copied().max_by(|&a, &b| values[a].abs().total_cmp(&values[b].abs()));
            let row = worst.unwrap_or(0);
            return Err(Error::Overflow {
                path: table.source.clone(),
                line: table.lines[row],
                column: name.clone(),
                value: cells.get(row).to_string(),
            });
        }
        let std = if var > 0.0 { var.sqrt() } else { 1.0 };
        Ok((ColumnEncoder::Numeric { name: name.clone(), mean, std }, warning))
    }

    /// A text column's encoder: its training categories, sorted; refused past [`MAX_CATEGORIES`] before
    /// the one-hot inputs (rows x categories) are allocated.
    fn fit_text(table: &RawTable, name: &str, cells: &super::Column, train_rows: &[usize]) -> Result<ColumnEncoder> {
        let mut categories: Vec<String> = match cells.dictionary() {
            // A dictionary's values that some training row holds: no text hashed per cell.
            Some((values, codes)) => {
                let mut used = vec![false; values.len()];
                train_rows.iter().for_each(|&r| used[codes[r] as usize] = true);
                (0..values.len()).filter(|&k| used[k]).map(|k| values.get(k).to_string()).collect()
            }
            None => distinct(train_rows.iter().map(|&r| cells.get(r))),
        };
        check_categories(table, name, categories.len())?;
        categories.sort();
        Ok(ColumnEncoder::Categorical { name: name.to_string(), categories })
    }

    /// [`Encoding::fit`] for the policy `impute`: the kind of a column is decided on its present cells (a
    /// numeric column: more than half of them numbers); a numeric column is filled with the median of its
    /// present training values, and its mean and standard deviation are those of the filled training
    /// values (imputation, then standardisation); a text column is filled with its most frequent training
    /// value (the first in sorted order among equals), its categories being the present training values.
    /// A column missing a cell in the training rows gets an indicator input.
    fn fit_imputed(
        table: &RawTable,
        spec: &Roles,
        train_rows: &[usize],
        target: TargetEncoding,
        sensitive: SensitiveEncoding,
    ) -> Result<Self> {
        let mut columns = Vec::with_capacity(spec.features.len());
        let mut impute = Vec::with_capacity(spec.features.len());
        for name in &spec.features {
            let cells = table.column(name)?;
            let present: Vec<usize> = (0..cells.len()).filter(|&r| !is_missing(cells.get(r))).collect();
            let train: Vec<usize> = train_rows.iter().copied().filter(|&r| !is_missing(cells.get(r))).collect();
            let indicator = train.len() < train_rows.len();
            if train.is_empty() {
                return Err(Error::Values {
                    what: format!("{}: column '{name}'", table.source),
                    reason: "every training cell is missing: there is nothing to impute from (drop the column)".into(),
                });
            }
            let numbers = present.iter().filter(|&&r| parse_number(cells.get(r)).is_some()).count();
            if !spec.categorical.contains(name) && 2 * numbers > present.len() {
                let mut values: Vec<f64> =
                    train.iter().map(|&r| parse_cell(table, name, r, cells.get(r))).collect::<Result<_>>()?;
                values.sort_by(f64::total_cmp);
                let k = values.len();
                let median = if k % 2 == 1 { values[k / 2] } else { values[k / 2 - 1] / 2.0 + values[k / 2] / 2.0 };
                let filled = |r: usize| {
                    if is_missing(cells.get(r)) {
                        Ok(median)
                    } else {
                        parse_cell(table, name, r, cells.get(r))
                    }
                };
                let filled: Vec<f64> = train_rows.iter().map(|&r| filled(r)).collect::<Result<_>>()?;
                let n = filled.len() as f64;
                let mean = filled.iter().sum::<f64>() / n;
                let var = filled.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                if !(mean.is_finite() && var.is_finite()) {
                    return Err(Error::Values {
                        what: format!("{}: column '{name}'", table.source),
                        reason:
                            "its values are so large that their mean or spread overflows: fix or rescale the column"
                                .into(),
                    });
                }
                let std = if var > 0.0 { var.sqrt() } else { 1.0 };
                columns.push(ColumnEncoder::Numeric { name: name.clone(), mean, std });
                let mut fill = String::new();
                number_text(median, &mut fill);
                impute.push(Impute { fill, indicator });
            } else {
                let mut counts: FxHashMap<&str, usize> = FxHashMap::default();
                for &r in &train {
                    *counts.entry(cells.get(r)).or_default() += 1;
                }
                check_categories(table, name, counts.len())?;
                let mut categories: Vec<String> = counts.keys().map(|c| c.to_string()).collect();
                categories.sort();
                // The most frequent; among equals the first in sorted order (the categories are sorted).
                let top = categories.iter().map(|c| counts[c.as_str()]).max().unwrap_or(0);
                let fill = categories.iter().find(|c| counts[c.as_str()] == top).cloned().unwrap_or_default();
                columns.push(ColumnEncoder::Categorical { name: name.clone(), categories });
                impute.push(Impute { fill, indicator });
            }
        }
        Ok(Encoding { columns, target, sensitive, impute })
    }

    /// Whether the missing cells of feature column `j` are imputed.
    pub fn imputes(&self, j: usize) -> bool {
        self.impute.get(j).is_some()
    }

    /// Checks what a saved encoding must hold: finite statistics and a positive spread for every numeric
    /// column, at least one category for every text column.
    pub fn validate(&self) -> Result<()> {
        let fills_ok = self.impute.is_empty()
            || (self.impute.len() == self.columns.len()
                && (self.columns.iter().zip(&self.impute)).all(|(c, i)| match c {
                    ColumnEncoder::Numeric { .. } => parse_number(&i.fill).is_some_and(f64::is_finite),
                    ColumnEncoder::Categorical { .. } => true,
                }));
        if !fills_ok {
            return Err(Error::Shape {
                what: "the imputation of the encoders".into(),
                expected: "one per feature column, a finite number for a numeric one".into(),
                got: format!("{:?}", self.impute),
            });
        }
        for c in &self.columns {
            let ok = match c {
                ColumnEncoder::Numeric { mean, std, .. } => mean.is_finite() && std.is_finite() && *std > 0.0,
                ColumnEncoder::Categorical { categories, .. } => !categories.is_empty(),
            };
            if !ok {
                return Err(Error::Shape {
                    what: format!("the encoder of column '{}'", c.name()),
                    expected: "finite statistics (numbers) or categories (text)".into(),
                    got: format!("{c:?}"),
                });
            }
        }
        Ok(())
    }

    /// Refuses to encode `rows` rows when their inputs (`rows x n_features` 32-bit floats, the one-hot
    /// columns counted at their width) would not fit in `place`: a clear error instead of an aborted
    /// allocation or a disk filled to the last byte. Where the space available is not known, nothing is
    /// checked.
    pub fn check_size(&self, source: &str, rows: usize, place: Place) -> Result<()> {
        let available = match &place {
            Place::Memory { .. } => available_memory(),
            Place::Disk { dir } => available_disk(dir),
        };
        self.size_error(source, rows, &place, available).map_or(Ok(()), Err)
    }

    /// The error of [`Encoding::check_size`] given the space available, when there is one.
    fn size_error(&self, source: &str, rows: usize, place: &Place, available: Option<f64>) -> Option<Error> {
        let available = available?;
        let width = self.n_features();
        let copies = match place {
            Place::Memory { copies } => *copies,
            Place::Disk { .. } => 1,
        };
        let needed = rows as f64 * width as f64 * 4.0 * copies as f64;
        if needed <= available {
            return None;
        }
        let widest = self.columns.iter().max_by_key(|c| c.width())?;
        Some(Error::TooLarge {
            path: source.to_string(),
            rows,
            width,
            widest: format!("{} of them for column '{}'", widest.width(), widest.name()),
            needed,
            place: match place {
                Place::Memory { .. } => "memory".to_string(),
                Place::Disk { dir } => format!("the disk of {}", dir.display()),
            },
            available,
        })
    }

    /// Total input width: every column's inputs, then the indicators of missing cells.
    pub fn n_features(&self) -> usize {
        self.columns.iter().map(ColumnEncoder::width).sum::<usize>()
            + self.impute.iter().filter(|i| i.indicator).count()
    }

    /// Names of the inputs (`col` or `col=value`).
    pub fn feature_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.columns {
            match c {
                ColumnEncoder::Numeric { name, .. } => out.push(name.clone()),
                ColumnEncoder::Categorical { name, categories } => {
                    out.extend(categories.iter().map(|v| format!("{name}={v}")))
                }
            }
        }
        let indicators = self.columns.iter().zip(&self.impute).filter(|(_, i)| i.indicator);
        out.extend(indicators.map(|(c, _)| format!("{}:missing", c.name())));
        out
    }

    /// Encodes every row of the table (which must have no missing cells in the feature columns); a
    /// category not seen in training encodes as all zeros, with a warning per column.
    pub fn transform(&self, table: &RawTable) -> Result<Vec<f32>> {
        let (x, unseen) = self.transform_reporting(table)?;
        for u in unseen {
            tracing::warn!("{u}");
        }
        Ok(x)
    }

    /// [`Encoding::transform`], returning the warnings about unseen categories instead of logging them
    /// (the Python package raises them as Python warnings).
    pub fn transform_reporting(&self, table: &RawTable) -> Result<(Vec<f32>, Vec<String>)> {
        let n = table.n_rows();
        let d = self.n_features();
        self.check_size(&table.source, n, Place::Memory { copies: 1 })?;
        let mut x = vec![0f32; n * d];
        // Unseen categories per column: how many cells, and the first value met with its line.
        let mut unseen: Vec<Unseen> = Vec::new();
        // Blocks of rows, column by column within a block: the block's part of `x` stays in cache while
        // every column writes into it (column by column over all rows streamed `x` once per column).
        const BLOCK: usize = 2048;
        // Each text column's categories by value, built once for all blocks.
        let index: Vec<FxHashMap<&str, usize>> = (self.columns.iter())
            .map(|col| match col {
                ColumnEncoder::Categorical { categories, .. } => {
                    categories.iter().enumerate().map(|(k, c)| (c.as_str(), k)).collect()
                }
                ColumnEncoder::Numeric { .. } => FxHashMap::default(),
            })
            .collect();
        // Each column's fill (a number for a numeric column) and the offset of its indicator input.
        let mut next = self.columns.iter().map(ColumnEncoder::width).sum::<usize>();
        let fills: Vec<Option<Fill>> = (self.columns.iter().enumerate())
            .map(|(j, col)| {
                let imp = self.impute.get(j)?;
                let indicator = imp.indicator.then(|| {
                    next += 1;
                    next - 1
                });
                let number = matches!(col, ColumnEncoder::Numeric { .. }).then(|| parse_number(&imp.fill)).flatten();
                Some(Fill { cell: imp.fill.as_str(), number, indicator })
            })
            .collect();
        // Blocks in parallel; the first error and the unseen categories merged in row order, as one pass
        // over the blocks would meet them.
        use rayon::prelude::*;
        let blocks: Vec<Result<Vec<Unseen>>> = x
            .par_chunks_mut(BLOCK * d.max(1))
            .enumerate()
            .map(|(b, x)| {
                let start = b * BLOCK;
                let mut unseen = Vec::new();
                self.transform_block(table, start..(start + BLOCK).min(n), d, &index, &fills, x, &mut unseen)?;
                Ok(unseen)
            })
            .collect();
        for block in blocks {
            for (column, count, value, line) in block? {
                match unseen.iter_mut().find(|u| u.0 == column) {
                    Some(u) => u.1 += count,
                    None => unseen.push((column, count, value, line)),
                }
            }
        }
        let unseen = unseen.into_iter().map(|(column, count, value, line)| {
            format!(
                "{}: column '{column}': {count} cell(s) hold categories not seen in training (first: '{value}' on \
                 line {line}); they encode as all zeros",
                table.source
            )
        });
        Ok((x, unseen.collect()))
    }

    #[allow(clippy::too_many_arguments)]
    fn transform_block<'a>(
        &'a self,
        table: &RawTable,
        rows: std::ops::Range<usize>,
        d: usize,
        index: &[FxHashMap<&str, usize>],
        fills: &[Option<Fill<'_>>],
        x: &mut [f32], // the block's rows
        unseen: &mut Vec<Unseen<'a>>,
    ) -> Result<()> {
        let mut offset = 0;
        for ((col, index), fill) in self.columns.iter().zip(index).zip(fills) {
            // A missing cell of an imputed column: its fill, and a 1 in its indicator input.
            let fill_of = |cell: &str| fill.as_ref().filter(|_| is_missing(cell));
            match col {
                ColumnEncoder::Numeric { name, mean, std } => {
                    let cells = table.column(name)?;
                    if let (Some(values), None) = (cells.numbers(), fill) {
                        // A column of numbers without a fill: its values as they are; a non-finite input
                        // is written over by the loop below, which names its cell.
                        let mut finite = true;
                        for (i, &v) in values[rows.clone()].iter().enumerate() {
                            let z = ((v - mean) / std) as f32;
                            finite &= z.is_finite();
                            x[i * d + offset] = z;
                        }
                        if finite {
                            offset += col.width();
                            continue;
                        }
                    }
                    for r in rows.clone() {
                        // Read as numbers: a column of numbers from memory is not written out as text.
                        let f = fill.as_ref().filter(|_| cells.missing(r));
                        if let Some(i) = f.and_then(|f| f.indicator) {
                            x[(r - rows.start) * d + i] = 1.0;
                        }
                        let v = match f {
                            Some(f) => f.number.unwrap_or(*mean),
                            None => cell_number(table, name, cells, r)?,
                        };
                        let z = ((v - mean) / std) as f32;
                        // A value beyond f32's range once standardised would enter the network as inf.
                        if !z.is_finite() {
                            return Err(Error::OutOfRange {
                                path: table.source.clone(),
                                line: table.lines[r],
                                column: name.clone(),
                                value: cells.get(r).to_string(),
                                mean: *mean,
                                std: *std,
                            });
                        }
                        x[(r - rows.start) * d + offset] = z;
                    }
                }
                ColumnEncoder::Categorical { name, .. } => {
                    let cells = table.column(name)?;
                    // A cell's indicator input, its category's input (`None`: unseen) and the value it encodes.
                    let look = |cell| {
                        let f = fill_of(cell);
                        let v = f.map_or(cell, |f| f.cell);
                        (f.and_then(|f| f.indicator), index.get(v).copied(), v)
                    };
                    // A dictionary of no more values than the block has rows: each value looked up once.
                    let dict = cells.dictionary().filter(|(values, _)| values.len() <= rows.len());
                    let looked: Option<Vec<_>> =
                        dict.map(|(values, _)| (0..values.len()).map(|k| look(values.get(k))).collect());
                    for r in rows.clone() {
                        let (indicator, slot, v) = match (&looked, dict) {
                            (Some(looked), Some((_, codes))) => looked[codes[r] as usize],
                            _ => look(cells.get(r)),
                        };
                        if let Some(i) = indicator {
                            x[(r - rows.start) * d + i] = 1.0;
                        }
                        match slot {
                            Some(k) => x[(r - rows.start) * d + offset + k] = 1.0,
                            None => match unseen.iter_mut().find(|u| u.0 == name) {
                                Some(u) => u.1 += 1,
                                None => unseen.push((name, 1, v.to_string(), table.lines[r])),
                            },
                        }
                    }
                }
            }
            offset += col.width();
        }
        Ok(())
    }
}

/// Unseen categories of a column in [`Encoding::transform_reporting`]: the column, how many cells, and the
/// first value met with its line.
type Unseen<'a> = (&'a str, usize, String, u64);

/// A column's imputation as the transform applies it.
struct Fill<'a> {
    cell: &'a str,
    number: Option<f64>,
    indicator: Option<usize>,
}

/// Where encoded inputs are held, for [`Encoding::check_size`].
#[derive(Clone, Debug)]
pub enum Place {
    /// In memory, `copies` times at once (the splits are copied out of the whole table's inputs).
    Memory {
        /// How many arrays of that size are held at once.
        copies: usize,
    },
    /// Cache files in this directory ([`super::stream`]).
    Disk {
        /// The directory.
        dir: std::path::PathBuf,
    },
}

/// Memory this process can still get, when known: the machine's `MemAvailable` (`/proc/meminfo`), or less
/// when the process's control group has a limit (a Slurm job's or a container's: cgroup v2 `memory.max`
/// less `memory.current`), which `MemAvailable` does not see.
pub(crate) fn available_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    let machine = kb * 1024.0;
    Some(cgroup_headroom().map_or(machine, |h| h.min(machine)))
}

/// The limit less the usage of this process's memory cgroup, when it has a limit: cgroup v2
/// (`memory.max`, `memory.current`) or v1 (`memory.limit_in_bytes`, `memory.usage_in_bytes`; a v1 group
/// without a limit reports a number near 2^63).
fn cgroup_headroom() -> Option<f64> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let root = std::path::Path::new("/sys/fs/cgroup");
    let (dir, max_file, current_file) = match groups.lines().find_map(|l| l.split_once(":memory:").map(|(_, p)| p)) {
        Some(v1) => {
            (root.join("memory").join(v1.trim_start_matches('/')), "memory.limit_in_bytes", "memory.usage_in_bytes")
        }
        None => {
            let v2 = groups.lines().find_map(|l| l.strip_prefix("0::"))?;
            (root.join(v2.trim_start_matches('/')), "memory.max", "memory.current")
        }
    };
    let read = |name: &str| -> Option<f64> { std::fs::read_to_string(dir.join(name)).ok()?.trim().parse().ok() };
    let max = read(max_file).filter(|&m| m < 1e18)?; // v2's "max" does not parse; v1's "no limit" is ~9.2e18
    Some((max - read(current_file)?).max(0.0))
}

/// Bytes an unprivileged process may still write on the file system of `dir`, when known.
#[cfg(unix)]
fn available_disk(dir: &std::path::Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stat` a buffer of the type statvfs fills; it is read
    // only when the call succeeds.
    let stat = unsafe {
        if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    #[allow(clippy::unnecessary_cast)] // the fields' types differ between platforms
    Some(stat.f_bavail as f64 * stat.f_frsize as f64)
}

#[cfg(not(unix))]
fn available_disk(_dir: &std::path::Path) -> Option<f64> {
    None
}

/// Parses a numeric column; a non-number or an infinity is an error naming line and column.
pub(crate) fn parse_column(table: &RawTable, name: &str) -> Result<Vec<f64>> {
    let cells = table.column(name)?;
    (0..cells.len()).map(|r| cell_number(table, name, cells, r)).collect()
}

/// Cell `r` of numeric column `name` (`cells`) as a finite number, or the error naming it: a finite value
/// of a column of numbers as it is, anything else by [`parse_cell`] on its text (the same error a file's
/// cell gives).
fn cell_number(table: &RawTable, name: &str, cells: &super::Column, r: usize) -> Result<f64> {
    match cells.numbers() {
        Some(values) if values[r].is_finite() => Ok(values[r]),
        _ => parse_cell(table, name, r, cells.get(r)),
    }
}

/// Cell `c` of row `r` of numeric column `name` as a finite number, or the error naming it.
fn parse_cell(table: &RawTable, name: &str, r: usize, c: &str) -> Result<f64> {
    match parse_number(c) {
        Some(v) if v.is_finite() => Ok(v),
        Some(_) => Err(Error::NonFinite {
            path: table.source.clone(),
            line: table.lines[r],
            column: name.to_string(),
            value: c.to_string(),
        }),
        None => Err(Error::NotNumeric {
            path: table.source.clone(),
            line: table.lines[r],
            column: name.to_string(),
            value: c.to_string(),
        }),
    }
}

/// A text column of `count` training categories, refused past [`MAX_CATEGORIES`] (before its one-hot
/// inputs, rows x categories, are allocated).
fn check_categories(table: &RawTable, name: &str, count: usize) -> Result<()> {
    if count > MAX_CATEGORIES {
        let (path, column) = (table.source.clone(), name.to_string());
        return Err(Error::TooManyCategories { path, column, count, limit: MAX_CATEGORIES });
    }
    Ok(())
}

/// The distinct cells, sorted (hashed first: a column holds few distinct values and many cells).
fn distinct<'a>(cells: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let set: FxHashSet<&str> = cells.into_iter().collect();
    let mut out: Vec<String> = set.into_iter().map(String::from).collect();
    out.sort_unstable();
    out
}

fn preview(values: &[String]) -> String {
    let mut s: Vec<String> = values.iter().take(5).map(|v| format!("'{v}'")).collect();
    if values.len() > 5 {
        s.push("...".into());
    }
    s.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoding(categories: usize) -> Encoding {
        Encoding {
            columns: vec![
                ColumnEncoder::Numeric { name: "age".into(), mean: 0.0, std: 1.0 },
                ColumnEncoder::Categorical {
                    name: "city".into(),
                    categories: (0..categories).map(|k| k.to_string()).collect(),
                },
            ],
            target: TargetEncoding::binary("y", "1", "0"),
            sensitive: SensitiveEncoding { column: "s".into(), groups: vec!["a".into(), "b".into()], bins: None },
            impute: Vec::new(),
        }
    }

    #[test]
    fn a_column_of_numbers_encodes_as_the_column_of_their_texts() {
        // The same values once as numbers from memory, once as the texts a file would hold: the fitted
        // encoders, the inputs and the errors are the same, and the numbers are never written as text
        // unless something reads them as text (a category, an error's value).
        use super::super::Column;
        let mut r = 0x2545_f491_4f6c_dd1du64;
        let mut values = vec![0.0, -0.0, 1e-7, 3.5, -1e17, 1e30, 42.0];
        values.extend((0..200).map(|_| {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            (r % 1000) as f64 / 7.0 - 50.0
        }));
        let mut buf = String::new();
        let texts: Vec<String> = values.iter().map(|&v| (number_text(v, &mut buf), buf.clone()).1).collect();
        let n = values.len();
        let table = |a: Column, b: Column| RawTable {
            source: "data".into(),
            header: ["a", "b", "s", "y"].map(String::from).to_vec(),
            columns: vec![
                a,
                b,
                Column::from_cells((0..n).map(|i| ["u", "v"][i % 2])),
                Column::from_cells((0..n).map(|i| ["0", "1"][i / 2 % 2])),
            ],
            lines: (0..n as u64).collect(),
        };
        let small: Vec<f64> = (0..n).map(|i| (i % 5) as f64).collect();
        let small_texts: Vec<String> = small.iter().map(|&v| (number_text(v, &mut buf), buf.clone()).1).collect();
        let numbers =
            table(Column::from_numbers(values.clone()).unwrap(), Column::from_numbers(small.clone()).unwrap());
        let text = table(Column::from_cells(&texts), Column::from_cells(&small_texts));
        let roles = |categorical: Vec<String>| Roles {
            target: "y".into(),
            positive: None,
            sensitive: "s".into(),
            features: vec!["a".into(), "b".into()],
            categorical,
            bins: None,
            task: Default::default(),
        };
        let rows: Vec<usize> = (0..n).filter(|i| i % 3 != 0).collect();
        for categorical in [vec![], vec!["b".to_string()]] {
            let fit = |t: &RawTable| {
                let roles = roles(categorical.clone());
                let target = TargetEncoding::fit(t, &roles).unwrap();
                let groups = SensitiveEncoding::fit(t, &roles).unwrap();
                Encoding::fit(t, &roles, &rows, target, groups, false).unwrap()
            };
            let (e_numbers, e_text) = (fit(&numbers), fit(&text));
            assert_eq!(e_numbers, e_text);
            let (x_numbers, x_text) = (e_numbers.transform(&numbers).unwrap(), e_text.transform(&text).unwrap());
            assert_eq!(
                x_numbers.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                x_text.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            assert!(!numbers.columns[0].written(), "a numeric column read as numbers only");
            assert_eq!(numbers.columns[1].written(), !categorical.is_empty(), "a category is text");
        }
        assert_eq!(numbers.columns[0], text.columns[0]);
        // An infinity: the same error, naming the cell's text.
        let (mut inf, mut inf_text) = (values.clone(), texts.clone());
        (inf[5], inf_text[5]) = (f64::INFINITY, "inf".into());
        let e = Encoding::fit(&text, &roles(vec![]), &rows, encoding(1).target, encoding(1).sensitive, false).unwrap();
        let err = |t: RawTable| e.transform(&t).unwrap_err().to_string();
        let small = || Column::from_numbers(small.clone()).unwrap();
        assert_eq!(
            err(table(Column::from_numbers(inf).unwrap(), small())),
            err(table(Column::from_cells(&inf_text), small()))
        );
        // Missing cells (NaN) are the missing cells of the text ("NaN").
        let mut gaps = Column::from_numbers(vec![1.0, f64::NAN, 2.0]).unwrap();
        assert_eq!((0..3).map(|r| gaps.missing(r)).collect::<Vec<_>>(), [false, true, false]);
        assert_eq!(gaps.get(1), "NaN");
        gaps.retain(&[true, false, true]);
        assert_eq!((gaps.numbers(), gaps.iter().collect::<Vec<_>>()), (Some(&[1.0, 2.0][..]), vec!["1", "2"]));
        assert!(gaps.push("x") && gaps.numbers().is_none() && gaps.iter().eq(["1", "2", "x"]));
    }

    #[test]
    fn the_size_check_counts_the_one_hot_width_and_every_copy() {
        let e = encoding(999); // 1,000 inputs: 4,000 bytes a row
        let memory = |copies| Place::Memory { copies };
        assert!(e.size_error("f", 1000, &memory(1), Some(4.0e6)).is_none(), "exactly fits");
        let err = e.size_error("f", 1001, &memory(1), Some(4.0e6)).expect("one row too many");
        let text = err.to_string();
        assert!(
            text.contains("1001 rows of 1000 inputs, 999 of them for column 'city'") && text.contains("memory"),
            "{text}"
        );
        assert!(e.size_error("f", 1000, &memory(2), Some(4.0e6)).is_some(), "two copies do not fit");
        let disk = Place::Disk { dir: "/cache".into() };
        let text = e.size_error("f", 2000, &disk, Some(1.0e6)).unwrap().to_string();
        assert!(text.contains("the disk of /cache"), "{text}");
        assert!(e.size_error("f", usize::MAX, &disk, None).is_none(), "unknown space: not checked");
    }

    /// A table of target cells `y` and up to five groups' cells.
    fn target_table(y: &[&str]) -> RawTable {
        let col = |cells: &[&str]| super::super::Column::from_cells(cells.iter().copied());
        RawTable {
            source: "t.csv".into(),
            header: ["y", "s"].map(String::from).to_vec(),
            columns: vec![col(y), col(&["a", "b", "a", "b", "a"][..y.len()])],
            lines: (2..2 + y.len() as u64).collect(),
        }
    }

    /// The roles of [`target_table`]'s columns for a task.
    fn target_roles(task: super::super::Task) -> Roles {
        Roles {
            target: "y".into(),
            positive: None,
            sensitive: "s".into(),
            features: vec![],
            categorical: vec![],
            bins: None,
            task,
        }
    }

    #[test]
    fn a_target_of_three_classes_is_sorted_like_the_groups_and_saved_compatibly() {
        let (table, roles) = (target_table, target_roles(Default::default()));
        // Numbers sort numerically (10 after 9), as the groups do.
        let t = TargetEncoding::fit(&table(&["10", "9", "2", "9", "10"]), &roles).unwrap();
        assert_eq!(t.classes, ["2", "9", "10"]);
        assert_eq!(t.n_classes(), 3);
        assert_eq!(t.apply(&table(&["10", "9", "2", "9", "10"])).unwrap(), [2, 1, 0, 1, 2]);
        let e = t.apply(&table(&["10", "7"])).unwrap_err().to_string();
        assert!(e.contains("value '7', not one of the classes (2, 9, 10)"), "{e}");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"column":"y","classes":["2","9","10"]}"#);
        assert_eq!(serde_json::from_str::<TargetEncoding>(&json).unwrap(), t);
        // A binary target reads and writes as before classes existed.
        let old = r#"{"column":"y","positive":"1","negative":"0"}"#;
        let b: TargetEncoding = serde_json::from_str(old).unwrap();
        assert_eq!((b.n_classes(), b.labels()), (2, vec!["0".to_string(), "1".to_string()]));
        assert_eq!(serde_json::to_string(&b).unwrap(), old);
        // A positive value is a binary notion; one value is no task.
        let with_positive = Roles { positive: Some("9".into()), ..roles.clone() };
        let e = TargetEncoding::fit(&table(&["10", "9", "2"]), &with_positive).unwrap_err().to_string();
        assert!(e.contains("applies to a binary target only"), "{e}");
        assert!(TargetEncoding::fit(&table(&["1", "1"]), &roles).is_err());
    }

    #[test]
    fn a_regression_target_is_scaled_on_the_training_rows_and_saved() {
        let (table, roles) = (target_table, target_roles(super::super::Task::Regression));
        let t = table(&["1", "2", "3", "10", "4"]);
        let fitted = TargetEncoding::fit(&t, &roles).unwrap();
        // The halves cut at the median of every row (3): labels, not classes.
        assert_eq!(fitted.apply(&t).unwrap(), [0, 0, 0, 1, 1]);
        assert_eq!(fitted.n_classes(), 2);
        // Training rows 0, 1, 3: mean 13 / 3, population std sqrt(((1-m)^2 + (2-m)^2 + (10-m)^2) / 3).
        let scaled = fitted.scaled_on(&t, &[0, 1, 3]).unwrap();
        let scale = scaled.regression.unwrap();
        let m = 13.0 / 3.0;
        let sd = (((1.0f64 - m).powi(2) + (2.0 - m).powi(2) + (10.0 - m).powi(2)) / 3.0).sqrt();
        assert!((scale.mean - m).abs() < 1e-12 && (scale.std - sd).abs() < 1e-12, "{scale:?}");
        let z = scaled.values(&t).unwrap().unwrap();
        assert!((z[3] as f64 - (10.0 - m) / sd).abs() < 1e-6);
        assert!((scale.unscale(z[3] as f64) - 10.0).abs() < 1e-5);
        // Saved and read back; a classifier's target has no values.
        let json = serde_json::to_string(&scaled).unwrap();
        assert!(json.starts_with(r#"{"column":"y","regression":{"mean":"#), "{json}");
        assert_eq!(serde_json::from_str::<TargetEncoding>(&json).unwrap(), scaled);
        assert!(TargetEncoding::binary("y", "1", "0").values(&t).unwrap().is_none());
        // A cell that is not a number is named; one value is nothing to regress on.
        let e = TargetEncoding::fit(&table(&["1", "x", "3"]), &roles).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("'x', not a finite number"), "{e}");
        assert!(TargetEncoding::fit(&table(&["2", "2", "2.0"]), &roles).is_err());
    }

    #[test]
    fn imputation_fills_the_training_median_and_most_frequent_value_with_indicators() {
        // Rows 0-5 train, 6-7 not. `a`: present training values 1, 2, 10, 4 (median 3; row 3 missing);
        // `c`: training values b, a, b, a, x (a and b tie: the first in sorted order, a; row 2 missing);
        // `k`: never missing in the training rows (no indicator), missing in row 7.
        let col = |cells: &[&str]| super::super::Column::from_cells(cells.iter().copied());
        let table = RawTable {
            source: "m.csv".into(),
            header: ["a", "c", "k", "s", "y"].map(String::from).to_vec(),
            columns: vec![
                col(&["1", "2", "10", "", "4", "NA", "7", ""]),
                col(&["b", "a", "", "b", "a", "x", "?", "b"]),
                col(&["u", "v", "u", "v", "u", "v", "u", ""]),
                col(&["0", "1", "0", "1", "0", "1", "0", "1"]),
                col(&["0", "0", "1", "1", "0", "1", "1", "0"]),
            ],
            lines: (2..10).collect(),
        };
        let roles = Roles {
            target: "y".into(),
            positive: None,
            sensitive: "s".into(),
            features: ["a", "c", "k"].map(String::from).to_vec(),
            categorical: vec![],
            bins: None,
            task: Default::default(),
        };
        let (t, s) = (TargetEncoding::fit(&table, &roles).unwrap(), SensitiveEncoding::fit(&table, &roles).unwrap());
        let train: Vec<usize> = (0..6).collect();
        let e = Encoding::fit(&table, &roles, &train, t.clone(), s.clone(), true).unwrap();
        let fills: Vec<(&str, bool)> = e.impute.iter().map(|i| (i.fill.as_str(), i.indicator)).collect();
        assert_eq!(fills, [("3", true), ("a", true), ("u", false)]);
        // Imputation, then standardisation: the statistics of 1, 2, 10, 3, 4, 3.
        let filled = [1.0, 2.0, 10.0, 3.0, 4.0, 3.0];
        let mean = filled.iter().sum::<f64>() / 6.0;
        let std = (filled.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 6.0).sqrt();
        assert!(
            matches!(&e.columns[0], ColumnEncoder::Numeric { mean: m, std: sd, .. } if (m - mean).abs() < 1e-12 && (sd - std).abs() < 1e-12)
        );
        // a, then c=a, c=b, c=x, then k=u, k=v, then the indicators of a and c.
        assert_eq!(e.n_features(), 8);
        assert_eq!(e.feature_names()[6..], ["a:missing".to_string(), "c:missing".to_string()]);
        let x = e.transform(&table).unwrap();
        // The text columns as dictionaries (a file's text columns are read so): the same fit and inputs.
        let mut dicts = table.clone();
        for c in &mut dicts.columns {
            *c = super::super::Column::from_texts(c.iter().collect::<Vec<_>>()).unwrap();
            assert!(c.dictionary().is_some());
        }
        let e_dicts = Encoding::fit(&dicts, &roles, &train, t.clone(), s.clone(), true).unwrap();
        assert_eq!(e_dicts, e);
        assert_eq!(e.transform_reporting(&dicts).unwrap(), e.transform_reporting(&table).unwrap());
        let row = |r: usize| &x[r * 8..(r + 1) * 8];
        let z = |v: f64| ((v - mean) / std) as f32;
        assert_eq!(row(3), [z(3.0), 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0], "a missing: the median, its indicator");
        assert_eq!(row(2), [z(10.0), 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0], "c missing: a, its indicator");
        assert_eq!(row(7), [z(3.0), 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0], "k missing: u, no indicator of its own");
        e.validate().unwrap();
        // Without imputation a missing cell stays an error (the rows holding one are dropped before), and
        // the width is the columns' alone.
        let plain = Encoding { impute: Vec::new(), ..e };
        assert_eq!(plain.n_features(), 6);
        assert!(matches!(plain.transform(&table), Err(Error::NotNumeric { line: 5, .. })));
        assert!(Encoding::fit(&table, &roles, &train, t, s, false).is_err());
    }

    #[test]
    fn a_dictionary_column_encodes_and_warns_as_its_text_cells_do() {
        let col = |cells: &[&str]| super::super::Column::from_cells(cells.iter().copied());
        let table = |c: super::super::Column| RawTable {
            source: "d.csv".into(),
            header: vec!["c".into()],
            columns: vec![c],
            lines: (2..9).collect(),
        };
        let e = Encoding {
            columns: vec![ColumnEncoder::Categorical { name: "c".into(), categories: vec!["a".into(), "b".into()] }],
            ..encoding(0)
        };
        let cells = ["b", "q", "a", "q", "r", "b", "q"];
        let text = table(col(&cells));
        let dict = table(super::super::Column::from_texts(cells).unwrap());
        assert!(dict.columns[0].dictionary().is_some());
        let (x, unseen) = e.transform_reporting(&dict).unwrap();
        assert_eq!((x.clone(), unseen.clone()), e.transform_reporting(&text).unwrap());
        assert_eq!(x, [0., 1., 0., 0., 1., 0., 0., 0., 0., 0., 0., 1., 0., 0.]);
        assert!(
            unseen.len() == 1 && unseen[0].contains("4 cell(s)") && unseen[0].contains("'q' on line 3"),
            "{unseen:?}"
        );
    }

    #[test]
    fn a_text_column_past_the_limit_is_refused_naming_it() {
        let n = MAX_CATEGORIES + 50;
        let header = vec!["id".to_string(), "s".to_string(), "y".to_string()];
        let ids: Vec<String> = (0..n).map(|i| format!("u{i}")).collect();
        let table = RawTable {
            source: "ids.csv".into(),
            header,
            columns: vec![
                super::super::Column::from_cells(ids.iter().map(String::as_str)),
                super::super::Column::from_cells((0..n).map(|i| ["0", "1"][i % 2])),
                super::super::Column::from_cells((0..n).map(|i| ["0", "1"][(i / 2) % 2])),
            ],
            lines: (2..n as u64 + 2).collect(),
        };
        let roles = Roles {
            target: "y".into(),
            positive: None,
            sensitive: "s".into(),
            features: vec!["id".into()],
            categorical: vec![],
            bins: None,
            task: Default::default(),
        };
        let (t, s) = (TargetEncoding::fit(&table, &roles).unwrap(), SensitiveEncoding::fit(&table, &roles).unwrap());
        let all: Vec<usize> = (0..n).collect();
        let err = Encoding::fit(&table, &roles, &all, t.clone(), s.clone(), false).unwrap_err();
        assert!(
            matches!(&err, Error::TooManyCategories { column, count, .. } if column == "id" && *count == n),
            "{err}"
        );
        // At the limit it is encoded.
        Encoding::fit(&table, &roles, &all[..MAX_CATEGORIES], t, s, false).unwrap();
    }
}
