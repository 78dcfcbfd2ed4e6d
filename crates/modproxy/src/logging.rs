//! Log setup: `tracing` to stderr, as text or JSON lines, written by a
//! thread of its own.
//!
//! Every request logs a line. Written where it is made, each line would be
//! a `write(2)` on the request's path (and a wakeup of whatever reads
//! stderr), and a stderr that stops taking lines (a pipe nobody reads, a
//! stalled log collector) would stop the runtime threads one by one: the
//! proxy would hang on its own logging. So a line only joins a bounded
//! backlog in memory, and the writer thread takes the backlog to stderr
//! in batches. Lines that find the backlog full are dropped and counted;
//! the count is logged once stderr takes lines again.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::settings::defs::LOG_FILTER_VAR;

/// Bytes of log lines waiting for stderr before new lines are dropped.
const BACKLOG: usize = 4 << 20;
/// How long exiting waits for the backlog to reach stderr.
const FLUSH_WAIT: Duration = Duration::from_secs(2);
/// How long the writer lets lines gather after a write: under load, one
/// write of many lines, and no wakeup per line.
const GATHER: Duration = Duration::from_millis(2);

/// The log line format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not a log format (use text or json)")),
        }
    }
}

/// Installs the global subscriber. The level filter comes from
/// `MODPROXY_LOG` (EnvFilter syntax), `info` by default. Keep the guard
/// while the program runs: dropping it writes out what is waiting.
pub fn init(format: LogFormat) -> anyhow::Result<Flush> {
    let filter = match std::env::var(LOG_FILTER_VAR) {
        // The filter's own error repeats its cause as its source: its
        // message is taken whole, not chained.
        Ok(spec) => EnvFilter::try_new(&spec)
            .map_err(|e| anyhow::anyhow!("{}: invalid log filter {spec:?}: {e}", LOG_FILTER_VAR))?,
        Err(_) => EnvFilter::new("info"),
    };
    let lines = Lines::start(io::stderr(), |_, dropped| {
        // Through the subscriber: in the format of every other line.
        tracing::warn!(
            dropped,
            "log lines dropped: stderr did not take them as fast as they came"
        );
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(lines.clone());
    match format {
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(Flush(lines))
}

/// Writes out the lines still waiting when dropped (waiting at most
/// [`FLUSH_WAIT`]: stderr may be stuck).
pub struct Flush(Lines);

impl Drop for Flush {
    fn drop(&mut self) {
        self.0.flush_within(FLUSH_WAIT);
    }
}

/// How the writer reports lines it dropped: given the backlog and their
/// count.
type Report = fn(&Lines, u64);

/// The backlog of log lines, shared by the subscriber and the writer
/// thread.
#[derive(Clone)]
struct Lines(Arc<Shared>);

struct Shared {
    backlog: Mutex<Backlog>,
    /// Lines are waiting (for the writer thread).
    waiting: Condvar,
    /// The writer has written everything it took (for [`Lines::flush_within`]).
    written: Condvar,
}

#[derive(Default)]
struct Backlog {
    bytes: Vec<u8>,
    /// Lines dropped since the last batch.
    dropped: u64,
    /// The writer thread holds a batch it is writing.
    writing: bool,
    /// The writer thread waits for lines: the next one wakes it.
    idle: bool,
}

impl Lines {
    /// A backlog and its writer thread, writing to `out`.
    fn start(out: impl Write + Send + 'static, report: Report) -> io::Result<Lines> {
        let lines = Lines(Arc::new(Shared {
            backlog: Mutex::default(),
            waiting: Condvar::new(),
            written: Condvar::new(),
        }));
        let writer = lines.clone();
        std::thread::Builder::new()
            .name("modproxy-log".into())
            .spawn(move || writer.write_out(out, report))?;
        Ok(lines)
    }

    fn backlog(&self) -> MutexGuard<'_, Backlog> {
        // A line is whole or absent: a panic elsewhere leaves it usable.
        self.0
            .backlog
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds one formatted line (the subscriber writes each whole), or
    /// counts it dropped when the backlog is full.
    fn push(&self, line: &[u8]) {
        let mut backlog = self.backlog();
        if backlog.bytes.len() + line.len() > BACKLOG {
            backlog.dropped += 1;
        } else {
            backlog.bytes.extend_from_slice(line);
        }
        // Only an idle writer is woken (a wakeup is a system call): a
        // busy one finds the line when it comes back.
        let wake = std::mem::take(&mut backlog.idle);
        drop(backlog);
        if wake {
            self.0.waiting.notify_one();
        }
    }

    /// The writer thread: takes what waits, writes it, reports lines
    /// dropped meanwhile with `report`, lets more gather, again. Runs for
    /// the life of the process.
    fn write_out(&self, mut out: impl Write, report: Report) {
        let mut batch = Vec::new();
        loop {
            let dropped = {
                let mut backlog = self.backlog();
                backlog.writing = false;
                self.0.written.notify_all();
                while backlog.bytes.is_empty() && backlog.dropped == 0 {
                    backlog.idle = true;
                    backlog = self
                        .0
                        .waiting
                        .wait(backlog)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                backlog.idle = false;
                backlog.writing = true;
                // The spare buffer goes back: its capacity is reused.
                batch.clear();
                std::mem::swap(&mut batch, &mut backlog.bytes);
                std::mem::take(&mut backlog.dropped)
            };
            // Nothing to be done about a failed write: the line is lost.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            if dropped > 0 {
                // Joins the backlog: written on the next round.
                report(self, dropped);
            }
            if batch.capacity() > BACKLOG {
                batch = Vec::new();
            }
            std::thread::sleep(GATHER);
        }
    }

    /// Waits until everything pushed so far is written, at most `wait`.
    fn flush_within(&self, wait: Duration) {
        let deadline = Instant::now() + wait;
        let mut backlog = self.backlog();
        while !backlog.bytes.is_empty() || backlog.dropped > 0 || backlog.writing {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            backlog = self
                .0
                .written
                .wait_timeout(backlog, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Write for &Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = &'a Lines;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A stderr that takes nothing until released, then keeps what it is
    /// given.
    struct Stuck {
        release: mpsc::Receiver<()>,
        released: bool,
        taken: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if !self.released {
                let _ = self.release.recv();
                self.released = true;
            }
            self.taken.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn test_report(lines: &Lines, dropped: u64) {
        lines.push(format!("{dropped} log lines dropped\n").as_bytes());
    }

    /// Lines written to a [`Stuck`] stderr: the lines, what releases it,
    /// and what it took.
    fn stderr() -> (Lines, mpsc::Sender<()>, Arc<Mutex<Vec<u8>>>) {
        let (release, released) = mpsc::channel();
        let taken = Arc::new(Mutex::new(Vec::new()));
        let stuck = Stuck {
            release: released,
            released: false,
            taken: Arc::clone(&taken),
        };
        (Lines::start(stuck, test_report).unwrap(), release, taken)
    }

    #[test]
    fn a_stuck_stderr_costs_lines_not_time_and_the_loss_is_reported() {
        let (lines, release, taken) = stderr();
        let line = [b'x'; 1023]
            .iter()
            .chain(b"\n")
            .copied()
            .collect::<Vec<u8>>();
        let started = Instant::now();
        // Twice the backlog, while the writer is stuck on the first line.
        for _ in 0..2 * BACKLOG / line.len() {
            (&lines).write_all(&line).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "pushing waited");
        release.send(()).unwrap();
        lines.flush_within(Duration::from_secs(30));
        let taken = taken.lock().unwrap();
        let text = String::from_utf8_lossy(&taken);
        let kept = text.lines().filter(|l| l.starts_with('x')).count();
        // A full backlog, and what the writer took before it got stuck.
        assert!(kept >= BACKLOG / line.len(), "{kept} lines kept");
        let notice = text
            .lines()
            .find(|l| l.contains("log lines dropped"))
            .expect("the loss is reported");
        let dropped: usize = notice.split(' ').next().unwrap().parse().unwrap();
        assert!(dropped > 0, "{notice}");
        assert_eq!(kept + dropped, 2 * BACKLOG / line.len(), "{notice}");
    }

    #[test]
    fn a_line_too_long_for_the_backlog_is_reported_at_once() {
        let (lines, release, taken) = stderr();
        release.send(()).unwrap();
        // Let the writer go idle first.
        lines.flush_within(Duration::from_secs(30));
        (&lines).write_all(&vec![b'x'; BACKLOG + 1]).unwrap();
        let started = Instant::now();
        lines.flush_within(Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(1), "not woken");
        let taken = taken.lock().unwrap();
        assert_eq!(String::from_utf8_lossy(&taken), "1 log lines dropped\n");
    }

    #[test]
    fn every_line_is_written_whole_and_in_order() {
        let (lines, release, taken) = stderr();
        release.send(()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let lines = lines.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        (&lines)
                            .write_all(format!("thread {t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        lines.flush_within(Duration::from_secs(30));
        let taken = taken.lock().unwrap();
        let text = String::from_utf8_lossy(&taken);
        for t in 0..4 {
            let prefix = format!("thread {t} line ");
            let seen: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&prefix))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(seen, (0..500).collect::<Vec<_>>());
        }
    }
}
