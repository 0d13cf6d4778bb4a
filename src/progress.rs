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
