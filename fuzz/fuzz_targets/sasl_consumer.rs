#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| odradek_fuzz::sasl_consumer(data));
