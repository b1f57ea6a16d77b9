//! Fuzz target: `aihunt::fuzzing::prompt_text` (see src/fuzzing.rs for what it covers).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    aihunt::fuzzing::prompt_text(data);
});
