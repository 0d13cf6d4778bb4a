//! The terminal: a progress bar drawn from the library's progress events, and the logs.

use fairbits::progress::{Event, Observer};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first Ctrl-C: training stops after the batch it is in, evaluation after its step.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Ctrl-C asks the work to stop where it can be left cleanly (the library checks between batches and
/// evaluation steps); a second Ctrl-C quits at once.
pub fn catch_ctrl_c() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted");
            std::process::exit(130);
        }
        eprintln!("\nstopping after the current step (Ctrl-C again to quit now)");
    });
}

/// A progress bar on the terminal (stderr) for every event: training epochs, evaluation steps, sweep runs.
/// Hidden when not wanted (`--quiet`, or stderr not a terminal).
pub struct TerminalBar(indicatif::ProgressBar);

impl TerminalBar {
    /// A bar, drawn when `visible`.
    pub fn new(visible: bool) -> Self {
        let bar = if visible { indicatif::ProgressBar::new(0) } else { indicatif::ProgressBar::hidden() };
        let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta} left)");
        if let Ok(style) = style {
            bar.set_style(style.progress_chars("=> "));
        }
        TerminalBar(bar)
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Observer for TerminalBar {
    fn event(&self, e: Event<'_>) {
        let (prefix, done, of, msg) = match e {
            Event::Epoch { epoch, of, loss } => ("training", epoch, of, format!("loss {loss:.4}")),
            Event::Evaluation { done, of, what } => ("evaluating", done, of, what.to_string()),
        };
        self.0.set_prefix(prefix);
        self.0.set_length(of as u64);
        self.0.set_position(done as u64);
        self.0.set_message(msg);
    }

    fn cancelled(&self) -> bool {
        INTERRUPTED.load(Ordering::Relaxed)
    }
}

/// Logs to stderr through `tracing`: `RUST_LOG` if set, else `info` (`warn` when `quiet`); colours only
/// on a terminal.
pub fn init_logs(quiet: bool) {
    let level = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    logs.with_target(false).without_time().init();
}
