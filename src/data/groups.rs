//! The sensitive attribute as groups: several columns combined into intersectional groups (`sex,race`: one
//! group per pair of values, labelled `Female & Black`, as the Python package labels a frame of groups), or
//! a numeric column cut into quantile bins (`sensitive_bins`), so that the MI and the certificate of an age
//! or a mass are over a few groups of useful size rather than one group per distinct number.

use super::encoding::SensitiveEncoding;
use super::table::{is_missing, number_text, parse_number, Column, RawTable};
use crate::error::{Error, Result};

/// At most this many distinct numbers are taken as the groups of a numeric sensitive column without bins:
/// beyond it the column is a measurement, not a label (an age gives 71 groups, and every bound 1).
pub const MAX_NUMERIC_GROUPS: usize = 10;

/// Joins the cells of intersectional groups (the Python package joins a frame's columns the same way).
const JOIN: &str = " & ";

/// Makes the sensitive column `sensitive` of `table` what the model's groups are read from: the combined
/// column when it names several columns (`a,b`), then its cells replaced by their bins when bins are asked
/// for (`bins`: quantiles of these rows) or were fitted (`saved`: a model's edges). Returns the edges used.
pub fn derive(
    table: &mut RawTable,
    sensitive: &str,
    bins: Option<usize>,
    saved: Option<&SensitiveEncoding>,
) -> Result<Option<Vec<f64>>> {
    combine(table, sensitive)?;
    let edges = match (saved.and_then(|s| s.bins.clone()), bins) {
        (Some(edges), _) => edges,
        (None, Some(k)) => quantile_edges(table, sensitive, k)?,
        (None, None) => return Ok(None),
    };
    bin(table, sensitive, &edges)?;
    Ok(Some(edges))
}

/// Adds the column `a,b` (cells `va & vb`; missing when either is) when `sensitive` is not a column itself
/// but a comma-separated list of columns.
fn combine(table: &mut RawTable, sensitive: &str) -> Result<()> {
    if table.col(sensitive).is_ok() || !sensitive.contains(',') {
        return Ok(());
    }
    let parts = sensitive.split(',').map(str::trim).map(|c| table.col(c)).collect::<Result<Vec<_>>>()?;
    let cells = (0..table.n_rows()).map(|r| {
        let values: Vec<&str> = parts.iter().map(|&c| table.columns[c].get(r)).collect();
        if values.iter().any(|v| is_missing(v)) {
            String::new()
        } else {
            values.join(JOIN)
        }
    });
    let combined = Column::from_cells(cells);
    table.set_column(sensitive, combined);
    Ok(())
}

/// The `k - 1` inner cut points at the `i / k` quantiles of the column's numbers (ties merged, so fewer
/// bins when the values are few).
fn quantile_edges(table: &RawTable, column: &str, k: usize) -> Result<Vec<f64>> {
    let mut values = numbers(table, column)?.into_iter().flatten().collect::<Vec<f64>>();
    values.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..k)
        .filter_map(|i| values.get(i * values.len() / k).copied())
        .filter(|e| values.first().is_some_and(|lo| e > lo))
        .collect();
    edges.dedup();
    Ok(edges)
}

/// The column's cells as numbers (`None` for a missing cell); a cell that is not a number is an error
/// naming its line.
fn numbers(table: &RawTable, column: &str) -> Result<Vec<Option<f64>>> {
    let cells = table.column(column)?;
    cells
        .iter()
        .enumerate()
        .map(|(r, v)| match (is_missing(v), parse_number(v)) {
            (true, _) => Ok(None),
            (false, Some(x)) if x.is_finite() => Ok(Some(x)),
            _ => Err(Error::NotNumeric {
                path: table.source.clone(),
                line: table.lines[r],
                column: column.to_string(),
                value: v.to_string(),
            }),
        })
        .collect()
}

