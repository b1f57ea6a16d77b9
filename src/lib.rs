//! aihunt: offline threat hunting in exported generative-AI logs.
//!
//! Data flows one way (DESIGN §3): [`input`] walks, decompresses and frames the logs,
//! [`record`] classifies each JSON record and normalizes it into a [`record::Record`],
//! [`pipeline`] runs that in parallel with results in input order, and [`report`] writes what
//! came out. [`app`] wires the commands together; `main` only maps the outcome to an exit code.

pub mod alert;
pub mod app;
pub mod cli;
pub mod config;
pub mod detect;
pub mod eval;
#[doc(hidden)]
pub mod faults;
#[doc(hidden)]
pub mod fuzzing;
pub mod gen;
pub mod input;
pub mod intel;
pub mod pipeline;
pub mod record;
pub mod report;
pub mod rules;
pub mod rules_cmd;
pub mod scan;
pub mod state;
pub mod stats;
pub mod suppress;
mod swar;
#[cfg(test)]
mod test_fixtures;
pub mod traffic;
