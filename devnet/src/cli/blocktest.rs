//! `fogchain blocktest PATH... [--run REGEX] [--json] [--jobs N]`: runs Ethereum blockchain
//! reference tests (see `fogchain_devnet::blocktest`) and reports one line per test.

use clap::Args;
use fogchain_devnet::blocktest::{fixture_files, read_fixture, run_test, BlocktestError, Outcome};
use indicatif::{ProgressBar, ProgressStyle};
use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
};

/// Arguments of `fogchain blocktest`.
#[derive(Args)]
pub(crate) struct BlocktestArgs {
    /// Fixture files, or directories searched recursively for `.json` fixtures.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Run only the tests whose name matches this regular expression.
    #[arg(long)]
    run: Option<regex::Regex>,
    /// One JSON object per test (`{"name", "file", "status", "reason"}`) instead of text lines.
    #[arg(long)]
    json: bool,
    /// Tests run at once (default: the number of CPUs).
    #[arg(long)]
    jobs: Option<usize>,
}

struct Counts {
    pass: AtomicUsize,
    fail: AtomicUsize,
    skip: AtomicUsize,
}

/// Runs the tests; `Ok(false)` when any failed (the binary exits 1).
pub(crate) fn run(args: BlocktestArgs) -> eyre::Result<bool> {
    // (file, named on the command line): a JSON file met in a directory that is not a
    // blockchain test (e.g. TrieTests beside BlockchainTests) is noted and passed over.
    let mut files = Vec::new();
    for path in &args.paths {
        let named = !path.is_dir();
        files.extend(fixture_files(path)?.into_iter().map(|f| (f, named)));
    }
    let jobs =
        args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let progress = if std::io::stderr().is_terminal() && !args.json {
        let bar = ProgressBar::new(files.len() as u64);
        bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} files {msg}")?);
        bar
    } else {
        ProgressBar::hidden()
    };
    let counts = Counts { pass: AtomicUsize::new(0), fail: AtomicUsize::new(0), skip: AtomicUsize::new(0) };
    let out = Mutex::new(std::io::stdout());
    let scratch = tempfile::Builder::new().prefix("fogchain-blocktest-").tempdir()?;
    for (file, named) in &files {
        let tests = match read_fixture(file) {
            Ok(tests) => tests,
            Err(e @ BlocktestError::Json { .. }) if !named => {
                progress.suspend(|| eprintln!("note: {e}; passed over"));
                progress.inc(1);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let tests: Vec<_> =
            tests.iter().filter(|(name, _)| args.run.as_ref().is_none_or(|re| re.is_match(name))).collect();
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for worker in 0..jobs.min(tests.len()) {
                let (tests, next, counts, out, progress) = (&tests, &next, &counts, &out, &progress);
                let dir = scratch.path().join(worker.to_string());
                let json = args.json;
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((name, test)) = tests.get(i) else { break };
                    let outcome = run_test(name, test, &dir);
                    let _ = std::fs::remove_dir_all(&dir);
                    let counter = match outcome {
                        Outcome::Pass => &counts.pass,
                        Outcome::Fail(_) => &counts.fail,
                        Outcome::Skip(_) => &counts.skip,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    let line = if json {
                        serde_json::json!({
                            "name": name,
                            "file": file.display().to_string(),
                            "status": outcome.status(),
                            "reason": outcome.reason(),
                        })
                        .to_string()
                    } else {
                        match &outcome {
                            Outcome::Pass => format!("PASS {name}"),
                            Outcome::Fail(reason) => format!("FAIL {name}: {reason}"),
                            Outcome::Skip(reason) => format!("SKIP {name}: {reason}"),
                        }
                    };
                    progress.suspend(|| {
                        let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
                        let _ = writeln!(out, "{line}");
                    });
                });
            }
        });
        progress.inc(1);
        progress.set_message(format!("{} failed", counts.fail.load(Ordering::Relaxed)));
    }
    progress.finish_and_clear();
    let (pass, fail, skip) = (counts.pass.into_inner(), counts.fail.into_inner(), counts.skip.into_inner());
    // The closing line; with --json it goes to stderr so that stdout stays one object a line.
    let summary = format!("{pass} passed, {fail} failed, {skip} skipped");
    if args.json {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    Ok(fail == 0)
}
