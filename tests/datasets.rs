//! The shipped datasets have exactly the rows and features of docs/design.md, section 6.

use fairbits::data::{Builtin, DataSpec, Prepared, Source, TableSpec};

fn prepare(spec: &TableSpec) -> fairbits::Result<Prepared> {
    DataSpec::Table(spec.clone()).prepare()
}

fn spec(name: Builtin, sensitive: Option<&str>) -> TableSpec {
    TableSpec {
        source: Source::Builtin { name, sensitive: sensitive.map(String::from) },
        test_size: 0.3,
        val_size: 0.0,
        seed: 0,
        include_sensitive: false,
        certify_size: 0.0,
        stream: false,
        missing: Default::default(),
    }
}

#[test]
fn adult_has_30162_rows_and_sex_as_sensitive() {
    let p = prepare(&spec(Builtin::Adult, None)).unwrap();
    assert_eq!(p.train.n + p.test.n, 30162);
    assert_eq!(p.n_dropped, 32561 - 30162);
    assert_eq!(p.encoding.as_ref().unwrap().sensitive.groups, vec!["Female", "Male"]);
    assert_eq!(p.encoding.as_ref().unwrap().target.positive, ">50K");
    // 6 numeric + 96 one-hot columns; a category can be missing from the training split only if rare.
    let d = p.train.d;
    assert!((101..=102).contains(&d), "{d} features");
    assert!(!p.encoding.as_ref().unwrap().feature_names().iter().any(|f| f.starts_with("sex")));
    let race = prepare(&spec(Builtin::Adult, Some("race"))).unwrap();
    assert_eq!(race.train.n_groups, 5);
}

#[test]
fn compas_has_5278_rows_african_american_zero() {
    let p = prepare(&spec(Builtin::Compas, None)).unwrap();
    assert_eq!(p.train.n + p.test.n, 5278);
    assert_eq!(p.encoding.as_ref().unwrap().sensitive.groups, vec!["African-American", "Caucasian"]);
    let names = p.encoding.as_ref().unwrap().feature_names();
    for leak in ["decile_score", "score_text", "is_recid", "c_charge_desc", "race"] {
        assert!(!names.iter().any(|f| f.starts_with(leak)), "{leak} must not be a feature");
    }
    assert!(names.contains(&"length_of_stay".to_string()));
}

#[test]
fn german_age_and_sex_variants() {
    let p = prepare(&spec(Builtin::German, None)).unwrap();
    assert_eq!(p.train.n + p.test.n, 1000);
    assert_eq!(p.encoding.as_ref().unwrap().sensitive.groups, vec!["0", "1"]);
    assert_eq!(p.encoding.as_ref().unwrap().target.positive, "1");
    assert!(!p.encoding.as_ref().unwrap().feature_names().iter().any(|f| f == "age"));
    let sex = prepare(&spec(Builtin::German, Some("sex"))).unwrap();
    assert_eq!(sex.encoding.as_ref().unwrap().sensitive.groups, vec!["female", "male"]);
    assert!(!sex.encoding.as_ref().unwrap().feature_names().iter().any(|f| f.starts_with("personal_status")));
    assert!(prepare(&spec(Builtin::German, Some("height"))).is_err());
}
