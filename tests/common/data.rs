//! The benchmark data shape, shared by tests, benches and examples:
//! keys `key%08d`; values with even i compressible text, odd i random hex.
//! (Included with `#[path]` by benches and examples, so there is one copy.)
#![allow(dead_code)]

/// `key%08d`.
pub fn key_for(i: u64) -> String {
    format!("key{i:08}")
}

/// A `len`-byte value: compressible text for even `i`, random hex for odd.
pub fn value_for(i: u64, len: usize) -> Vec<u8> {
    if i.is_multiple_of(2) {
        let text = format!("value {i} of the quick brown fox jumps over the lazy dog ");
        text.bytes().cycle().take(len).collect()
    } else {
        let mut rng = Xorshift::new(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        (0..len)
            .map(|_| b"0123456789abcdef"[(rng.next_u64() & 15) as usize])
            .collect()
    }
}

/// xorshift64: the one pseudo-random sequence of the tests, benches and
/// examples (`benches/compare/workload.py` repeats it in Python).
#[derive(Debug, Clone)]
pub struct Xorshift(u64);

impl Xorshift {
    /// The seed the benches and examples start from ([`Xorshift::default`]).
    pub const SEED: u64 = 0x2545_F491_4F6C_DD1D;

    /// A sequence from `seed`, which must not be 0 (it would stay 0).
    pub fn new(seed: u64) -> Self {
        Xorshift(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

impl Default for Xorshift {
    fn default() -> Self {
        Xorshift::new(Self::SEED)
    }
}

/// A whole number above 0 given after `flag` on an example's command line.
///
/// # Errors
/// A message naming `flag` when it is missing, not a number, or 0.
pub fn count_arg(value: Option<String>, flag: &str) -> Result<u64, String> {
    value
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{flag} takes a whole number above 0"))
}

/// Prints an example's `usage` and exits with success (`-h`, `--help`).
pub fn help(usage: &str) -> ! {
    println!("{usage}");
    std::process::exit(0);
}

/// Where an example works when it is not told: a fresh temporary directory
/// (returned, so that it lives as long as the run) holding the database at
/// `db/` and a `file://` remote at `remote/`. `dir` and `remote` override them.
///
/// # Errors
/// `s4db::Error::Io` when the temporary directory cannot be made.
pub fn workplace(
    dir: Option<std::path::PathBuf>,
    remote: Option<String>,
) -> s4db::Result<(tempfile::TempDir, std::path::PathBuf, String)> {
    let tmp = tempfile::tempdir().map_err(|e| s4db::Error::Io {
        context: "creating a temporary directory".into(),
        source: e,
    })?;
    let dir = dir.unwrap_or_else(|| tmp.path().join("db"));
    let remote =
        remote.unwrap_or_else(|| format!("file://{}", tmp.path().join("remote").display()));
    Ok((tmp, dir, remote))
}
