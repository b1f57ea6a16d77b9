//! Report sinks: where results go (stdout or an atomically replaced file), the run summary,
//! and making attacker-controlled text safe to show on a terminal.

pub mod formats;
pub mod output;
pub mod progress;
pub mod summary;
pub mod terminal;
