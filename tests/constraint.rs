//! The constraint search end to end on Adult with short training (docs/design.md, section 4d): the
//! certification rows are never read before the choice, an unreachable request is reported, not met
//! silently.

use fairbits::data::{Builtin, DataSpec, TableSpec};
use fairbits::estimator::constraint::{self, Constraint, SearchOptions};
use fairbits::Error;

fn short(c: Constraint) -> (fairbits::FairParams, Vec<f64>) {
    let (base, gammas) = constraint::recommended(c);
    (base.epochs(3).warmup_epochs(1), gammas[..2].to_vec())
}

#[test]
fn poisoned_certification_rows_do_not_change_the_choice() {
    let spec = DataSpec::Table(TableSpec { certify_size: 0.2, ..TableSpec::builtin(Builtin::Adult, 4) });
    let data = spec.prepare().unwrap();
    let c = Constraint::DemographicParity { max_gap: 0.2 };
    let (base, gammas) = short(c);
    let opts = SearchOptions { seed: 4, ..SearchOptions::default() };
    let clean = constraint::search(&base, &gammas, c, &data, &spec, &opts).unwrap();
    assert_eq!(clean.report.final_from, "the certification split");
    assert!(clean.report.selection_from.contains("carved"));
    // Poison the certification rows (and the test rows, which nothing in the search reads): every group
    // flipped, every feature negated.
    let mut poisoned = data.clone();
    for set in [poisoned.certify.as_mut().unwrap(), &mut poisoned.test] {
        set.s.iter_mut().for_each(|s| *s = 1 - *s);
        set.x = set.x.iter().map(|v| -v).collect::<Vec<f32>>().into();
    }
    let dirty = constraint::search(&base, &gammas, c, &poisoned, &spec, &opts).unwrap();
    assert_eq!(clean.report.candidates, dirty.report.candidates, "selection read the certification rows");
    assert_eq!(clean.report.chosen, dirty.report.chosen);
    assert_ne!(clean.report.bound, dirty.report.bound, "the certification rows were not read at all");
    // The model returned was trained on the same rows with the same seed: the same weights.
    let rows = &data.test.x[..data.test.d * 50];
    let a = clean.model.encode(rows, fairbits::model::Inference::Prob, 0).unwrap();
    let b = dirty.model.encode(rows, fairbits::model::Inference::Prob, 0).unwrap();
    assert_eq!(a, b);
}

#[test]
fn an_unreachable_request_is_reported_and_refused() {
    let spec = DataSpec::Table(TableSpec::builtin(Builtin::Adult, 5));
    let data = spec.prepare().unwrap();
    // Below the McDiarmid term of the test split (about 0.0275): no model can be certified there.
    let c = Constraint::DemographicParity { max_gap: 0.01 };
    let (base, gammas) = short(c);
    let found =
        constraint::search(&base, &gammas, c, &data, &spec, &SearchOptions { seed: 5, ..SearchOptions::default() })
            .unwrap();
    let r = &found.report;
    assert!(!r.met);
    assert_eq!(r.final_from, "the test split");
    let n = data.test.group_counts();
    let eps = fairbits::eval::certificate::mcdiarmid_eps(0.05, n[0], n[1]);
    assert!(r.bound >= eps && r.bound > 0.01, "{} vs eps {eps}", r.bound);
    assert!(r.message.contains("NOT met") && r.message.contains(&format!("{:.4}", r.bound)), "{}", r.message);
    let e = found.model_if_met().err().expect("an unmet request is an error");
    assert!(matches!(&e, Error::InvalidParam { param, .. } if *param == fairbits::Param::MaxCertifiedDp), "{e}");
    assert!(!e.to_string().contains("--"), "library errors name parameters, not flags: {e}");
}
