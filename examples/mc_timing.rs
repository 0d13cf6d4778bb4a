//! Times the Monte-Carlo kernels of evaluation on synthetic rows (issue 20's certificate speed): the byte
//! tables' `RowLogs::log_probs` of 2,000 codes drawn from every row (the joint MI's pass) and the population
//! certificate (demographic parity over every row, then equalised odds over each label's rows), each the
//! best of three, at 600,000 rows x m = 32, two groups (30% / 70%), two labels (25% / 75%). Each `p` is a
//! sigmoid of a uniform on `[-SCALE / 2, SCALE / 2]` (env `SCALE`, default 8; larger: more confident bits).
//! Prints the times and numbers (the mean of `log P_0(t) - log P(t)` over the codes, the plug-in TV and the
//! equalised-odds bound), so that a change to the kernel can be compared for speed and for the bits it moves.
//! Env: `SAMPLES` (codes, default 2,000), `ROWS` (default 600,000), `WEIGHTED` (set: the weighted certificate
//! of docs/design.md, section 4e, weights uniform on [0.5, 1.5]), `SEED` (the certificate's draws, default 1).
//! Usage: `cargo run --release --example mc_timing`.
use fairbits::eval::certificate::{population_weighted, TvMethod};
use fairbits::penalty::mi::{sample_codes, RowLogs};
use rand::Rng;
use std::time::Instant;
fn main() {
    let m = 32;
    let scale: f64 = std::env::var("SCALE").map(|v| v.parse().unwrap()).unwrap_or(8.0);
    let samples: usize = std::env::var("SAMPLES").map(|v| v.parse().unwrap()).unwrap_or(2000);
    let n: usize = std::env::var("ROWS").map(|v| v.parse().unwrap()).unwrap_or(600_000);
    let mut r = fairbits::rng::rng(0, fairbits::rng::Stream::Eval);
    let s: Vec<u32> = (0..n).map(|_| (r.random::<f64>() < 0.3) as u32).collect();
    let y: Vec<u8> = (0..n).map(|_| (r.random::<f64>() < 0.25) as u8).collect();
    let p: Vec<f64> = (0..n * m)
        .map(|k| 1.0 / (1.0 + (-((r.random::<f64>() - 0.5) * scale + 0.3 * s[k / m] as f64)).exp()))
        .collect();
    // WEIGHTED=1: the weighted certificate (docs/design.md, section 4e) with weights uniform on [0.5, 1.5].
    let w: Option<Vec<f64>> =
        std::env::var("WEIGHTED").is_ok().then(|| (0..n).map(|_| 0.5 + r.random::<f64>()).collect());
    let logs = RowLogs::new(&p, m, &s, 2);
    let all: Vec<usize> = (0..n).collect();
    let (_, codes) = sample_codes(&p, m, &all, samples, &mut r);
    let mut t_lp = f64::INFINITY;
    let mut lp = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        lp = logs.log_probs(&codes, true);
        t_lp = t_lp.min(t.elapsed().as_secs_f64());
    }
    let method = TvMethod { m_max: 12, samples, mc_share: 0.2 };
    let mut t_pop = f64::INFINITY;
    let mut pop = None;
    for _ in 0..3 {
        let mut r2 = fairbits::rng::rng(
            std::env::var("SEED").map(|v| v.parse().unwrap()).unwrap_or(1),
            fairbits::rng::Stream::Eval,
        );
        let t = Instant::now();
        pop = Some(population_weighted(&p, m, &s, 2, &y, 2, w.as_deref(), 0.95, method, "sample", &mut r2));
        t_pop = t_pop.min(t.elapsed().as_secs_f64());
    }
    let pop = pop.unwrap();
    let mi: f64 = lp.iter().map(|l| l[0] - l[2]).sum::<f64>() / lp.len() as f64;
    println!(
        "log_probs({samples}) {t_lp:.3}s, population {t_pop:.3}s  [{mi:.12} {:.12} {:.12}]",
        pop.tv_plugin, pop.eo_gap_bound
    );
}
