//! The shipped datasets (Adult, COMPAS, German credit) with exactly the preprocessing of docs/design.md, section 6.
//! The raw files are compiled into the binary, so `--dataset adult` works from any directory.

use super::table::{is_missing, parse_number, Column, Duplicates, RawTable};
use super::Roles;
use crate::error::{Error, Result};
use crate::schema::Param;
use serde::{Deserialize, Serialize};

const ADULT: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/adult.csv"));
const COMPAS: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/compas-scores-two-years.csv"));
const GERMAN: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/german.csv"));

/// A shipped dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Builtin {
    /// UCI Adult: income > 50K; sensitive `sex` (default) or `race`.
    Adult,
    /// ProPublica COMPAS: two-year recidivism; sensitive `race` (default) or `sex`.
    Compas,
    /// UCI German credit: good credit; sensitive `age` (> 25, default) or `sex`.
    German,
}

named_choices!(Builtin, Dataset, { Adult => "adult", Compas => "compas", German => "german" });

impl Builtin {
    /// The sensitive attributes this dataset offers; the first is the default.
    pub fn sensitive_choices(self) -> &'static [&'static str] {
        match self {
            Builtin::Adult => &["sex", "race"],
            Builtin::Compas => &["race", "sex"],
            Builtin::German => &["age", "sex"],
        }
    }

    /// Reads the raw file and adds the derived columns (no row filters).
    pub fn raw(self) -> Result<RawTable> {
        let (bytes, file) = match self {
            Builtin::Adult => (ADULT, "data/adult.csv"),
            Builtin::Compas => (COMPAS, "data/compas-scores-two-years.csv"),
            Builtin::German => (GERMAN, "data/german.csv"),
        };
        let mut t = RawTable::read(bytes, &format!("{file} (built in)"), Duplicates::Rename)?;
        derive_columns(self, &mut t)?;
        Ok(t)
    }

    /// The table after the dataset's row filters, and which columns play which role.
    pub fn load(self, sensitive: Option<&str>) -> Result<(RawTable, Roles)> {
        let sensitive = match sensitive {
            None => self.sensitive_choices()[0],
            Some(s) if self.sensitive_choices().contains(&s) => s,
            Some(s) => {
                return Err(Error::param(
                    Param::Sensitive,
                    s,
                    format!("dataset {} offers: {}", self.name(), self.sensitive_choices().join(", ")),
                ))
            }
        };
        let mut t = self.raw()?;
        let spec = match self {
            Builtin::Adult => {
                let target = "income-per-year";
                let features = t.header.iter().filter(|h| *h != target && *h != sensitive).cloned().collect();
                Roles {
                    bins: None,
                    task: super::Task::Classification,
                    target: target.into(),
                    positive: Some(">50K".into()),
                    sensitive: sensitive.into(),
                    features,
                    categorical: vec![],
                }
            }
            Builtin::Compas => {
                filter_compas(&mut t)?;
                let other = if sensitive == "race" { "sex" } else { "race" };
                let mut features: Vec<String> = [
                    "age",
                    "priors_count",
                    "juv_fel_count",
                    "juv_misd_count",
                    "juv_other_count",
                    "length_of_stay",
                    "age_cat",
                    "c_charge_degree",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                features.push(other.into());
                Roles {
                    bins: None,
                    task: super::Task::Classification,
                    target: "two_year_recid".into(),
                    positive: Some("1".into()),
                    sensitive: sensitive.into(),
                    features,
                    categorical: vec![],
                }
            }
            Builtin::German => {
                // `age_over_25` and `sex` are derived; the column they come from is not a feature.
                let (sens_col, source_col) =
                    if sensitive == "age" { ("age_over_25", "age") } else { ("sex", "personal_status") };
                let features = t
                    .header
                    .iter()
                    .filter(|h| !["credit", "age_over_25", "sex", source_col].contains(&h.as_str()))
                    .cloned()
                    .collect();
                Roles {
                    bins: None,
                    task: super::Task::Classification,
                    target: "credit".into(),
                    positive: Some("1".into()),
                    sensitive: sens_col.into(),
                    features,
                    categorical: vec![],
                }
            }
        };
        Ok((t, spec))
    }
}

