//! A short, deterministic fuzz of every decoder, run with the tests: each
//! fuzz entry point over the seed corpus in fuzz/corpus and thousands of
//! mutations of it (bit flips, byte changes, truncations, splices). None may
//! panic. The long runs use cargo-fuzz (scripts/fuzz.sh).

#[path = "common/data.rs"]
mod data;

use std::path::Path;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(!out.is_empty(), "no seeds for {target}");
    out.push(Vec::new());
    out
}

fn mutate(target: &str, run: fn(&[u8]), rounds: usize) {
    let seeds = seeds(target);
    let mut rng = data::Xorshift::default();
    let mut rand = move |n: usize| rng.below(n.max(1) as u64) as usize;
    for seed in &seeds {
        run(seed);
        for _ in 0..rounds {
            let mut m = seed.clone();
            match rand(4) {
                0 if !m.is_empty() => {
                    let i = rand(m.len());
                    m[i] ^= 1 << rand(8);
                }
                1 if !m.is_empty() => {
                    for _ in 0..=rand(8) {
                        let i = rand(m.len());
                        m[i] = rand(256) as u8;
                    }
                }
                2 => m.truncate(rand(m.len() + 1)),
                _ => {
                    let other = &seeds[rand(seeds.len())];
                    let at = rand(m.len() + 1);
                    let from = rand(other.len() + 1);
                    m.splice(at..at, other[from..].iter().take(64).copied());
                }
            }
            run(&m);
        }
    }
}

#[test]
fn the_record_decoder_survives_mutations() {
    mutate("record", s4db::fuzzing::record, 3000);
}

#[test]
fn the_segment_scanner_survives_mutations() {
    mutate("scan", s4db::fuzzing::scan, 300);
}

#[test]
fn the_index_decoder_survives_mutations() {
    mutate("index", s4db::fuzzing::index, 1000);
}

#[test]
fn the_root_decoder_survives_mutations() {
    mutate("root", s4db::fuzzing::root, 3000);
}

#[test]
fn page_lookup_survives_mutations() {
    mutate("page", s4db::fuzzing::page, 3000);
}

#[test]
fn the_python_s4db_decoders_survive_mutations() {
    mutate("python_s4db", s4db::fuzzing::python_s4db, 3000);
}
