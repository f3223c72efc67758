//! The exactly-once file sink behind `weir consume --sink DIR`.
//!
//! Records go to `DIR/<topic>/<partition>/`, into segment files named by the offset
//! of their first record (`00000000000000000042.log`, twenty digits so names sort by
//! offset). The segment being written ends in `.open`; it is sealed (renamed to
//! `.log`) when it reaches `weir.sink.segment.bytes` or is older than
//! `weir.sink.segment.ms`.
//!
//! ## The durability contract
//! Each partition directory holds a `checkpoint` file naming the open segment, how
//! many of its bytes are durable, and the next offset to consume. The sealed
//! segments plus that prefix of the open segment hold exactly the records with
//! offsets below the checkpoint's next offset, each once. The contract survives
//! `kill -9` (and power loss, as far as `fsync` is honest) at any instant, because
//! every state change follows one ordering:
//!
//! * **checkpoint**: write buffered bytes to the segment, `fsync` it, write
//!   `checkpoint.tmp`, `fsync` it, rename it over `checkpoint`, `fsync` the directory;
//! * **seal**: checkpoint the whole open segment first, append `B.log` and its
//!   length to the partition's `sealed` file and `fsync` it, then rename `B.open` to
//!   `B.log`, `fsync` the directory, create the next `N.open`, `fsync` the directory,
//!   checkpoint `{N.open, 0, N}`; so a `.log` file is always fully covered by a
//!   checkpoint before it exists;
//! * **recovery** ([`Sink::open`]): truncate the checkpointed segment to the
//!   checkpointed length (dropping bytes written after the last checkpoint), delete
//!   `.open` files the checkpoint does not name, and finish a seal that was cut short
//!   (checkpoint names `B.open`, but only `B.log` exists).
//!
//! ## What recovery checks
//! Every sealed segment must still have the length recorded in `sealed` when it was
//! sealed: a truncated, extended or replaced `.log`, a `.log` the sink never sealed,
//! and a missing segment while a newer sealed one remains are errors that stop the
//! consumer before it writes anything (restore the file, or move the partition
//! directory away to consume the partition again). Deleting the *oldest* segments
//! (after shipping them) is allowed. Not checked: the bytes inside a segment (there
//! is no per-record checksum), so damage at unchanged length goes unnoticed.
//!
//! The consumer restarts each partition at [`Sink::resume_positions`] and ignores
//! records below it ([`Sink::write`] drops them), so a record is never written twice;
//! it commits group offsets only from [`Sink::committed_positions`], which never runs
//! ahead of the files.
//!
//! A reset of the position by the broker (OFFSET_OUT_OF_RANGE, when retention has
//! deleted records the sink never wrote) would break the contract, so with a sink
//! the consumer stops instead, unless `weir.sink.allow.reset=true` accepts the gap
//! ([`crate::cli::ConsumePlan::fetch_config`]).
//!
//! Readers of the directory should read `.log` files, and an `.open` file only up to
//! the length in `checkpoint`: bytes beyond it may vanish at the next restart.
//!
//! An `.open` segment's age is counted from when this process opened it; a restart
//! resets it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A topic and partition.
pub type TopicPartition = (String, i32);

/// Settings of a [`Sink`].
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// The root directory.
    pub dir: PathBuf,
    /// Seal the open segment before it would grow past this many bytes
    /// (`weir.sink.segment.bytes`); a single larger record gets a segment of its own.
    pub segment_bytes: u64,
    /// Seal a non-empty open segment this long after it was opened
    /// (`weir.sink.segment.ms`); `None` never seals by age.
    pub segment_age: Option<Duration>,
    /// [`Sink::poll`] checkpoints when this much time has passed since the last
    /// checkpoint (`weir.sink.checkpoint.ms`).
    pub checkpoint_interval: Duration,
}

impl SinkConfig {
    /// Settings from a validated configuration.
    pub fn from_config(dir: PathBuf, cfg: &weir_consumer::config::ConsumerConfig) -> Self {
        SinkConfig {
            dir,
            segment_bytes: cfg.sink_segment_bytes.max(1),
            segment_age: (cfg.sink_segment_ms > 0)
                .then(|| Duration::from_millis(u64::from(cfg.sink_segment_ms))),
            checkpoint_interval: Duration::from_millis(u64::from(cfg.sink_checkpoint_ms)),
        }
    }
}

