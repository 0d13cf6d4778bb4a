//! How long work reports its progress to the caller (the command line draws a bar from it; a library user
//! may log it or ignore it). No terminal type crosses this boundary.

/// A progress event.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// An epoch ended.
    Epoch {
        /// The epoch (1-based).
        epoch: usize,
        /// Epochs planned.
        of: usize,
        /// Its mean training loss.
        loss: f64,
    },
    /// Evaluation advanced.
    Evaluation {
        /// Steps done.
        done: usize,
        /// Steps planned.
        of: usize,
        /// What is being done.
        what: &'a str,
    },
}

/// Receives progress events (from several threads at once during evaluation).
pub trait Observer: Sync {
    /// One event.
    fn event(&self, event: Event<'_>);

    /// Asked between training batches: `true` stops training with [`crate::Error::Interrupted`] (a
    /// Python caller pressed Ctrl-C while the work ran without the interpreter's lock).
    fn cancelled(&self) -> bool {
        false
    }
}

/// Ignores every event.
impl Observer for () {
    fn event(&self, _: Event<'_>) {}
}

/// A closure that sees every event.
impl<F: Fn(Event<'_>) + Sync> Observer for F {
    fn event(&self, event: Event<'_>) {
        self(event)
    }
}

/// A progress bar on the terminal (stderr) for every event: training epochs, evaluation steps, sweep runs.
/// Hidden when not wanted (`--quiet`, or stderr not a terminal).
pub struct TerminalBar(indicatif::ProgressBar);

impl TerminalBar {
    /// A bar, drawn when `visible`.
    pub fn new(visible: bool) -> Self {
        let bar = if visible { indicatif::ProgressBar::new(0) } else { indicatif::ProgressBar::hidden() };
        let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta} left)");
        bar.set_style(style.expect("a valid template").progress_chars("=> "));
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
