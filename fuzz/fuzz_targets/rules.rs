//! Any bytes as a rules file: parsed, validated and, when valid, compiled.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portmatrix_fuzz::load_rules(data));