/// Adds the columns a dataset's features or sensitive attribute are derived from. Applied both when
/// training and when encoding new rows of the same raw format; absent source columns are skipped.
pub fn derive_columns(which: Builtin, t: &mut RawTable) -> Result<()> {
    match which {
        Builtin::Adult => {}
        Builtin::Compas => {
            if let (Ok(a), Ok(b)) = (t.col("c_jail_in"), t.col("c_jail_out")) {
                let mut stay = Vec::with_capacity(t.n_rows());
                for r in 0..t.n_rows() {
                    let (i, o) = (t.columns[a].get(r), t.columns[b].get(r));
                    stay.push(match (parse_datetime_days(i), parse_datetime_days(o)) {
                        (Some(i), Some(o)) => format!("{}", o - i),
                        _ if is_missing(i) || is_missing(o) => String::new(),
                        _ => {
                            return Err(Error::Csv {
                                path: t.source.clone(),
                                line: t.lines[r],
                                message: format!(
                                    "c_jail_in/c_jail_out '{i}'/'{o}' are not dates (YYYY-MM-DD HH:MM:SS)"
                                ),
                            })
                        }
                    });
                }
                t.set_column("length_of_stay", Column::from_cells(stay));
            }
        }
        Builtin::German => {
            if let Ok(c) = t.col("age") {
                let cells: Vec<String> = t.columns[c]
                    .iter()
                    .map(|a| match parse_number(a) {
                        Some(v) => if v > 25.0 { "1" } else { "0" }.to_string(),
                        None => String::new(),
                    })
                    .collect();
                t.set_column("age_over_25", Column::from_cells::<String>(cells));
            }
            if let Ok(c) = t.col("personal_status") {
                // A92 and A95 are the female codes of attribute 9 (data/german.txt).
                let cells: Vec<String> = t.columns[c]
                    .iter()
                    .map(|v| match v {
                        "A92" | "A95" => "female".to_string(),
                        "A91" | "A93" | "A94" => "male".to_string(),
                        _ => String::new(),
                    })
                    .collect();
                t.set_column("sex", Column::from_cells::<String>(cells));
            }
        }
    }
    Ok(())
}

/// ProPublica's filters, then the African-American / Caucasian subset (docs/design.md, section 6).
fn filter_compas(t: &mut RawTable) -> Result<()> {
    let days = t.col("days_b_screening_arrest")?;
    let recid = t.col("is_recid")?;
    let degree = t.col("c_charge_degree")?;
    let score = t.col("score_text")?;
    let race = t.col("race")?;
    let keep: Vec<bool> = (0..t.n_rows())
        .map(|r| {
            let d = parse_number(t.columns[days].get(r));
            d.is_some_and(|d| (-30.0..=30.0).contains(&d))
                && t.columns[recid].get(r) != "-1"
                && t.columns[degree].get(r) != "O"
                && t.columns[score].get(r) != "N/A"
                && matches!(t.columns[race].get(r), "African-American" | "Caucasian")
        })
        .collect();
    t.retain_rows(&keep);
    Ok(())
}

/// Days since 1970-01-01 (fractional) of `YYYY-MM-DD[ HH:MM:SS]`.
fn parse_datetime_days(s: &str) -> Option<f64> {
    let (date, time) = s.split_once(' ').unwrap_or((s, "00:00:00"));
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut tm = time.split(':').map(|x| x.parse::<f64>().ok());
    let (hh, mm, ss) = (tm.next()??, tm.next().flatten()?, tm.next().flatten().unwrap_or(0.0));
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days as f64 + (hh * 3600.0 + mm * 60.0 + ss) / 86400.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_days() {
        assert_eq!(parse_datetime_days("1970-01-01 00:00:00"), Some(0.0));
        assert_eq!(parse_datetime_days("2000-03-01"), Some(11017.0));
        let a = parse_datetime_days("2013-08-13 06:03:42").unwrap();
        let b = parse_datetime_days("2013-08-14 05:41:20").unwrap();
        assert!((b - a - (23.0 * 3600.0 + 37.0 * 60.0 + 38.0) / 86400.0).abs() < 1e-9);
        assert_eq!(parse_datetime_days("yesterday"), None);
    }
}
