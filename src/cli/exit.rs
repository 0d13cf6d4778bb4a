//! How a failure reaches the user: the message with the command line's names for parameters (its flags),
//! and the documented exit code of the library's [`ErrorKind`].

use fairbits::{Error, ErrorKind, Param};

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
