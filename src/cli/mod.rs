//! The command line: its arguments ([`args`], built from the library's parameter schema), what it prints
//! ([`show`]: tables, verdicts; [`report`]: the Markdown report), the terminal ([`terminal`]: progress bar
//! and logs) and how a library error becomes a message and an exit code ([`exit`]).

pub mod args;
pub mod exit;
pub mod report;
pub mod show;
pub mod terminal;
