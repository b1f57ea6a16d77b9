//! Fuzz target: `aihunt::fuzzing::log_file` (see src/fuzzing.rs for what it covers).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    aihunt::fuzzing::log_file(data);
});
