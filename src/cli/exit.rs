//! How a failure reaches the user: the message with the command line's names for parameters (its flags),
//! and the documented exit code of the library's [`ErrorKind`].

use fairbits::{Error, ErrorKind, Param};
use std::path::Path;

/// The command line's name for a parameter (its flag, with the value when there is one).
pub fn flag(p: Param, value: Option<&str>) -> Option<String> {
    let flag = format!("--{}", p.def().cli?);
    Some(match value {
        Some(v) if v.contains(' ') || v.is_empty() => format!("{flag} '{v}'"),
        Some(v) => format!("{flag} {v}"),
        None => flag,
    })
}

/// The exit code of a kind of failure (README, "Exit codes").
pub fn code(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::Runtime => 1,
        ErrorKind::Parameter => 2,
        ErrorKind::Data => 3,
        ErrorKind::Model => 4,
        ErrorKind::Diverged => 5,
        ErrorKind::Interrupted => 130,
    }
}

/// A failure, and what the user can do about it beyond the error's own hint.
pub struct Failure {
    /// The error.
    pub error: anyhow::Error,
    /// A line of advice printed after the error.
    pub advice: Option<String>,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure { error: e.into(), advice: None }
    }
}

/// What can be done about an interrupted training: continue from the checkpoint the output directory
/// holds, or start again (nothing was saved).
pub fn resume_advice(e: &anyhow::Error, out: Option<&Path>) -> Option<String> {
    if !e.chain().any(|c| matches!(c.downcast_ref::<Error>(), Some(Error::Interrupted { .. }))) {
        return None;
    }
    let Some(dir) = out else {
        return Some("nothing was saved (train with --out DIR to be able to resume)".to_string());
    };
    let checkpoint = dir.join("checkpoint");
    let epoch = fairbits::files::read_json::<serde_json::Value>(&checkpoint.join("checkpoint.json"))
        .ok()
        .and_then(|v| v.get("epoch").and_then(|e| e.as_u64()));
    let resume = format!("fairbits train --resume {}", dir.display());
    match (epoch, checkpoint.join("run.json").exists()) {
        (Some(epoch), _) => Some(format!("the training state of epoch {epoch} is saved: continue with `{resume}`")),
        (None, true) => Some(format!("no epoch was checkpointed yet: `{resume}` starts the training again")),
        _ => None,
    }
}

/// The message of a failure (each cause once, the library's errors with flags for parameters) and its
/// exit code (the first library error's; 1 for any other failure).
pub fn describe(e: &anyhow::Error) -> (String, i32) {
    let mut message = String::new();
    for cause in e.chain() {
        let text = match cause.downcast_ref::<Error>() {
            Some(err) => err.render(&flag),
            None => cause.to_string(),
        };
        if !message.contains(&text) {
            message += &if message.is_empty() { text } else { format!(": {text}") };
        }
    }
    let code = e.chain().find_map(|c| c.downcast_ref::<Error>()).map_or(1, |err| code(err.kind()));
    (message, code)
}
