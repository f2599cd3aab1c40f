#![no_main]
//! Any bytes, read as a préétabli or a declaration: no panic, and a file that is accepted is
//! written back byte for byte.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ebds::fuzz_read(data));
