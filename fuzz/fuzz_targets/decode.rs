//! Frames of any link type through `decode_frame` and a small `Defragmenter`
//! (input layout: [`portmatrix_fuzz::decode_frames`]).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portmatrix_fuzz::decode_frames(data));
