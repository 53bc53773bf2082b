//! Paired mode (`PAIRED=<filter>`): each case's two sides timed alternately.

use super::*;

/// Times `core` and `raw` alternately (order swapped every round) for about `budget`,
/// so both see the same machine load; returns the median time per iteration of each
/// and the median of the per-round ratios raw/core.
pub(super) fn paired(case: &mut Case, budget: Duration) -> (f64, f64, f64) {
    let time = |f: &mut Routine, reps: u32| {
        let start = Instant::now();
        for _ in 0..reps {
            f();
        }
        start.elapsed().as_secs_f64() * 1e9 / f64::from(reps)
    };
    time(&mut case.core, 2);
    time(&mut case.raw, 2);
    // Slices of a few milliseconds: long enough to time, short enough to interleave.
    let one = time(&mut case.core, 1);
    let reps = (3e6 / one).ceil().clamp(1.0, 10_000.0) as u32;
    let (mut core, mut raw, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    while (start.elapsed() < budget || ratios.len() < 20) && ratios.len() < 2000 {
        let (c, r) = if ratios.len() % 2 == 0 {
            let c = time(&mut case.core, reps);
            (c, time(&mut case.raw, reps))
        } else {
            let r = time(&mut case.raw, reps);
            (time(&mut case.core, reps), r)
        };
        core.push(c);
        raw.push(r);
        ratios.push(r / c);
    }
    (median(&mut core), median(&mut raw), median(&mut ratios))
}

pub(super) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `PAIRED=<filter>`: the paired measurement of every case whose name contains the
/// filter, printed and saved as `paired.json` next to criterion's results.
pub(super) fn run_paired(filter: &str, cases: &mut [Case]) {
    let budget = std::env::var("PAIRED_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_secs_f64);
    println!(
        "{:<32} {:>14} {:>14} {:>7}",
        "paired case", "tls-core", "raw", "ratio"
    );
    let mut json = Vec::new();
    for case in cases.iter_mut().filter(|c| c.name.contains(filter)) {
        let (core, raw, ratio) = paired(case, budget);
        println!(
            "{:<32} {:>11.1} us {:>11.1} us {ratio:>7.3}",
            case.name,
            core / 1e3,
            raw / 1e3
        );
        json.push(format!(
            "\"{}\":{{\"core_ns\":{core:.1},\"raw_ns\":{raw:.1},\"ratio\":{ratio:.4}}}",
            case.name
        ));
    }
    if let Some(dir) = criterion_dir() {
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::write(dir.join("paired.json"), format!("{{{}}}", json.join(",")));
        }
    }
}
