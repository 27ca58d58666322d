//! Fuzz target: `s4db::fuzzing::python_s4db` (the Python s4db's index and
//! data file decoders, used by migration) on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    s4db::fuzzing::python_s4db(data);
});
