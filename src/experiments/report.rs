//! The results report (`fairbits report`): an introduction, then one section per sweep directory, written
//! by the grid that made it ([`super::tabular::report_section`], [`super::images::report_section`]): tables
//! (mean ± std over seeds), plots, and answers computed from the numbers.

use crate::error::Result;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Writes the report for the sweep directories `from` into `out` (Markdown, plots linked relative to it).
pub fn write_report(from: &[PathBuf], out: &Path, command: &str) -> Result<()> {
    let base = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut md = String::new();
    let _ = writeln!(md, "# fairbits results\n");
    let _ = writeln!(
        md,
        "Produced by `{command}` from the sweeps in {}. Mean ± sample standard deviation over seeds; \
        every metric on the held-out test split; sampled inference (one fresh code per row, averaged over draws) \
        unless a sweep says otherwise. Methods: `sqnn` (the paper: per-neuron MI penalty), `sqnn-joint` (exact joint \
        MI penalty on a 12-neuron layer, gamma ramped over 10 epochs), `mlp` (same architecture at full precision, \
        no penalty), `adversarial` (full precision, gradient-reversal adversary of weight gamma). Probe AUCs are for \
        the sensitive attribute (0.5 = nothing recovered); `codes` means one sampled code per row (what the \
        certificate covers); for `mlp` and `adversarial` the probes read the hidden layer itself. At gamma 0 \
        the adversary has no effect, so `adversarial` trains the same network as `mlp` and their points coincide \
        in the plots.\n",
        from.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", ")
    );
    for dir in from {
        if dir.join("image_sweep.json").exists() {
            md.push_str(&super::images::report_section(dir, &base)?);
        } else {
            md.push_str(&super::tabular::report_section(dir, &base)?);
        }
    }
    crate::files::write_atomic(out, md.as_bytes())
}
