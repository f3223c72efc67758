//! A broker crash under a running `weir consume --sink`: Apache Kafka (a dedicated
//! broker; tansu with WEIR_TEST_BROKER=tansu) is SIGKILLed mid-stream, kept down a few
//! seconds, and started again on the same ports and data, while
//!
//! * (a) `weir consume -t TOPIC -o beginning --sink DIR` (manual assignment, no -e) and
//! * (b) `weir consume -G GROUP TOPIC --sink DIR`
//!
//! run. Neither is restarted: both must reconnect by themselves and end with every
//! record produced before and after the crash in the sink exactly once, and (b)'s
//! group must be committed to the end (lag 0 in `weir groups describe`).
//!
//! Setup once per machine: `scripts/install-kafka.sh` and `scripts/setup-python.sh`.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use support::broker::Broker;
use support::peer::{Manifest, Producer};
use support::{scratch_dir, unique_topic};
use weir::sink::Sink;

const WEIR: &str = env!("CARGO_BIN_EXE_weir");
const PARTITIONS: i32 = 3;

/// A running weir whose stderr is collected by a thread (shown when the test fails);
/// SIGKILLed on drop.
struct Weir {
    name: &'static str,
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Weir {
    fn spawn(name: &'static str, args: &[&str]) -> Weir {
        let mut child = Command::new(WEIR)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {WEIR}: {e}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().unwrap();
        let into = stderr.clone();
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                into.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        });
        Weir {
            name,
            child,
            stderr,
            reader: Some(reader),
        }
    }

    fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Fails (with its stderr) when it exited: nothing here should end by itself.
    fn assert_running(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "weir {} exited ({status}) {when}; stderr:\n{}",
                self.name,
                self.stderr_now()
            );
        }
    }

    /// SIGTERM, then waits (bounded) for the exit.
    fn terminate(mut self, limit: Duration) -> (ExitStatus, String) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on a child this test spawned and has not reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "weir {} did not exit within {limit:?} of SIGTERM; stderr:\n{}",
                    self.name,
                    self.stderr_now()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (status, self.stderr_now())
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Every `"P O"` line durable in the sink, with how often it occurs.
fn sink_lines(dir: &Path, topic: &str) -> BTreeMap<(i32, i64), usize> {
    let mut seen = BTreeMap::new();
    for p in 0..PARTITIONS {
        let Ok(bytes) = Sink::read_durable(dir, topic, p) else {
            continue;
        };
        for line in String::from_utf8_lossy(&bytes).lines() {
            let mut it = line.split(' ');
            let (Some(lp), Some(lo)) = (it.next(), it.next()) else {
                panic!("bad sink line {line:?}");
            };
            let key = (lp.parse::<i32>().unwrap(), lo.parse::<i64>().unwrap());
            assert_eq!(key.0, p, "line {line:?} in partition {p}'s files");
            *seen.entry(key).or_insert(0) += 1;
        }
    }
    seen
}

fn produced(manifests: &[&Manifest]) -> BTreeSet<(i32, i64)> {
    manifests
        .iter()
        .flat_map(|m| {
            m.records
                .iter()
                .flat_map(|(p, recs)| recs.iter().map(move |r| (*p, r.rec.offset)))
        })
        .collect()
}

fn assert_exactly_once(what: &str, got: &BTreeMap<(i32, i64), usize>, want: &BTreeSet<(i32, i64)>) {
    let dup: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dup.is_empty(),
        "{what}: records in the sink more than once: {dup:?}"
    );
    let missing: Vec<_> = want.iter().filter(|k| !got.contains_key(k)).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} records missing from the sink, first {:?}",
        missing.len(),
        missing.first()
    );
    let extra: Vec<_> = got.keys().filter(|k| !want.contains(k)).collect();
    assert!(
        extra.is_empty(),
        "{what}: records never produced: {extra:?}"
    );
}

/// `weir groups describe GROUP` (stdout and stderr; it may fail while the broker is
/// still loading the group).
fn describe(bootstrap: &str, group: &str) -> (bool, String) {
    let out = Command::new(WEIR)
        .args(["groups", "describe", group, "-b", bootstrap])
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Whether `describe` shows every partition committed at `next` with lag 0.
fn committed_to_end(text: &str, group: &str, next: &BTreeMap<i32, i64>) -> bool {
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(group))
        .map(|l| l.split_whitespace().collect())
        .collect();
    text.contains("total lag 0")
        && next.iter().all(|(p, end)| {
            rows.iter().any(|r| {
                r.get(2) == Some(&p.to_string().as_str())
                    && r.get(3) == Some(&end.to_string().as_str())
                    && r.get(5) == Some(&"0")
            })
        })
}