/// Replaces each number by its bin's label: `1: < e1`, `2: [e1, e2)`, ..., `k: >= e(k-1)` (numbered so
/// that they sort in order).
fn bin(table: &mut RawTable, column: &str, edges: &[f64]) -> Result<()> {
    let text = |v: f64| {
        let mut s = String::new();
        number_text(v, &mut s);
        s
    };
    let width = (edges.len() + 1).to_string().len();
    let labels: Vec<String> = (0..=edges.len())
        .map(|i| {
            let range = match (i.checked_sub(1).map(|j| edges[j]), edges.get(i)) {
                (None, Some(&hi)) => format!("< {}", text(hi)),
                (Some(lo), Some(&hi)) => format!("[{}, {})", text(lo), text(hi)),
                (Some(lo), None) => format!(">= {}", text(lo)),
                (None, None) => "all".to_string(),
            };
            format!("{:0width$}: {range}", i + 1)
        })
        .collect();
    let cells = numbers(table, column)?
        .into_iter()
        .map(|v| v.map_or("", |x| labels[edges.partition_point(|&e| e <= x)].as_str()).to_string());
    let binned = Column::from_cells(cells);
    table.set_column(column, binned);
    Ok(())
}

/// Refuses a numeric sensitive column with more distinct values than [`MAX_NUMERIC_GROUPS`].
pub(crate) fn check_numeric(path: &str, column: &str, groups: &[String]) -> Result<()> {
    if groups.len() > MAX_NUMERIC_GROUPS && groups.iter().all(|g| parse_number(g).is_some()) {
        return Err(Error::NumericGroups { path: path.into(), column: column.into(), count: groups.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(cols: &[(&str, &[&str])]) -> RawTable {
        let header = cols.iter().map(|(n, _)| n.to_string()).collect();
        let columns = cols.iter().map(|(_, c)| Column::from_cells(c.iter())).collect();
        let n = cols[0].1.len() as u64;
        RawTable { source: "t.csv".into(), header, columns, lines: (2..n + 2).collect() }
    }

    #[test]
    fn several_columns_form_intersectional_groups() {
        let mut t = table(&[("sex", &["F", "M", "F", "?"]), ("race", &["A", "A", "B", "B"])]);
        assert_eq!(derive(&mut t, "sex,race", None, None).unwrap(), None);
        let got: Vec<&str> = t.column("sex,race").unwrap().iter().collect();
        assert_eq!(got, ["F & A", "M & A", "F & B", ""]);
        assert!(matches!(derive(&mut t, "sex,colour", None, None), Err(Error::MissingColumn { .. })));
    }

    #[test]
    fn numbers_are_cut_at_their_quantiles_and_saved_edges_are_reused() {
        let ages: Vec<String> = (20..60).map(|a| a.to_string()).collect();
        let cells: Vec<&str> = ages.iter().map(String::as_str).collect();
        let mut t = table(&[("age", &cells)]);
        let edges = derive(&mut t, "age", Some(4), None).unwrap().unwrap();
        assert_eq!(edges, [30.0, 40.0, 50.0]);
        let got: Vec<&str> = t.column("age").unwrap().iter().collect();
        assert_eq!((got[0], got[10], got[39]), ("1: < 30", "2: [30, 40)", "4: >= 50"));
        // Held-out rows take the model's edges, not their own quantiles.
        let saved = SensitiveEncoding { column: "age".into(), groups: vec![], bins: Some(edges) };
        let mut held = table(&[("age", &["18", "45", "?", "90"])]);
        derive(&mut held, "age", None, Some(&saved)).unwrap();
        let got: Vec<&str> = held.column("age").unwrap().iter().collect();
        assert_eq!(got, ["1: < 30", "3: [40, 50)", "", "4: >= 50"]);
        let mut bad = table(&[("age", &["18", "old"])]);
        assert!(matches!(derive(&mut bad, "age", Some(2), None), Err(Error::NotNumeric { line: 3, .. })));
    }

    #[test]
    fn many_distinct_numbers_are_refused_as_groups() {
        let many: Vec<String> = (0..=MAX_NUMERIC_GROUPS).map(|v| v.to_string()).collect();
        assert!(matches!(check_numeric("t", "age", &many), Err(Error::NumericGroups { count: 11, .. })));
        assert!(check_numeric("t", "age", &many[..MAX_NUMERIC_GROUPS]).is_ok());
        let text: Vec<String> = (0..=MAX_NUMERIC_GROUPS).map(|v| format!("g{v}")).collect();
        assert!(check_numeric("t", "country", &text).is_ok());
    }
}
