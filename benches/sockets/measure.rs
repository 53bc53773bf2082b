//! Settings from the environment, the paired measurement (ours and peer alternately, order
//! swapped every round) and the table it prints.

use super::*;

pub(super) struct Settings {
    /// Connections per slice in the connection-rate cases.
    pub(super) conns: usize,
    /// Rounds per case (each round times both sides once).
    pub(super) rounds: usize,
    /// Rounds for the bulk cases.
    pub(super) bulk_rounds: usize,
    /// Bytes per bulk transfer.
    pub(super) bulk: u64,
    pub(super) filter: Option<String>,
}

pub(super) fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

impl Settings {
    pub(super) fn from_env() -> Self {
        let quick = std::env::var_os("QUICK").is_some_and(|v| v != "0");
        let (conns, rounds, bulk_rounds, bulk_mib) = if quick {
            (100, 9, 3, 256)
        } else {
            (300, 15, 5, 1024)
        };
        let rounds = env_num("ROUNDS").map_or(rounds, |n| n as usize);
        Self {
            conns: env_num("CONNS").map_or(conns, |n| n as usize),
            rounds,
            bulk_rounds: env_num("ROUNDS").map_or(bulk_rounds, |n| n as usize),
            bulk: env_num("BULK_MIB").unwrap_or(bulk_mib) << 20,
            filter: std::env::args().skip(1).find(|a| !a.starts_with('-')),
        }
    }

    pub(super) fn wants(&self, case: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| case.contains(f))
    }
}

/// What one slice measured: an amount (connections or bytes) over a time.
pub(super) type Slice = (f64, Duration);

pub(super) struct Row {
    pub(super) case: String,
    pub(super) peer: &'static str,
    pub(super) unit: &'static str,
    pub(super) ours: f64,
    pub(super) theirs: f64,
    pub(super) ratio: f64,
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) target: f64,
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `ours` and `peer` alternately for `rounds` rounds, swapping the order every round,
/// after one untimed warm-up slice each.
#[allow(clippy::too_many_arguments)]
pub(super) fn paired(
    case: &str,
    peer_name: &'static str,
    unit: &'static str,
    scale: f64,
    target: f64,
    rounds: usize,
    mut ours: impl FnMut() -> io::Result<Slice>,
    mut peer: impl FnMut() -> io::Result<Slice>,
) -> io::Result<Row> {
    // SIDE=ours|peer: run one side only (warm-up and every round), to profile it alone.
    if let Ok(side) = std::env::var("SIDE") {
        let run: &mut dyn FnMut() -> io::Result<Slice> =
            if side == "peer" { &mut peer } else { &mut ours };
        let mut rates = Vec::new();
        for _ in 0..=rounds {
            let (amount, elapsed) = run()?;
            rates.push(amount / elapsed.as_secs_f64() / scale);
        }
        println!(
            "{case:<31} | {side} only: median {:.0} {unit}",
            median(rates)
        );
        return Ok(Row {
            case: case.into(),
            peer: peer_name,
            unit,
            ours: f64::NAN,
            theirs: f64::NAN,
            ratio: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
            target: 0.0,
        });
    }
    ours()?;
    peer()?;
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = ours()?;
            (x, peer()?)
        } else {
            let y = peer()?;
            (ours()?, y)
        };
        let (rx, ry) = (x.0 / x.1.as_secs_f64(), y.0 / y.1.as_secs_f64());
        a.push(rx / scale);
        b.push(ry / scale);
        ratios.push(rx / ry);
        if std::env::var_os("VERBOSE").is_some() {
            println!(
                "  {case} round {round}: ours {:.1} peer {:.1} ratio {:.3}",
                rx / scale,
                ry / scale,
                rx / ry
            );
        }
    }
    let row = Row {
        case: case.into(),
        peer: peer_name,
        unit,
        ours: median(a),
        theirs: median(b),
        min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
        max: ratios.iter().copied().fold(0.0, f64::max),
        ratio: median(ratios),
        target,
    };
    print_row(&row);
    Ok(row)
}

pub(super) fn print_header() {
    println!(
        "{:<31} | {:<18} | {:>17} | {:>17} | {:>6} | {:>11} | target",
        "case", "peer", "ours", "peer", "ratio", "range"
    );
    println!("{}", "-".repeat(123));
}

pub(super) fn print_row(r: &Row) {
    let verdict = if r.target == 0.0 {
        "(reference)".to_string()
    } else if r.ratio >= r.target {
        format!(">= {} ok", r.target)
    } else {
        format!(">= {} MISSED", r.target)
    };
    println!(
        "{:<31} | {:<18} | {:>8.0} {:<8} | {:>8.0} {:<8} | {:>6.3} | {:>5.2}-{:<5.2} | {verdict}",
        r.case, r.peer, r.ours, r.unit, r.theirs, r.unit, r.ratio, r.min, r.max
    );
}