/// What went wrong in the sink.
#[derive(Debug)]
#[non_exhaustive]
pub enum SinkError {
    /// A file operation failed.
    Io {
        /// What weir was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The directory contradicts the sink's invariants (edited or damaged outside weir).
    Corrupt {
        /// The file or directory.
        path: PathBuf,
        /// What is inconsistent.
        reason: String,
    },
    /// A topic name that cannot be a directory name.
    BadTopic(String),
    /// A negative offset.
    BadOffset(i64),
    /// A simulated crash (tests only).
    #[cfg(test)]
    InjectedCrash,
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkError::Io { op, path, error } => {
                write!(f, "sink: cannot {op} {}: {error}", path.display())
            }
            SinkError::Corrupt { path, reason } => write!(
                f,
                "sink directory {} is inconsistent: {reason}; move it aside and restart, or repair it by hand",
                path.display()
            ),
            SinkError::BadTopic(t) => {
                write!(f, "sink: topic name `{t}` cannot be a directory name")
            }
            SinkError::BadOffset(o) => write!(f, "sink: negative offset {o}"),
            #[cfg(test)]
            SinkError::InjectedCrash => f.write_str("sink: injected crash"),
        }
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SinkError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SinkError + use<'a> {
    move |error| SinkError::Io {
        op,
        path: path.to_owned(),
        error,
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> SinkError {
    SinkError::Corrupt {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

const CHECKPOINT: &str = "checkpoint";
const CHECKPOINT_TMP: &str = "checkpoint.tmp";
const MAGIC: &str = "weir-sink-checkpoint 1";

/// The durable state of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Checkpoint {
    segment: String,
    length: u64,
    next_offset: i64,
}

impl Checkpoint {
    fn encode(&self) -> String {
        let body = format!(
            "{MAGIC}\nsegment {}\nlength {}\nnext_offset {}\n",
            self.segment, self.length, self.next_offset
        );
        let crc = crc32c::crc32c(body.as_bytes());
        format!("{body}crc32c {crc:08x}\n")
    }

    fn decode(text: &str) -> Option<Checkpoint> {
        let (body, crc_line) = text.strip_suffix('\n')?.rsplit_once('\n')?;
        let body = format!("{body}\n");
        let crc = u32::from_str_radix(crc_line.strip_prefix("crc32c ")?, 16).ok()?;
        if crc32c::crc32c(body.as_bytes()) != crc {
            return None;
        }
        let mut lines = body.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let segment = lines.next()?.strip_prefix("segment ")?.to_owned();
        let length = lines.next()?.strip_prefix("length ")?.parse().ok()?;
        let next_offset = lines.next()?.strip_prefix("next_offset ")?.parse().ok()?;
        if parse_segment_name(&segment).is_none_or(|(_, open)| !open) {
            return None;
        }
        Some(Checkpoint {
            segment,
            length,
            next_offset,
        })
    }
}

fn segment_name(base: i64, open: bool) -> String {
    format!("{base:020}.{}", if open { "open" } else { "log" })
}

/// `(base offset, is open)` for a segment file name.
fn parse_segment_name(name: &str) -> Option<(i64, bool)> {
    let (stem, ext) = name.split_once('.')?;
    let open = match ext {
        "open" => true,
        "log" => false,
        _ => return None,
    };
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, open))
}

fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// One partition's writer.
#[derive(Debug)]
struct Part {
    dir: PathBuf,
    file: File,
    segment: String,
    /// Bytes in the segment file (written, maybe not yet synced).
    file_len: u64,
    /// Bytes not yet written to the file.
    buf: Vec<u8>,
    opened_at: Instant,
    /// Next offset to consume (in memory).
    next: i64,
    durable: Checkpoint,
}

impl Part {
    fn len(&self) -> u64 {
        self.file_len + self.buf.len() as u64
    }
}

/// The exactly-once file sink. See the module docs for the on-disk contract.
#[derive(Debug)]
pub struct Sink {
    cfg: SinkConfig,
    parts: BTreeMap<TopicPartition, Part>,
    last_checkpoint: Instant,
    #[cfg(test)]
    crash_after: Option<usize>,
}

/// Bytes buffered per partition before they are written to the segment file.
const WRITE_BUFFER: usize = 64 * 1024;

impl Sink {
    /// Opens (creating if needed) the sink directory and recovers every partition
    /// found in it, so that its files hold exactly the checkpointed records.
    pub fn open(cfg: SinkConfig) -> Result<Sink, SinkError> {
        fs::create_dir_all(&cfg.dir).map_err(io_err("create directory", &cfg.dir))?;
        let mut sink = Sink {
            parts: BTreeMap::new(),
            last_checkpoint: Instant::now(),
            #[cfg(test)]
            crash_after: None,
            cfg,
        };
        let root = sink.cfg.dir.clone();
        for topic_entry in fs::read_dir(&root).map_err(io_err("list", &root))? {
            let topic_entry = topic_entry.map_err(io_err("list", &root))?;
            let topic_path = topic_entry.path();
            if !topic_path.is_dir() {
                continue;
            }
            let Some(topic) = topic_entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            for part_entry in fs::read_dir(&topic_path).map_err(io_err("list", &topic_path))? {
                let part_entry = part_entry.map_err(io_err("list", &topic_path))?;
                let Some(partition) = part_entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<i32>().ok())
                else {
                    continue;
                };
                if let Some(part) = sink.recover(&part_entry.path())? {
                    sink.parts.insert((topic.clone(), partition), part);
                }
            }
        }
        Ok(sink)
    }

    /// Where to start fetching each partition the sink knows: the offset after the
    /// last record it holds (durably or still buffered). Partitions it has never
    /// seen are absent: start those where the command line says.
    pub fn resume_positions(&self) -> BTreeMap<TopicPartition, i64> {
        self.parts
            .iter()
            .map(|(tp, p)| (tp.clone(), p.next))
            .collect()
    }

    /// The next offset per partition as of the last durable checkpoint: safe to
    /// commit to the group, because the files hold every record below it.
    pub fn committed_positions(&self) -> BTreeMap<TopicPartition, i64> {
        self.parts
            .iter()
            .map(|(tp, p)| (tp.clone(), p.durable.next_offset))
            .collect()
    }

