//! The coordinator (`load compare`): runs server and client processes per implementation and
//! round, and prints the table.

use super::*;

/// One run's figures (both processes).
#[derive(Clone, Debug)]
pub(super) struct Run {
    pub(super) ok: usize,
    pub(super) failed: usize,
    pub(super) server_idle: usize,
    pub(super) server_failed: usize,
    pub(super) rate: f64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) server_heap: f64,
    pub(super) server_rss: f64,
    /// Bytes of one connection's own object in the server (task future or mio box).
    pub(super) server_object: f64,
    pub(super) client_heap: f64,
    pub(super) client_rss: f64,
}

/// A child process killed (by its own pid) if still running when dropped.
pub(super) struct Proc {
    pub(super) child: Child,
    pub(super) stdin: Option<ChildStdin>,
    pub(super) stdout: BufReader<ChildStdout>,
}

impl Proc {
    pub(super) fn spawn(args: &[String]) -> io::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    /// The next line, split into words after checking its first word is `tag`.
    pub(super) fn expect(&mut self, tag: &str) -> io::Result<Vec<String>> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        if words.first().map(String::as_str) != Some(tag) {
            return Err(other(format!(
                "expected `{tag} ...` from a child, got {line:?}"
            )));
        }
        Ok(words[1..].to_vec())
    }

    pub(super) fn send(&mut self, line: &str) -> io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| other("stdin closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()
    }

    /// Closes stdin and waits for the exit.
    pub(super) fn finish(mut self) -> io::Result<()> {
        drop(self.stdin.take());
        let status = self.child.wait()?;
        if status.success() {
            Ok(())
        } else {
            Err(other(format!("child exited with {status}")))
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(super) fn num<T: std::str::FromStr>(words: &[String], i: usize) -> io::Result<T> {
    words
        .get(i)
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| other(format!("bad field {i} in {words:?}")))
}

pub(super) fn run_once(args: &CompareArgs, imp: Impl, conns: usize, net: u8) -> io::Result<Run> {
    let client = match args.client {
        ClientChoice::Same => imp.same_client(),
        ClientChoice::Tlsflow => ClientImpl::Tlsflow,
        ClientChoice::TokioRustls => ClientImpl::TokioRustls,
    };
    let mut server_args = vec![
        "server".into(),
        "--impl".into(),
        imp.name().into(),
        "--workers".into(),
        args.workers.to_string(),
    ];
    if args.box_handshake {
        server_args.push("--box-handshake".into());
    }
    let mut server = Proc::spawn(&server_args)?;
    let ready = server.expect("ready")?;
    let port: u16 = num(&ready, 0)?;
    let ca = ready.get(1).ok_or_else(|| other("no CA path"))?.clone();
    let mut client_proc = Proc::spawn(&[
        "client".into(),
        "--impl".into(),
        client.name().into(),
        "--port".into(),
        port.to_string(),
        "--ca".into(),
        ca,
        "--conns".into(),
        conns.to_string(),
        "--concurrency".into(),
        args.concurrency.to_string(),
        "--workers".into(),
        args.workers.to_string(),
        "--net".into(),
        net.to_string(),
    ])?;
    let r = client_proc.expect("result")?;
    let ok: usize = num(&r, 0)?;
    server.send(&format!("wait {ok}"))?;
    let s = server.expect("stats")?;
    server.send("quit")?;
    server.finish()?;
    client_proc.finish()?;

    let per = |before: i64, after: i64, n: usize| (after - before) as f64 / n.max(1) as f64;
    let server_idle: usize = num(&s, 0)?;
    let secs: f64 = num(&r, 2)?;
    Ok(Run {
        ok,
        failed: num(&r, 1)?,
        server_idle,
        server_failed: num(&s, 1)?,
        rate: ok as f64 / secs,
        p50_ms: num::<f64>(&r, 3)? / 1000.0,
        p99_ms: num::<f64>(&r, 4)? / 1000.0,
        server_heap: per(num(&s, 2)?, num(&s, 3)?, server_idle),
        server_rss: per(num(&s, 4)?, num(&s, 5)?, server_idle),
        server_object: num(&s, 6)?,
        client_heap: per(num(&r, 5)?, num(&r, 6)?, ok),
        client_rss: per(num(&r, 7)?, num(&r, 8)?, ok),
    })
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The figures of a table row, in column order.
pub(super) fn figures(r: &Run) -> [f64; FIGURES] {
    [
        r.rate,
        r.p50_ms,
        r.p99_ms,
        r.server_heap,
        r.server_rss,
        r.server_object,
        r.client_heap,
        r.client_rss,
    ]
}

/// Columns after the counts.
pub(super) const FIGURES: usize = 8;

pub(super) const HEADER: &str = "impl             ok/failed (srv idle/failed)   hs/s   p50 ms   p99 ms  srv heap/conn  srv RSS/conn  srv conn obj  cli heap/conn  cli RSS/conn";

pub(super) fn row(name: &str, counts: &str, f: &[f64; FIGURES]) -> String {
    format!(
        "{name:<16} {counts:<28} {:>6.0} {:>8.2} {:>8.2} {:>14.0} {:>13.0} {:>13.0} {:>14.0} {:>13.0}",
        f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]
    )
}

pub(super) fn compare_pair(
    args: &CompareArgs,
    label: &str,
    ours: Impl,
    peer: Impl,
    conns: usize,
    net: &mut u8,
) -> io::Result<String> {
    let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    println!(
        "\n{label}: {conns} connections per run, {} rounds",
        args.rounds
    );
    println!("{HEADER}");
    for round in 0..args.rounds.max(1) {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let imp = [ours, peer][side];
            let run = run_once(args, imp, conns, *net)?;
            *net = if *net >= 254 { 1 } else { *net + 1 };
            let counts = format!(
                "{}/{} ({}/{})",
                run.ok, run.failed, run.server_idle, run.server_failed
            );
            println!(
                "{}",
                row(&format!("{} r{round}", imp.name()), &counts, &figures(&run))
            );
            runs[side].push(run);
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{label}: {conns} connections, medians of {} rounds",
        args.rounds.max(1)
    );
    let _ = writeln!(out, "{HEADER}");
    for (side, imp) in [ours, peer].into_iter().enumerate() {
        let rs = &runs[side];
        let sum = |f: fn(&Run) -> usize| rs.iter().map(f).sum::<usize>();
        let counts = format!(
            "{}/{} ({}/{})",
            sum(|r| r.ok),
            sum(|r| r.failed),
            sum(|r| r.server_idle),
            sum(|r| r.server_failed)
        );
        let med: Vec<f64> = (0..FIGURES)
            .map(|i| median(rs.iter().map(|r| figures(r)[i]).collect()))
            .collect();
        let _ = writeln!(
            out,
            "{}",
            row(imp.name(), &counts, &med.try_into().expect("all figures"))
        );
    }
    let ratio: Vec<f64> = (0..FIGURES)
        .map(|i| {
            median(
                runs[0]
                    .iter()
                    .zip(&runs[1])
                    .map(|(a, b)| figures(a)[i] / figures(b)[i])
                    .collect(),
            )
        })
        .collect();
    let widths = [6, 8, 8, 14, 13, 13, 14, 13];
    let mut line = format!(
        "{:<16} {:<28}",
        "ours ÷ peer", "(median of per-round ratios)"
    );
    for (r, w) in ratio.iter().zip(widths) {
        let _ = write!(line, " {r:>w$.3}");
    }
    let _ = writeln!(out, "{line}");
    Ok(out)
}

pub(super) fn compare(args: &CompareArgs) -> io::Result<()> {
    let client = match args.client {
        ClientChoice::Same => "the server's library (tokio flavour)",
        ClientChoice::Tlsflow => "tlsflow (tokio) for every server",
        ClientChoice::TokioRustls => "tokio-rustls for every server",
    };
    println!(
        "load: TLS 1.3, ECDSA P-256, ring, no resumption; in flight ≤ {} per client; \
         tokio runtimes: multi-thread, {} worker(s); client: {client}",
        args.concurrency, args.workers
    );
    println!(
        "hs/s and latency (connect → handshake done) are client-measured; memory = (all idle − \
         before) ÷ connections, bytes"
    );
    let mut net = 1u8;
    let mut tables = String::new();
    if args.only != Only::Mio {
        tables += &compare_pair(
            args,
            "tokio",
            Impl::Tlsflow,
            Impl::TokioRustls,
            args.conns,
            &mut net,
        )?;
    }
    if args.only != Only::Tokio {
        tables += &compare_pair(
            args,
            "mio, one server thread",
            Impl::TlsflowMio,
            Impl::RustlsMio,
            args.mio_conns,
            &mut net,
        )?;
    }
    print!("{tables}");
    Ok(())
}
