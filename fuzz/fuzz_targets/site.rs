//! Any bytes as a site file: parsed, validated and, when valid, tied to the
//! built-in matrix and asked for roles and exceptions.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portmatrix_fuzz::load_site(data));
