//! Fuzz target: `s4db::fuzzing::root` on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    s4db::fuzzing::root(data);
});
