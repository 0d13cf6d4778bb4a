//! `fairbits certify` and `--certify-size`: the population certificate of a saved encoder from held-out
//! rows, for two groups and for several (pairwise bounds), refusing the rows it was trained on.

mod common;
use common::*;

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", stdout(o), stderr(o)))
}

#[test]
fn certify_a_saved_encoder_with_five_groups_and_refuse_its_training_rows() {
    let dir = tempfile::tempdir().unwrap();
    write_law_like(&dir.path().join("law.csv"), 3000, 1);
    let o = fairbits(
        dir.path(),
        &words(concat!(
            "train --csv law.csv --target pass_bar --sensitive race --hidden 16,8 --penalty ",
            "joint --gamma 2 --epochs 10 --draws 1 --forest-trees 5 --out model --json",
        ))[..],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let trained = json(&o);
    let pop = &trained["certificate"]["population"];
    assert_eq!(pop["n_per_group"].as_array().unwrap().len(), 5, "{pop}");
    // Its own test split: the same certificate as training's metrics.
    let o = fairbits(dir.path(), &["certify", "--model", "model", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let own = json(&o);
    assert_eq!(own["rows_from"], "the model's test split");
    assert_eq!(own["population"], *pop);
    // Held-out rows of the same population, mixed with the whole training file: the training rows are
    // recognised and left out, the rest certified; pairwise over the five groups.
    write_law_like(&dir.path().join("audit.csv"), 1500, 2);
    let mut mixed = std::fs::read_to_string(dir.path().join("audit.csv")).unwrap();
    mixed += &std::fs::read_to_string(dir.path().join("law.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    std::fs::write(dir.path().join("mixed.csv"), mixed).unwrap();
    let args =
        ["certify", "--model", "model", "--csv", "mixed.csv", "--target", "pass_bar", "--sensitive", "race", "--json"];
    let o = fairbits(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let audit = json(&o);
    let removed = audit["rows_removed_as_training"].as_u64().unwrap();
    assert!(removed >= 2000, "training rows recognised: {removed}");
    assert!(audit["rows"].as_u64().unwrap() >= 1500 && audit["rows"].as_u64().unwrap() < 2500);
    let p = &audit["population"];
    for key in ["dp_gap_bound", "eo_gap_bound", "probe_auc_bound", "adversary_balanced_accuracy_bound"] {
        let v = p[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    assert!(p["tv_upper"].as_f64().unwrap() >= p["tv_plugin"].as_f64().unwrap());
    // A lower confidence gives a tighter bound.
    let o = fairbits(dir.path(), &[&args[..], &["--confidence", "0.8"]].concat());
    let loose = json(&o)["population"]["dp_gap_bound"].as_f64().unwrap();
    assert!(loose < p["dp_gap_bound"].as_f64().unwrap());
    assert!(stdout(&fairbits(dir.path(), &args[..args.len() - 1])).contains("population certificate of mixed for race"));
    // The training file itself: exactly its training rows are recognised; what is left is its test split.
    let o = fairbits(
        dir.path(),
        &["certify", "--model", "model", "--csv", "law.csv", "--target", "pass_bar", "--sensitive", "race", "--json"],
    );
    let again = json(&o);
    let (n_train, n_test) = (trained["n_train"].as_u64().unwrap(), trained["n_test"].as_u64().unwrap());
    // A test row whose features equal a training row's is left out too (rare; conservative).
    let removed = again["rows_removed_as_training"].as_u64().unwrap();
    assert!((n_train..n_train + 5).contains(&removed), "{removed} vs {n_train}: {}", stderr(&o));
    assert_eq!(again["rows"].as_u64().unwrap(), n_train + n_test - removed);
}

#[test]
fn a_certification_split_is_carved_before_training() {
    let (dir, _) = workdir();
    let base = words(
        "train --csv data.csv --target y --sensitive s --hidden 16,8 --epochs 3 --draws 1 --forest-trees 5 --json",
    );
    let plain = json(&fairbits(dir.path(), &base));
    let o = fairbits(dir.path(), &[&base[..], &["--certify-size", "0.25", "--out", "model"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let m = json(&o);
    let total = |v: &serde_json::Value| v["n_train"].as_u64().unwrap() + v["n_test"].as_u64().unwrap();
    assert_eq!(total(&plain), 600);
    assert_eq!(total(&m), 450, "a quarter of the rows certify and neither train nor test");
    let per_group: u64 =
        m["certificate"]["population"]["n_per_group"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(per_group, 150);
    let o = fairbits(dir.path(), &["certify", "--model", "model", "--json"]);
    assert_eq!(json(&o)["rows_from"], "the model's certification split");
    let bad = fairbits(dir.path(), &[&base[..], &["--certify-size", "0.8"]].concat());
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

/// `certify --weights COLUMN` (docs/design.md, section 4e): equal weights give the unweighted certificate;
/// weights by colour give the weighted one, with each group's effective size `W_g^2 / sum w_i^2`; a bad
/// weight is refused naming its line; the other commands refuse the flag, and it needs held-out rows.
#[test]
fn certify_with_a_weights_column() {
    let dir = tempfile::tempdir().unwrap();
    write_synthetic(&dir.path().join("train.csv"), 1500, 1);
    let o = fairbits(
        dir.path(),
        &words("train --input train.csv --target y --sensitive s --hidden 8,4 --epochs 3 --draws 1 --forest-trees 3 --out model"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Held-out rows with two weight columns: all 1, and 3 for red rows, 0.5 for the others.
    write_synthetic(&dir.path().join("audit.csv"), 800, 2);
    let audit = std::fs::read_to_string(dir.path().join("audit.csv")).unwrap();
    let mut lines = audit.lines();
    let mut with_w = format!("{},one,w\n", lines.next().unwrap());
    let (mut total, mut squares) = ([0f64; 2], [0f64; 2]);
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        let w = if cells[3] == "red" { 3.0 } else { 0.5 };
        let g: usize = cells[4].parse().unwrap();
        (total[g], squares[g]) = (total[g] + w, squares[g] + w * w);
        with_w += &format!("{l},1,{w}\n");
    }
    std::fs::write(dir.path().join("audit_w.csv"), &with_w).unwrap();
    let base = "certify --model model --input audit_w.csv --target y --sensitive s --json";
    let run = |extra: &str| fairbits(dir.path(), &words(&format!("{base} {extra}")));
    let plain = json(&run(""));
    let ones = json(&run("--weights one"));
    let mut ones_pop = ones["population"].clone();
    let n_eff = ones_pop.as_object_mut().unwrap().remove("effective_n_per_group").unwrap();
    assert_eq!(ones_pop, plain["population"]);
    assert_eq!(n_eff[0].as_f64().unwrap(), plain["population"]["n_per_group"][0].as_f64().unwrap());
    let o = run("--weights w");
    assert!(o.status.success(), "{}", stderr(&o));
    let weighted = json(&o)["population"].clone();
    for g in 0..2 {
        let want = total[g] * total[g] / squares[g];
        let got = weighted["effective_n_per_group"][g].as_f64().unwrap();
        assert!((got - want).abs() < 1e-6 * want, "group {g}: {got} vs {want}");
    }
    assert_ne!(weighted["tv_plugin"], plain["population"]["tv_plugin"]);
    assert!(weighted["tv_upper"].as_f64().unwrap() >= weighted["tv_plugin"].as_f64().unwrap());
    // A negative weight on the file's line 6, and a missing one on line 4.
    for (line, cell, says) in [(6usize, "-1", "line 6 holds -1"), (4, "", "line 4 holds ''")] {
        let mut rows: Vec<String> = with_w.lines().map(String::from).collect();
        let cut = rows[line - 1].rfind(',').unwrap();
        rows[line - 1] = format!("{},{cell}", &rows[line - 1][..cut]);
        std::fs::write(dir.path().join("bad.csv"), rows.join("\n") + "\n").unwrap();
        let o =
            fairbits(dir.path(), &words("certify --model model --input bad.csv --target y --sensitive s --weights w"));
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(err.contains(says) && err.contains("weights column 'w'"), "{err}");
    }
    let o = fairbits(dir.path(), &words("eval --model model --input audit_w.csv --target y --sensitive s --weights w"));
    assert!(!o.status.success() && stderr(&o).contains("only certify reads row weights"), "{}", stderr(&o));
    let o = fairbits(dir.path(), &words("certify --model model --weights w"));
    assert!(!o.status.success() && stderr(&o).contains("weights are a column of held-out rows"), "{}", stderr(&o));
    let o = fairbits(dir.path(), &words("train --input train.csv --target y --sensitive s --weights w --out m2"));
    assert!(!o.status.success(), "train takes no weights column");
}