    /// Appends one formatted record. Records below the partition's resume position
    /// are dropped (returns `Ok(false)`): they are already in the files.
    pub fn write(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        bytes: &[u8],
        now: Instant,
    ) -> Result<bool, SinkError> {
        if offset < 0 {
            return Err(SinkError::BadOffset(offset));
        }
        let key = (topic.to_owned(), partition);
        if !self.parts.contains_key(&key) {
            let part = self.create_partition(topic, partition, offset, now)?;
            self.parts.insert(key.clone(), part);
        }
        let (segment_bytes, segment_age) = (self.cfg.segment_bytes, self.cfg.segment_age);
        let needs_seal = {
            let Some(part) = self.parts.get(&key) else {
                return Ok(false);
            };
            if offset < part.next {
                return Ok(false);
            }
            part.len() > 0
                && (part.len() + bytes.len() as u64 > segment_bytes
                    || segment_age.is_some_and(|age| now.duration_since(part.opened_at) >= age))
        };
        if needs_seal {
            self.seal(&key, now)?;
        }
        let Some(part) = self.parts.get_mut(&key) else {
            return Ok(false);
        };
        part.buf.extend_from_slice(bytes);
        part.next = offset + 1;
        if part.buf.len() >= WRITE_BUFFER {
            Self::flush_part(
                #[cfg(test)]
                &mut self.crash_after,
                part,
            )?;
        }
        Ok(true)
    }

    /// Records that the partition's next offset is `next` without writing a record
    /// (offsets skipped by compaction or transaction markers), so a restart does not
    /// fetch them again. Has no effect on a partition the sink has not seen or when
    /// `next` is not ahead.
    pub fn advance(&mut self, topic: &str, partition: i32, next: i64) {
        if let Some(p) = self.parts.get_mut(&(topic.to_owned(), partition)) {
            p.next = p.next.max(next);
        }
    }

    /// Periodic work: seals segments past their age and checkpoints when the
    /// checkpoint interval has passed. Returns whether it checkpointed.
    pub fn poll(&mut self, now: Instant) -> Result<bool, SinkError> {
        if let Some(age) = self.cfg.segment_age {
            let old: Vec<TopicPartition> = self
                .parts
                .iter()
                .filter(|(_, p)| p.len() > 0 && now.duration_since(p.opened_at) >= age)
                .map(|(k, _)| k.clone())
                .collect();
            for k in old {
                self.seal(&k, now)?;
            }
        }
        if now.duration_since(self.last_checkpoint) >= self.cfg.checkpoint_interval {
            self.checkpoint()?;
            self.last_checkpoint = now;
            return Ok(true);
        }
        Ok(false)
    }

    /// Makes everything written so far durable and advances every partition's
    /// checkpoint (see the module docs for the order of operations).
    pub fn checkpoint(&mut self) -> Result<(), SinkError> {
        for part in self.parts.values_mut() {
            Self::checkpoint_part(
                #[cfg(test)]
                &mut self.crash_after,
                part,
            )?;
        }
        Ok(())
    }

    /// Checkpoints and closes the sink.
    pub fn close(mut self) -> Result<(), SinkError> {
        self.checkpoint()
    }

    /// The segment files of one partition, in offset order (sealed, then open).
    pub fn segments(dir: &Path, topic: &str, partition: i32) -> Result<Vec<PathBuf>, SinkError> {
        let pdir = dir.join(topic).join(partition.to_string());
        let mut found = Vec::new();
        for e in fs::read_dir(&pdir).map_err(io_err("list", &pdir))? {
            let e = e.map_err(io_err("list", &pdir))?;
            if let Some((base, _)) = e.file_name().to_str().and_then(parse_segment_name) {
                found.push((base, e.path()));
            }
        }
        found.sort();
        Ok(found.into_iter().map(|(_, p)| p).collect())
    }

    /// The durable bytes of one partition: every sealed segment, then the open
    /// segment up to its checkpointed length.
    pub fn read_durable(dir: &Path, topic: &str, partition: i32) -> Result<Vec<u8>, SinkError> {
        let pdir = dir.join(topic).join(partition.to_string());
        let cp_path = pdir.join(CHECKPOINT);
        let text = fs::read_to_string(&cp_path).map_err(io_err("read", &cp_path))?;
        let cp =
            Checkpoint::decode(&text).ok_or_else(|| corrupt(&cp_path, "unreadable checkpoint"))?;
        let mut out = Vec::new();
        for seg in Self::segments(dir, topic, partition)? {
            let mut data = fs::read(&seg).map_err(io_err("read", &seg))?;
            if seg.file_name().and_then(|n| n.to_str()) == Some(cp.segment.as_str()) {
                data.truncate(usize::try_from(cp.length).unwrap_or(usize::MAX));
            } else if seg.extension().is_some_and(|e| e == "open") {
                continue;
            }
            out.extend_from_slice(&data);
        }
        Ok(out)
    }

    // ---- internals ----

