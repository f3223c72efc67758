#![no_main]
//! cargo-fuzz entry point; the body lives in `weir_fuzz::targets::sasl` (shared with AFL).

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_fuzz::targets::sasl(data));
