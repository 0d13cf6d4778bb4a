//! The missing-value policy (`--missing`): rows with a missing feature value dropped (the default), refused,
//! or imputed with the training rows' median / most frequent value and an indicator input, the encoders
//! saved with the model so that `predict` and `eval` fill new rows the same way.

mod common;
use common::*;

/// `data.csv` (600 synthetic rows) with every 11th `x2` and every 17th `colour` emptied; returns how many
/// rows miss a value.
fn holed(dir: &std::path::Path) -> usize {
    write_synthetic(&dir.join("full.csv"), 600, 5);
    let text = std::fs::read_to_string(dir.join("full.csv")).unwrap();
    let mut out = String::new();
    let mut holes = 0;
    for (i, line) in text.lines().enumerate() {
        let mut cells: Vec<&str> = line.split(',').collect();
        let (a, b) = (i > 0 && i % 11 == 0, i > 0 && i % 17 == 0);
        if a {
            cells[1] = "";
        }
        if b {
            cells[3] = "NA";
        }
        holes += (a || b) as usize;
        out += &(cells.join(",") + "\n");
    }
    std::fs::write(dir.join("data.csv"), out).unwrap();
    holes
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap()
}

#[test]
fn each_policy_drops_refuses_or_imputes_and_a_saved_model_imputes_new_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let holes = holed(d);
    let train = "train --input data.csv --target y --sensitive s --epochs 2 --hidden 8,4 --forest-trees 3 --json \
                 --reproducible";
    let dropped = json(&fairbits(d, &words(&format!("{train} --out drop"))));
    assert_eq!(dropped["n_dropped"], holes);
    let o = fairbits(d, &words(&format!("{train} --missing error")));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("data.csv: line 12: column 'x2' has a missing value ('')"), "{}", stderr(&o));
    let imputed = json(&fairbits(d, &words(&format!("{train} --missing impute --out impute"))));
    assert_eq!(imputed["n_dropped"], 0);
    assert_eq!(imputed["n_train"].as_u64().unwrap() + imputed["n_test"].as_u64().unwrap(), 600);
    // The policy and the fills are saved with the encoders; the default policy writes neither.
    let config = |m: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join(m).join("config.json")).unwrap()).unwrap()
    };
    let (c, plain) = (config("impute"), config("drop"));
    assert_eq!(c["data"]["missing"], "impute");
    assert!(plain["data"].get("missing").is_none() && plain["encoding"].get("impute").is_none());
    let fills = c["encoding"]["impute"].as_array().unwrap();
    let indicators: Vec<bool> = fills.iter().map(|f| f["indicator"].as_bool().unwrap()).collect();
    assert_eq!(indicators, [false, true, false, true], "x1, x2, noise, colour: the columns with holes");
    // predict fills every row (the default model skips the holed ones), eval rebuilds the same split.
    let o = fairbits(d, &words("predict --model impute --input data.csv --output p.csv"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(d.join("p.csv")).unwrap().lines().count(), 601);
    let o = fairbits(d, &words("predict --model drop --input data.csv --output q.csv"));
    assert_eq!(std::fs::read_to_string(d.join("q.csv")).unwrap().lines().count(), 601 - holes, "{}", stderr(&o));
    let again = json(&fairbits(d, &words("eval --model impute --json")));
    assert_eq!(again["task"], imputed["task"]);
    assert_eq!(again["n_dropped"], 0);
}