/// Waits (bounded) until `dir` holds a durable record, failing if a weir exits.
fn wait_for_some(dir: &Path, topic: &str, running: &mut [&mut Weir]) {
    let start = Instant::now();
    while sink_lines(dir, topic).is_empty() {
        for w in running.iter_mut() {
            w.assert_running("before the crash");
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "nothing in {} before the crash; stderr:\n{}",
            dir.display(),
            running
                .iter()
                .map(|w| w.stderr_now())
                .collect::<Vec<_>>()
                .join("\n")
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn manual_and_group_sinks_resume_unattended_across_a_broker_crash() {
    let mut broker = Broker::dedicated();
    let b = broker.bootstrap();
    let topic = unique_topic("crash");
    let group = unique_topic("crash-g");
    let produce = |count: usize, seq: u64| {
        Producer::new(&b, &topic)
            .partitions(PARTITIONS)
            .count(count)
            .start_seq(seq)
            .value_size(100)
            .batch_num_messages(50)
            .linger_ms(5)
            .run()
    };
    let before = produce(10_000, 0);
    let dir = scratch_dir("broker-crash");
    let (manual_dir, group_dir) = (dir.join("manual"), dir.join("group"));
    let common = [
        "-f",
        "%p %o\\n",
        "-X",
        "weir.sink.checkpoint.ms=20",
        // Small fetches: the crash lands while records are still coming.
        "-X",
        "max.partition.fetch.bytes=4096",
        "-X",
        "fetch.max.wait.ms=100",
        // Reconnects at most 1 s apart, so the test sees the restart soon.
        "-X",
        "reconnect.backoff.max.ms=1000",
    ];
    let group_sink = group_dir.to_str().unwrap();
    let mut args = vec!["consume", "-b", &b, "-G", &group, &topic, "-o", "beginning"];
    args.extend(["--sink", group_sink]);
    args.extend([
        "-X",
        "session.timeout.ms=10000",
        "-X",
        "heartbeat.interval.ms=500",
    ]);
    args.extend(["-X", "auto.commit.interval.ms=200"]);
    args.extend(common);
    let mut grouped = Weir::spawn("consume -G", &args);
    // The group member joins first (that takes a moment), then the manual one starts;
    // the broker dies as soon as both have written something: mid-stream.
    wait_for_some(&group_dir, &topic, &mut [&mut grouped]);
    let manual_sink = manual_dir.to_str().unwrap();
    let mut args = vec!["consume", "-b", &b, "-t", &topic, "-o", "beginning"];
    args.extend(["--sink", manual_sink]);
    args.extend(common);
    let mut manual = Weir::spawn("consume -t (manual)", &args);
    wait_for_some(&manual_dir, &topic, &mut [&mut manual, &mut grouped]);
    let (m, g) = (
        sink_lines(&manual_dir, &topic).len(),
        sink_lines(&group_dir, &topic).len(),
    );
    eprintln!(
        "at the crash: manual sink {m}, group sink {g} of {} records",
        before.count()
    );
    assert!(
        m < before.count() && g < before.count(),
        "a sink had every record before the crash (manual {m}, group {g}): not mid-stream"
    );
    broker.kill();
    // Down long enough that both see their connections refused and back off a few
    // times (reconnect.backoff.max.ms is 1 s); this sleep is the outage, not a wait
    // for anything.
    thread::sleep(Duration::from_secs(4));
    manual.assert_running("while the broker was down");
    grouped.assert_running("while the broker was down");
    let restarted = Instant::now();
    broker.restart();
    eprintln!("broker back after {:?}", restarted.elapsed());
    let after = produce(500, 3000);
    let want = produced(&[&before, &after]);
    let mut next = before.next_offset.clone();
    for (p, end) in &after.next_offset {
        let e = next.entry(*p).or_insert(*end);
        *e = (*e).max(*end);
    }

    // Both sinks complete, without restarting weir.
    let limit = Duration::from_secs(120);
    let start = Instant::now();
    loop {
        let m = sink_lines(&manual_dir, &topic);
        let g = sink_lines(&group_dir, &topic);
        let done = |got: &BTreeMap<(i32, i64), usize>| {
            got.keys().cloned().collect::<BTreeSet<_>>() == want
        };
        if done(&m) && done(&g) {
            eprintln!(
                "both sinks complete {:?} after the restart",
                start.elapsed()
            );
            break;
        }
        manual.assert_running("after the restart");
        grouped.assert_running("after the restart");
        if start.elapsed() > limit {
            assert_exactly_once("manual sink (timed out)", &m, &want);
            assert_exactly_once("group sink (timed out)", &g, &want);
            panic!("the sinks did not complete within {limit:?}");
        }
        thread::sleep(Duration::from_millis(100));
    }

    // The group is committed to the end.
    let start = Instant::now();
    loop {
        let (ok, text) = describe(&b, &group);
        if ok && committed_to_end(&text, &group, &next) {
            break;
        }
        grouped.assert_running("while waiting for lag 0");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the group never reached lag 0:\n{text}\nweir -G stderr:\n{}",
            grouped.stderr_now()
        );
        thread::sleep(Duration::from_millis(300));
    }

    let (status, manual_err) = manual.terminate(Duration::from_secs(30));
    assert!(status.success(), "manual weir: {status}\n{manual_err}");
    let (status, group_err) = grouped.terminate(Duration::from_secs(30));
    assert!(status.success(), "weir -G: {status}\n{group_err}");
    eprintln!("manual weir stderr:\n{manual_err}\nweir -G stderr:\n{group_err}");
    // After a clean exit, still every record exactly once.
    assert_exactly_once("manual sink", &sink_lines(&manual_dir, &topic), &want);
    assert_exactly_once("group sink", &sink_lines(&group_dir, &topic), &want);
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
