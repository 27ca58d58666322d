//! Fuzz target: `s4db::fuzzing::scan` on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    s4db::fuzzing::scan(data);
});