    #[cfg(test)]
    fn step(crash_after: &mut Option<usize>) -> Result<(), SinkError> {
        match crash_after {
            Some(0) => Err(SinkError::InjectedCrash),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn create_partition(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        now: Instant,
    ) -> Result<Part, SinkError> {
        if topic.is_empty() || topic == "." || topic == ".." || topic.contains(['/', '\\', '\0']) {
            return Err(SinkError::BadTopic(topic.to_owned()));
        }
        let topic_dir = self.cfg.dir.join(topic);
        let dir = topic_dir.join(partition.to_string());
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        sync_dir(&self.cfg.dir)?;
        sync_dir(&topic_dir)?;
        let segment = segment_name(offset, true);
        #[cfg(test)]
        Self::step(&mut self.crash_after)?;
        let file = create_segment(&dir, &segment)?;
        let mut part = Part {
            dir,
            file,
            segment: segment.clone(),
            file_len: 0,
            buf: Vec::with_capacity(WRITE_BUFFER),
            opened_at: now,
            next: offset,
            durable: Checkpoint {
                segment,
                length: 0,
                next_offset: -1,
            },
        };
        let first = Checkpoint {
            segment: part.segment.clone(),
            length: 0,
            next_offset: offset,
        };
        Self::write_checkpoint(
            #[cfg(test)]
            &mut self.crash_after,
            &mut part,
            first,
        )?;
        Ok(part)
    }

    fn flush_part(
        #[cfg(test)] crash_after: &mut Option<usize>,
        part: &mut Part,
    ) -> Result<(), SinkError> {
        if part.buf.is_empty() {
            return Ok(());
        }
        #[cfg(test)]
        Self::step(crash_after)?;
        let path = part.dir.join(&part.segment);
        part.file
            .write_all(&part.buf)
            .map_err(io_err("write", &path))?;
        part.file_len += part.buf.len() as u64;
        part.buf.clear();
        Ok(())
    }

    fn checkpoint_part(
        #[cfg(test)] crash_after: &mut Option<usize>,
        part: &mut Part,
    ) -> Result<(), SinkError> {
        let want = Checkpoint {
            segment: part.segment.clone(),
            length: part.len(),
            next_offset: part.next,
        };
        if want == part.durable {
            return Ok(());
        }
        Self::flush_part(
            #[cfg(test)]
            crash_after,
            part,
        )?;
        #[cfg(test)]
        Self::step(crash_after)?;
        let path = part.dir.join(&part.segment);
        part.file.sync_data().map_err(io_err("fsync", &path))?;
        Self::write_checkpoint(
            #[cfg(test)]
            crash_after,
            part,
            want,
        )
    }

    fn write_checkpoint(
        #[cfg(test)] crash_after: &mut Option<usize>,
        part: &mut Part,
        cp: Checkpoint,
    ) -> Result<(), SinkError> {
        let tmp = part.dir.join(CHECKPOINT_TMP);
        let dst = part.dir.join(CHECKPOINT);
        #[cfg(test)]
        Self::step(crash_after)?;
        {
            let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
            f.write_all(cp.encode().as_bytes())
                .map_err(io_err("write", &tmp))?;
            #[cfg(test)]
            Self::step(crash_after)?;
            f.sync_all().map_err(io_err("fsync", &tmp))?;
        }
        #[cfg(test)]
        Self::step(crash_after)?;
        fs::rename(&tmp, &dst).map_err(io_err("rename", &tmp))?;
        #[cfg(test)]
        Self::step(crash_after)?;
        sync_dir(&part.dir)?;
        part.durable = cp;
        Ok(())
    }

    /// Seals the open segment and opens the next one.
    fn seal(&mut self, key: &TopicPartition, now: Instant) -> Result<(), SinkError> {
        let Some(part) = self.parts.get_mut(key) else {
            return Ok(());
        };
        #[cfg(test)]
        let crash_after = &mut self.crash_after;
        // 1-2: the whole open segment becomes durable and checkpointed.
        Self::checkpoint_part(
            #[cfg(test)]
            crash_after,
            part,
        )?;
        // 3: record the sealed length (checked at every recovery), then rename
        // B.open -> B.log and make the rename durable.
        let (base, _) = parse_segment_name(&part.segment)
            .ok_or_else(|| corrupt(&part.dir, format!("bad segment name {}", part.segment)))?;
        let from = part.dir.join(&part.segment);
        let sealed = segment_name(base, false);
        let to = part.dir.join(&sealed);
        #[cfg(test)]
        Self::step(crash_after)?;
        record_sealed(&part.dir, &sealed, part.file_len)?;
        #[cfg(test)]
        Self::step(crash_after)?;
        fs::rename(&from, &to).map_err(io_err("rename", &from))?;
        #[cfg(test)]
        Self::step(crash_after)?;
        sync_dir(&part.dir)?;
        // 4-5: the next open segment, then a checkpoint naming it.
        Self::start_segment(
            #[cfg(test)]
            crash_after,
            part,
            now,
        )
    }

    fn start_segment(
        #[cfg(test)] crash_after: &mut Option<usize>,
        part: &mut Part,
        now: Instant,
    ) -> Result<(), SinkError> {
        let segment = segment_name(part.next, true);
        #[cfg(test)]
        Self::step(crash_after)?;
        part.file = create_segment(&part.dir, &segment)?;
        part.segment = segment;
        part.file_len = 0;
        part.buf.clear();
        part.opened_at = now;
        let cp = Checkpoint {
            segment: part.segment.clone(),
            length: 0,
            next_offset: part.next,
        };
        Self::write_checkpoint(
            #[cfg(test)]
            crash_after,
            part,
            cp,
        )
    }

    /// Recovers one partition directory; `None` when it holds nothing durable.
    fn recover(&mut self, dir: &Path) -> Result<Option<Part>, SinkError> {
        let mut opens = Vec::new();
        let mut logs = Vec::new();
        for e in fs::read_dir(dir).map_err(io_err("list", dir))? {
            let e = e.map_err(io_err("list", dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            match parse_segment_name(&name) {
                Some((_, true)) => opens.push(name),
                Some((_, false)) => logs.push(name),
                None => {}
            }
        }
        let tmp = dir.join(CHECKPOINT_TMP);
        if tmp.exists() {
            fs::remove_file(&tmp).map_err(io_err("remove", &tmp))?;
        }
        let cp_path = dir.join(CHECKPOINT);
        let text = match fs::read_to_string(&cp_path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !logs.is_empty() {
                    return Err(corrupt(
                        dir,
                        "sealed segments exist but the checkpoint file is missing",
                    ));
                }
                // Created, but crashed before the first checkpoint: nothing is durable.
                for o in &opens {
                    let p = dir.join(o);
                    fs::remove_file(&p).map_err(io_err("remove", &p))?;
                }
                return Ok(None);
            }
            Err(e) => return Err(io_err("read", &cp_path)(e)),
        };
        let cp =
            Checkpoint::decode(&text).ok_or_else(|| corrupt(&cp_path, "unreadable checkpoint"))?;
        let (base, _) = parse_segment_name(&cp.segment)
            .ok_or_else(|| corrupt(&cp_path, "checkpoint names no segment"))?;
        verify_sealed(dir, &logs, base)?;
        for o in opens.iter().filter(|o| **o != cp.segment) {
            let p = dir.join(o);
            fs::remove_file(&p).map_err(io_err("remove", &p))?;
        }
        let now = Instant::now();
        let open_path = dir.join(&cp.segment);
        let sealed_name = segment_name(base, false);
        if opens.contains(&cp.segment) {
            let file = OpenOptions::new()
                .append(true)
                .open(&open_path)
                .map_err(io_err("open", &open_path))?;
            let len = file.metadata().map_err(io_err("stat", &open_path))?.len();
            if len < cp.length {
                return Err(corrupt(
                    &open_path,
                    format!(
                        "segment holds {len} bytes but its checkpoint says {}",
                        cp.length
                    ),
                ));
            }
            if len > cp.length {
                file.set_len(cp.length)
                    .map_err(io_err("truncate", &open_path))?;
                file.sync_all().map_err(io_err("fsync", &open_path))?;
            }
            return Ok(Some(Part {
                dir: dir.to_owned(),
                file,
                segment: cp.segment.clone(),
                file_len: cp.length,
                buf: Vec::with_capacity(WRITE_BUFFER),
                opened_at: now,
                next: cp.next_offset,
                durable: cp,
            }));
        }
        if logs.contains(&sealed_name) {
            // A seal was cut short after the rename: finish it.
            let sealed = dir.join(&sealed_name);
            let len = fs::metadata(&sealed)
                .map_err(io_err("stat", &sealed))?
                .len();
            if len != cp.length {
                return Err(corrupt(
                    &sealed,
                    format!(
                        "sealed segment holds {len} bytes but its checkpoint says {}",
                        cp.length
                    ),
                ));
            }
            sync_dir(dir)?;
            let cp_next = cp.next_offset;
            let segment = segment_name(cp_next, true);
            let file = create_segment(dir, &segment)?;
            let mut part = Part {
                dir: dir.to_owned(),
                file,
                segment: segment.clone(),
                file_len: 0,
                buf: Vec::with_capacity(WRITE_BUFFER),
                opened_at: now,
                next: cp.next_offset,
                durable: cp,
            };
            Self::write_checkpoint(
                #[cfg(test)]
                &mut self.crash_after,
                &mut part,
                Checkpoint {
                    segment,
                    length: 0,
                    next_offset: cp_next,
                },
            )?;
            return Ok(Some(part));
        }
        Err(corrupt(
            dir,
            format!("the checkpointed segment {} is missing", cp.segment),
        ))
    }
}

/// The per-partition record of sealed segments: one line per seal,
/// `<segment name> <length> <crc32c of the two>`, appended and synced before the
/// segment is renamed to `.log`.
const SEALED: &str = "sealed";

fn sealed_line(name: &str, length: u64) -> String {
    let body = format!("{name} {length}");
    let crc = crc32c::crc32c(body.as_bytes());
    format!("{body} {crc:08x}\n")
}

/// Appends a seal to the partition's `sealed` file and makes it durable.
fn record_sealed(dir: &Path, name: &str, length: u64) -> Result<(), SinkError> {
    let path = dir.join(SEALED);
    let created = !path.exists();
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    f.write_all(sealed_line(name, length).as_bytes())
        .map_err(io_err("write", &path))?;
    f.sync_data().map_err(io_err("fsync", &path))?;
    if created {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Checks the sealed segments of a partition against the lengths recorded when they
/// were sealed (`open_base`: the base offset of the segment the checkpoint names;
/// a record at or past it belongs to a seal that did not finish).
///
/// * a `.log` whose length differs from its seal (truncated, appended to, replaced)
///   is an error, as is a `.log` never recorded as sealed;
/// * a recorded segment that is missing is an error when a newer sealed segment is
///   still there (a hole in the middle, or the newest one deleted); missing
///   segments older than every remaining one are taken as pruned by an operator
///   after shipping them, which is how a log-ingestion sink is meant to be emptied.
///
/// Contents are not checked: the sink keeps no per-record checksum, so a segment
/// changed in place at its own length goes unnoticed. Sinks written before the
/// `sealed` file existed get one from the lengths found (checked from then on).
fn verify_sealed(dir: &Path, logs: &[String], open_base: i64) -> Result<(), SinkError> {
    let path = dir.join(SEALED);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut sorted = logs.to_vec();
            sorted.sort();
            for name in &sorted {
                let len = fs::metadata(dir.join(name))
                    .map_err(io_err("stat", &dir.join(name)))?
                    .len();
                record_sealed(dir, name, len)?;
            }
            if !sorted.is_empty() {
                log::warn!(
                    "{}: no record of sealed segment lengths (a sink from an older weir): recorded the {} found; they are checked from now on",
                    dir.display(),
                    sorted.len()
                );
            }
            return Ok(());
        }
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let mut recorded: BTreeMap<i64, (String, u64)> = BTreeMap::new();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let parsed = line
            .strip_suffix('\n')
            .and_then(|l| {
                let mut f = l.split(' ');
                let (name, len, crc) = (f.next()?, f.next()?, f.next()?);
                let len: u64 = len.parse().ok()?;
                (f.next().is_none() && sealed_line(name, len) == *line && crc.len() == 8)
                    .then_some((name, len))
            })
            .and_then(|(name, len)| Some((parse_segment_name(name)?, name, len)));
        match parsed {
            Some(((base, false), name, len)) => {
                recorded.insert(base, (name.to_owned(), len));
            }
            // The last line may be torn by a crash while it was appended; the seal
            // it belonged to never renamed its segment.
            _ if i + 1 == lines.len() => {}
            _ => return Err(corrupt(&path, format!("line {} is damaged", i + 1))),
        }
    }
    let mut present: BTreeMap<i64, &String> = BTreeMap::new();
    for name in logs {
        if let Some((base, false)) = parse_segment_name(name) {
            present.insert(base, name);
        }
    }
    for (base, name) in &present {
        let seg = dir.join(name);
        let len = fs::metadata(&seg).map_err(io_err("stat", &seg))?.len();
        match recorded.get(base) {
            Some((_, want)) if *want == len => {}
            Some((_, want)) => {
                return Err(corrupt(
                    &seg,
                    format!(
                        "sealed segment holds {len} bytes but held {want} when it was sealed: it was truncated or changed; restore it, or move {} away to consume the partition again from the broker",
                        dir.display()
                    ),
                ));
            }
            None => {
                return Err(corrupt(
                    &seg,
                    "this .log file was never sealed by the sink (copied in from elsewhere?)",
                ));
            }
        }
    }
    let oldest_present = present.keys().next().copied();
    for (base, (name, _)) in recorded.range(..open_base) {
        if present.contains_key(base) {
            continue;
        }
        if oldest_present.is_some_and(|oldest| *base > oldest) {
            return Err(corrupt(
                &dir.join(name),
                "this sealed segment is missing while newer ones remain: its records are lost from the sink; restore it, or move the partition directory away to consume the partition again from the broker",
            ));
        }
    }
    Ok(())
}

fn create_segment(dir: &Path, name: &str) -> Result<File, SinkError> {
    let path = dir.join(name);
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(io_err("create", &path))?;
    sync_dir(dir)?;
    // Reopen in append mode so every write lands at the end.
    drop(f);
    OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(io_err("open", &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, segment_bytes: u64) -> SinkConfig {
        SinkConfig {
            dir: dir.to_owned(),
            segment_bytes,
            segment_age: None,
            checkpoint_interval: Duration::from_millis(0),
        }
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("weir-sink-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn line(topic: &str, p: i32, o: i64) -> Vec<u8> {
        format!("{topic}/{p}/{o} {}\n", "x".repeat((o % 7) as usize)).into_bytes()
    }

    fn expected(topic: &str, p: i32, n: i64) -> Vec<u8> {
        (0..n).flat_map(|o| line(topic, p, o)).collect()
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn checkpoint_encoding_round_trips_and_detects_damage() {
        let cp = Checkpoint {
            segment: segment_name(42, true),
            length: 7,
            next_offset: 99,
        };
        let text = cp.encode();
        assert_eq!(Checkpoint::decode(&text), Some(cp));
        assert_eq!(
            Checkpoint::decode(&text.replace("length 7", "length 8")),
            None
        );
        assert_eq!(Checkpoint::decode(&text[..text.len() - 3]), None);
        assert_eq!(
            parse_segment_name("00000000000000000042.log"),
            Some((42, false))
        );
        assert_eq!(parse_segment_name("42.log"), None);
    }

    #[test]
    fn writes_rotate_and_resume() {
        let dir = tmpdir("basic");
        let now = Instant::now();
        let mut s = Sink::open(cfg(&dir, 64)).unwrap();
        for o in 5..50 {
            assert!(s.write("t", 0, o, &line("t", 0, o), now).unwrap());
        }
        // Seals checkpoint the sealed data; the open segment's records are not durable yet.
        let committed = s.committed_positions()[&("t".to_owned(), 0)];
        assert!((5..50).contains(&committed), "{committed}");
        assert_eq!(s.resume_positions()[&("t".to_owned(), 0)], 50);
        s.close().unwrap();
        let segs = Sink::segments(&dir, "t", 0).unwrap();
        assert!(segs.len() > 5, "{segs:?}");
        assert!(segs[0].ends_with("00000000000000000005.log"));
        for seg in &segs[..segs.len() - 1] {
            assert!(fs::metadata(seg).unwrap().len() <= 64);
        }
        let s = Sink::open(cfg(&dir, 64)).unwrap();
        assert_eq!(s.resume_positions()[&("t".to_owned(), 0)], 50);
        assert_eq!(s.committed_positions()[&("t".to_owned(), 0)], 50);
        let want: Vec<u8> = (5..50).flat_map(|o| line("t", 0, o)).collect();
        assert_eq!(Sink::read_durable(&dir, "t", 0).unwrap(), want);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn old_records_are_dropped_and_age_seals() {
        let dir = tmpdir("age");
        let t0 = Instant::now();
        let mut c = cfg(&dir, 1 << 20);
        c.segment_age = Some(Duration::from_secs(10));
        c.checkpoint_interval = Duration::from_secs(1);
        let mut s = Sink::open(c).unwrap();
        assert!(s.write("t", 1, 0, b"a\n", t0).unwrap());
        assert!(!s.write("t", 1, 0, b"a\n", t0).unwrap());
        assert!(s.poll(t0 + Duration::from_secs(2)).unwrap());
        assert!(!s.poll(t0 + Duration::from_secs(2)).unwrap());
        assert_eq!(Sink::segments(&dir, "t", 1).unwrap().len(), 1);
        s.poll(t0 + Duration::from_secs(11)).unwrap();
        let segs = Sink::segments(&dir, "t", 1).unwrap();
        assert_eq!(segs.len(), 2);
        assert!(segs[0].ends_with("00000000000000000000.log"));
        assert!(segs[1].ends_with("00000000000000000001.open"));
        s.advance("t", 1, 10);
        s.close().unwrap();
        let s = Sink::open(cfg(&dir, 1 << 20)).unwrap();
        assert_eq!(s.resume_positions()[&("t".to_owned(), 1)], 10);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_inputs() {
        let dir = tmpdir("bad");
        let mut s = Sink::open(cfg(&dir, 100)).unwrap();
        assert!(matches!(
            s.write("..", 0, 0, b"x", Instant::now()),
            Err(SinkError::BadTopic(_))
        ));
        assert!(matches!(
            s.write("a/b", 0, 0, b"x", Instant::now()),
            Err(SinkError::BadTopic(_))
        ));
        assert!(matches!(
            s.write("t", 0, -1, b"x", Instant::now()),
            Err(SinkError::BadOffset(-1))
        ));
        s.write("t", 0, 0, b"x\n", Instant::now()).unwrap();
        s.close().unwrap();
        // A damaged checkpoint is reported, not guessed around.
        fs::write(dir.join("t/0/checkpoint"), "garbage").unwrap();
        let e = Sink::open(cfg(&dir, 100)).unwrap_err().to_string();
        assert!(
            e.contains("unreadable checkpoint") && e.contains("move it aside"),
            "{e}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Writes records 0..40 of t/0 in 32-byte segments (several sealed ones).
    fn sealed_sink(name: &str) -> (PathBuf, Vec<PathBuf>) {
        let dir = tmpdir(name);
        let mut s = Sink::open(cfg(&dir, 32)).unwrap();
        for o in 0..40 {
            s.write("t", 0, o, &line("t", 0, o), Instant::now())
                .unwrap();
        }
        s.close().unwrap();
        let logs: Vec<PathBuf> = Sink::segments(&dir, "t", 0)
            .unwrap()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        assert!(logs.len() >= 5, "{logs:?}");
        (dir, logs)
    }

    #[test]
    fn a_truncated_sealed_segment_is_an_error_on_resume() {
        let (dir, logs) = sealed_sink("sealed-trunc");
        let f = OpenOptions::new().write(true).open(&logs[1]).unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len - 3).unwrap();
        drop(f);
        let e = Sink::open(cfg(&dir, 32)).unwrap_err().to_string();
        assert!(e.contains("truncated or changed"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_sealed_segment_is_an_error_unless_it_was_the_oldest() {
        let (dir, logs) = sealed_sink("sealed-gone");
        // The oldest ones, shipped and pruned: fine.
        fs::remove_file(&logs[0]).unwrap();
        fs::remove_file(&logs[1]).unwrap();
        let s = Sink::open(cfg(&dir, 32)).unwrap();
        assert_eq!(s.resume_positions()[&("t".to_owned(), 0)], 40);
        drop(s);
        // A hole among the rest (logs[2] and logs[4..] remain): records lost.
        fs::remove_file(&logs[3]).unwrap();
        let e = Sink::open(cfg(&dir, 32)).unwrap_err().to_string();
        assert!(e.contains("missing while newer ones remain"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sinks_without_a_seal_record_get_one_and_are_checked_from_then_on() {
        let (dir, logs) = sealed_sink("sealed-legacy");
        let record = dir.join("t/0").join(SEALED);
        fs::remove_file(&record).unwrap();
        drop(Sink::open(cfg(&dir, 32)).unwrap());
        assert_eq!(
            fs::read_to_string(&record).unwrap().lines().count(),
            logs.len()
        );
        fs::write(&logs[0], b"x").unwrap();
        assert!(Sink::open(cfg(&dir, 32)).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_seal_record_is_ignored_and_a_damaged_one_is_not() {
        let (dir, _) = sealed_sink("sealed-torn");
        let record = dir.join("t/0").join(SEALED);
        let good = fs::read_to_string(&record).unwrap();
        fs::write(&record, format!("{good}0000000000000000009")).unwrap();
        drop(Sink::open(cfg(&dir, 32)).unwrap());
        let damaged = good.replacen(' ', "  ", 1);
        fs::write(&record, damaged).unwrap();
        let e = Sink::open(cfg(&dir, 32)).unwrap_err().to_string();
        assert!(e.contains("line 1 is damaged"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Crashes at every durable step of writes, checkpoints and seals (the injected
    /// crash abandons the sink without flushing, like kill -9), reopens, resumes,
    /// and checks that each partition holds every record exactly once.
    #[test]
    fn injected_crashes_at_every_step_keep_exactly_once() {
        let dir = tmpdir("crash");
        let total: i64 = 400;
        let parts = [0, 1, 2];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut crashes = 0;
        let mut runs = 0;
        loop {
            runs += 1;
            assert!(runs < 5000, "no progress");
            let mut s = Sink::open(cfg(&dir, 150)).unwrap();
            let resume = s.resume_positions();
            let pos = |p: i32| resume.get(&("t".to_owned(), p)).copied().unwrap_or(0);
            if parts.iter().all(|&p| pos(p) >= total)
                && s.committed_positions().len() == parts.len()
            {
                break;
            }
            s.crash_after = Some((rng.next() % 40) as usize);
            let mut next: Vec<i64> = parts.iter().map(|&p| pos(p)).collect();
            let result: Result<(), SinkError> = (|| {
                let now = Instant::now();
                loop {
                    let i = (rng.next() % parts.len() as u64) as usize;
                    if next.iter().all(|&n| n >= total) {
                        return s.checkpoint();
                    }
                    if next[i] >= total {
                        continue;
                    }
                    // Occasionally replay an old record, as a re-fetch would.
                    if next[i] > 0 && matches!(rng.next() % 10, 0) {
                        assert!(!s.write("t", parts[i], next[i] - 1, b"dup\n", now)?);
                    }
                    s.write("t", parts[i], next[i], &line("t", parts[i], next[i]), now)?;
                    next[i] += 1;
                    if matches!(rng.next() % 8, 0) {
                        s.checkpoint()?;
                    }
                }
            })();
            match result {
                Err(SinkError::InjectedCrash) => crashes += 1,
                Err(e) => panic!("{e}"),
                Ok(()) => {}
            }
            // Simulated kill -9: no flush, no checkpoint.
            drop(s);
            // Whatever is durable must be an exact prefix.
            for &p in &parts {
                if let Ok(got) = Sink::read_durable(&dir, "t", p) {
                    let want = expected("t", p, total);
                    assert!(
                        want.starts_with(&got),
                        "partition {p} is not an exact prefix after run {runs}"
                    );
                }
            }
        }
        assert!(crashes > 20, "only {crashes} crashes");
        for &p in &parts {
            assert_eq!(
                Sink::read_durable(&dir, "t", p).unwrap(),
                expected("t", p, total)
            );
            // No stray open segments besides the checkpointed one.
            let opens = Sink::segments(&dir, "t", p)
                .unwrap()
                .iter()
                .filter(|s| s.extension().is_some_and(|e| e == "open"))
                .count();
            assert_eq!(opens, 1);
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Measurement, not a timed test: sink throughput with a checkpoint (fsync) every
    /// 10,000 records and 64 MiB segments.
    /// `cargo test -p weir --release --lib sink::tests::measure -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn measure() {
        let dir = tmpdir("measure");
        let mut s = Sink::open(cfg(&dir, 64 << 20)).unwrap();
        let rec = vec![b'r'; 127];
        let n = 2_000_000i64;
        let now = Instant::now();
        let start = Instant::now();
        for o in 0..n {
            s.write("t", (o % 4) as i32, o / 4, &rec, now).unwrap();
            if o % 10_000 == 9_999 {
                s.checkpoint().unwrap();
            }
        }
        s.close().unwrap();
        let el = start.elapsed();
        println!(
            "sink: {:.0} records/s, {:.0} MB/s ({} records of {} bytes, checkpoint every 10k)",
            n as f64 / el.as_secs_f64(),
            (n as f64 * rec.len() as f64) / el.as_secs_f64() / 1e6,
            n,
            rec.len()
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
