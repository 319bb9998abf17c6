//! Any bytes as a pcap or pcapng file, read to the end or to the first error.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portmatrix_fuzz::read_capture(data));
