//! When runs merge (FORMAT.md §4.7): the size-tiered rule a checkpoint
//! follows, so that a lookup consults few runs and each key is rewritten
//! O(log N) times over its life.
//!
//! A checkpoint turns the delta into a new run. Before writing it, the new
//! run absorbs the newest run while that run holds at most [`GROWTH`] times
//! the entries gathered so far, or while more than [`MAX_LIVE_RUNS`] runs
//! would remain. So going from newest to oldest, each run is more than
//! `GROWTH` times larger than all newer ones together, which bounds the
//! count by `log_GROWTH(N / k) + 1`; and an entry is rewritten when its run
//! is absorbed, which moves it one level up: about once per level. A new run that absorbs every run is a
//! new base: it holds only live keys, no tombstones.

/// The factor between the sizes of neighbouring runs.
pub(crate) const GROWTH: u64 = 4;

/// The most runs an index keeps (a lookup consults each).
pub(crate) const MAX_LIVE_RUNS: usize = 8;

/// How many of the newest runs a new run of `n` entries absorbs; `runs`
/// holds each run's entry count, oldest first.
pub(crate) fn runs_to_absorb(runs: &[u64], n: u64) -> usize {
    let mut gathered = n;
    let mut k = 0;
    while k < runs.len() {
        let newest_left = runs[runs.len() - 1 - k];
        let count_after = runs.len() - k + 1;
        if newest_left <= GROWTH.saturating_mul(gathered) || count_after > MAX_LIVE_RUNS {
            gathered = gathered.saturating_add(newest_left);
            k += 1;
        } else {
            break;
        }
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs after `commits` checkpoints of `k` entries each (no key repeats,
    /// so a merge's size is the sum of what it merges).
    fn simulate(commits: usize, k: u64) -> (Vec<u64>, u64) {
        let mut runs: Vec<u64> = Vec::new();
        let mut written = 0u64;
        for _ in 0..commits {
            let a = runs_to_absorb(&runs, k);
            let merged: u64 = runs.drain(runs.len() - a..).sum::<u64>() + k;
            written += merged;
            runs.push(merged);
        }
        (runs, written)
    }

    #[test]
    fn a_small_change_over_a_large_base_absorbs_nothing() {
        assert_eq!(runs_to_absorb(&[10_000_000], 1_000), 0);
        assert_eq!(runs_to_absorb(&[10_000_000, 3_000], 1_000), 1);
        assert_eq!(runs_to_absorb(&[10_000_000, 5_000], 1_000), 0);
    }

    #[test]
    fn an_empty_index_takes_the_run_as_its_base() {
        assert_eq!(runs_to_absorb(&[], 5), 0);
    }

    #[test]
    fn run_count_stays_small_and_rewrites_stay_logarithmic() {
        let (runs, written) = simulate(10_000, 1_000);
        assert!(runs.len() <= MAX_LIVE_RUNS, "{runs:?}");
        assert!(runs.windows(2).all(|w| w[0] > GROWTH * w[1]) || runs.len() == MAX_LIVE_RUNS);
        let total: u64 = runs.iter().sum();
        assert_eq!(total, 10_000 * 1_000);
        // O(log N) writes per entry: here 13, within log2 of the commits.
        let per_entry = written as f64 / total as f64;
        assert!(
            per_entry <= (10_000f64).log2() + 1.0,
            "each entry written {per_entry} times"
        );
    }

    #[test]
    fn the_cap_merges_even_when_sizes_differ_a_lot() {
        let runs = [
            1u64 << 40,
            1 << 35,
            1 << 30,
            1 << 25,
            1 << 20,
            1 << 15,
            1 << 10,
            1 << 5,
        ];
        assert_eq!(runs_to_absorb(&runs, 1), 1);
    }
}
