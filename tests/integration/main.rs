//! End-to-end tests of the `aihunt` binary: one test binary, small helpers in `util`.

mod util;

mod accounting;
mod alerts;
mod behavior;
mod incremental;
mod content_rules;
mod fuzz_regressions;
mod hostile;
mod input;
mod kinds;
mod metadata;
mod text_kinds;
mod otel;
mod rules;
mod secrets;
