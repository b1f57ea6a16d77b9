//! Fuzz target: `aihunt::fuzzing::rule_file` (see src/fuzzing.rs for what it covers).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    aihunt::fuzzing::rule_file(data);
});
