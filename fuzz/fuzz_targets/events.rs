//! Any bytes as an events file for `portmatrix report`, rendered to a page.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portmatrix_fuzz::report_events(data));
