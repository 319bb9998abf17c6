//! The extract thread: evidence batches in, pcapng files out.
//!
//! Per-flow files can be far more than the process may keep open (a scan
//! flags thousands of flows at once), so at most [`MAX_OPEN`] are open: the
//! least recently written is closed to open another, and reopened in append
//! mode when its flow sends more (only if its name still leads to the same
//! file: see [`create`]). What a closed file needs to go on (its path and
//! the link types it has interface blocks for) stays in memory until its
//! flow ends.
//!
//! Truthful: each file's blocks are gathered in its own buffer and written
//! whole, so the file on disk always ends at a block boundary (`good`), and
//! the stats count a file, a packet or a byte only once it is there. When a
//! write fails (a full disk), the file is cut back to its last whole block
//! and renamed `NAME.partial`, or removed if it holds no packet (a verdict's
//! file that an event has already named keeps its name). Each flow
//! that ends gets an [`Outcome`] saying which name, if any, its event may give.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::classify::Classifier;
use crate::output::create::{self, Identity};
use crate::verdict::Verdict;

use super::pcapng;
use super::{
    file_name, flow_comment, verdict_comment, Counters, EvidenceBatch, ExtractBy, Item, Outcome,
    Packet, Shared,
};

/// Files kept open at once: far below the usual limit of 1024 descriptors.
pub(super) const MAX_OPEN: usize = 64;
/// Buffer per open file; written when it holds this much.
const FILE_BUFFER: usize = 32 << 10;

const APPLICATION: &str = concat!("portmatrix ", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FileKey {
    Flow(u64),
    Verdict(Verdict),
}

struct EvidenceFile {
    path: PathBuf,
    identity: Option<Identity>,
    out: Option<File>,
    /// Whole blocks not written yet.
    buf: Vec<u8>,
    /// The file's length on disk: always a block boundary.
    good: u64,
    /// Packets in `buf`, and packets on disk.
    buffered_packets: u64,
    good_packets: u64,
    /// Interface `i` of the file has link type `interfaces[i]`.
    interfaces: Vec<u16>,
    /// Its key in the open files' LRU order, while open.
    last_use: u64,
    /// Writing failed: the file was cut back and renamed or removed (or kept,
    /// see `named`), and its later packets are counted as errors.
    failed: bool,
    /// An event already gave this name (a flow of a verdict's file ended
    /// whole in it): a failure later cuts the file back but keeps the name,
    /// so that the path that event gave still leads to its packets.
    named: bool,
}

impl EvidenceFile {
    /// Write the buffer (whole blocks) and count what reached the disk.
    fn drain(&mut self, counters: &Counters) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::other("the file is not open"))?;
        out.write_all(&self.buf)?;
        let first = self.good_packets == 0 && self.buffered_packets > 0;
        self.good += self.buf.len() as u64;
        self.good_packets += self.buffered_packets;
        Counters::add(&counters.bytes, self.buf.len() as u64);
        Counters::add(&counters.packets, self.buffered_packets);
        if first {
            Counters::add(&counters.files, 1);
        }
        self.buffered_packets = 0;
        self.buf.clear();
        // A huge frame must not keep its buffer for the rest of the run.
        self.buf.shrink_to(FILE_BUFFER);
        Ok(())
    }

    /// What the event of a flow whose packets all went to this file may say.
    fn outcome(&self, first_packet_end: u64) -> Outcome {
        if !self.failed {
            Outcome::Whole
        } else if !self.named && self.good_packets > 0 && first_packet_end <= self.good {
            Outcome::Partial
        } else {
            Outcome::Missing
        }
    }
}

pub(crate) struct EvidenceFiles {
    shared: Arc<Shared>,
    classifier: Arc<Classifier>,
    files: HashMap<FileKey, EvidenceFile>,
    /// Per flow with `--extract-by verdict`: where its first packet ends in
    /// its verdict's file (what a cut-back file must still hold to have it).
    firsts: HashMap<u64, (FileKey, u64)>,
    /// The open files, least recently used first.
    open: BTreeMap<u64, FileKey>,
    clock: u64,
    /// The first error is printed; the rest are counted.
    reported: bool,
}

impl EvidenceFiles {
    pub fn new(shared: Arc<Shared>, classifier: Arc<Classifier>) -> EvidenceFiles {
        EvidenceFiles {
            shared,
            classifier,
            files: HashMap::new(),
            firsts: HashMap::new(),
            open: BTreeMap::new(),
            clock: 0,
            reported: false,
        }
    }

    /// Write every batch until the workers hang up, then close every file.
    pub fn run(mut self, rx: Receiver<EvidenceBatch>) {
        for batch in rx {
            self.apply(&batch);
            self.shared.in_flight.release(batch.bytes.len());
        }
        let keys: Vec<FileKey> = self.open.values().copied().collect();
        for key in keys {
            self.close(key);
        }
        // `self` drops here: the outcomes are closed (see `Drop`).
    }

    fn apply(&mut self, batch: &EvidenceBatch) {
        for item in &batch.items {
            match item {
                Item::Packet(p) => self.packet(p, batch),
                Item::End(id) => self.end(*id),
            }
        }
    }

    /// Flow `id` ended: its packets are on disk (or not), say which.
    fn end(&mut self, id: u64) {
        let outcome = match self.shared.config.by {
            ExtractBy::Flow => {
                let key = FileKey::Flow(id);
                self.close(key);
                let outcome = self
                    .files
                    .get(&key)
                    .map_or(Outcome::Missing, |f| f.outcome(0));
                self.files.remove(&key);
                outcome
            }
            ExtractBy::Verdict => match self.firsts.remove(&id) {
                Some((key, first_end)) => {
                    self.sync(key);
                    match self.files.get_mut(&key) {
                        Some(file) => {
                            let outcome = file.outcome(first_end);
                            file.named |= outcome == Outcome::Whole;
                            outcome
                        }
                        None => Outcome::Missing,
                    }
                }
                None => Outcome::Missing,
            },
        };
        self.shared.outcomes.post(id, outcome);
    }

    fn packet(&mut self, p: &Packet, batch: &EvidenceBatch) {
        let by = self.shared.config.by;
        let key = match by {
            ExtractBy::Flow => FileKey::Flow(p.flow_id),
            ExtractBy::Verdict => FileKey::Verdict(p.verdict),
        };
        let opening = p.opens.and_then(|i| batch.flows.get(i));
        let comment = opening.map(|flow| flow_comment(flow, &self.classifier));
        if !self.files.contains_key(&key) {
            let (name, header) = match (by, opening, &comment) {
                (ExtractBy::Flow, Some(flow), Some(c)) => (file_name(by, flow), c.clone()),
                (ExtractBy::Verdict, Some(flow), _) => {
                    (file_name(by, flow), verdict_comment(p.verdict))
                }
                // A flow's packets come after its first; nothing to write to.
                _ => return self.error(None, &io::Error::other("packet of an unknown flow")),
            };
            self.create(key, name, &header);
        }
        let frame = batch.bytes.get(p.at..p.at + p.len).unwrap_or_default();
        let snaplen = self.shared.config.snaplen;
        let Some(file) = self.with_file(key) else {
            return;
        };
        let interface = match file.interfaces.iter().position(|&lt| lt == p.link_type) {
            Some(i) => i,
            None => {
                // Into a Vec: cannot fail.
                let _ = pcapng::write_interface(&mut file.buf, p.link_type, snaplen);
                file.interfaces.push(p.link_type);
                file.interfaces.len() - 1
            }
        };
        let interface = u32::try_from(interface).unwrap_or(u32::MAX);
        let at = file.buf.len();
        if let Err(e) = pcapng::write_packet(
            &mut file.buf,
            interface,
            p.ts,
            frame,
            p.orig_len,
            comment.as_deref(),
        ) {
            // A block too large for pcapng: leave it out, count it.
            file.buf.truncate(at);
            return self.error(None, &e);
        }
        file.buffered_packets += 1;
        let end = file.good + file.buf.len() as u64;
        let full = file.buf.len() >= FILE_BUFFER;
        if by == ExtractBy::Verdict && p.opens.is_some() {
            self.firsts.insert(p.flow_id, (key, end));
        }
        if full {
            self.sync(key);
        }
    }

    /// Start a file (replacing one of the same name, never writing through
    /// a link) with its section header, in its buffer.
    fn create(&mut self, key: FileKey, name: String, comment: &str) {
        let path = self.shared.config.dir.join(name);
        self.make_room();
        let created =
            create::create_replacing(&path).and_then(|f| Identity::of(&f).map(|id| (f, id)));
        self.clock += 1;
        let mut file = EvidenceFile {
            path,
            identity: None,
            out: None,
            buf: Vec::with_capacity(FILE_BUFFER),
            good: 0,
            buffered_packets: 0,
            good_packets: 0,
            interfaces: Vec::new(),
            last_use: self.clock,
            failed: false,
            named: false,
        };
        match created {
            Ok((out, identity)) => {
                let _ = pcapng::write_section_header(&mut file.buf, comment, APPLICATION);
                file.out = Some(out);
                file.identity = Some(identity);
                self.open.insert(self.clock, key);
            }
            Err(e) => {
                file.failed = true;
                self.error(Some(&file.path), &e);
            }
        }
        self.files.insert(key, file);
    }

    /// The file to add a block to, open (reopened if it was closed to make
    /// room) and most recently used; `None` (counted) if it failed.
    fn with_file(&mut self, key: FileKey) -> Option<&mut EvidenceFile> {
        let needs_open = self
            .files
            .get(&key)
            .is_some_and(|f| f.out.is_none() && !f.failed);
        if needs_open {
            self.make_room();
        }
        self.clock += 1;
        let clock = self.clock;
        let file = self.files.get_mut(&key)?;
        if file.failed {
            Counters::add(&self.shared.counters.errors, 1);
            return None;
        }
        if file.out.is_none() {
            let reopened = file
                .identity
                .ok_or_else(|| io::Error::other("never created"))
                .and_then(|id| create::reopen_append(&file.path, id));
            match reopened {
                Ok(f) => file.out = Some(f),
                Err(e) => {
                    self.fail(key, &e);
                    return None;
                }
            }
        } else {
            self.open.remove(&file.last_use);
        }
        let file = self.files.get_mut(&key)?;
        file.last_use = clock;
        self.open.insert(clock, key);
        Some(file)
    }

    /// Write what `key`'s file holds in its buffer; on failure cut it back.
    fn sync(&mut self, key: FileKey) {
        let Some(file) = self.files.get_mut(&key) else {
            return;
        };
        if file.failed || file.out.is_none() {
            return;
        }
        if let Err(e) = file.drain(&self.shared.counters) {
            self.fail(key, &e);
        }
    }

    /// Writing `key`'s file failed: count the packets that are lost, cut
    /// the file back to its last whole block, and rename it `NAME.partial`
    /// (it holds packets) or remove it (it holds none). A file an event has
    /// already named keeps its name (the flows that end later get no path:
    /// the file may hold only their first packets, and says so nowhere).
    fn fail(&mut self, key: FileKey, e: &io::Error) {
        let Some(file) = self.files.get_mut(&key) else {
            return;
        };
        file.failed = true;
        self.open.remove(&file.last_use);
        Counters::add(&self.shared.counters.errors, file.buffered_packets);
        file.buffered_packets = 0;
        file.buf = Vec::new();
        if let Some(out) = file.out.take() {
            let _ = out.set_len(file.good);
        }
        let path = file.path.clone();
        // Renaming replaces whatever has that name; it never writes through it.
        let _ = if file.named {
            Ok(())
        } else if file.good_packets > 0 {
            std::fs::rename(&path, partial_name(&path))
        } else {
            std::fs::remove_file(&path)
        };
        self.error(Some(&path), e);
    }

    /// Close the least recently written file if as many as allowed are open.
    fn make_room(&mut self) {
        if self.open.len() >= MAX_OPEN {
            if let Some((_, key)) = self.open.first_key_value().map(|(&c, &k)| (c, k)) {
                self.close(key);
            }
        }
    }

    /// Write and close (not forget) a file.
    fn close(&mut self, key: FileKey) {
        self.sync(key);
        if let Some(file) = self.files.get_mut(&key) {
            self.open.remove(&file.last_use);
            file.out = None;
        }
    }

    fn error(&mut self, path: Option<&PathBuf>, e: &io::Error) {
        Counters::add(&self.shared.counters.errors, 1);
        if !self.reported {
            self.reported = true;
            let what = path.map_or_else(String::new, |p| format!(" {}", p.display()));
            crate::diag!(
                "portmatrix: error: cannot write the evidence file{what}: {e}; check the folder's \
space and permissions (a file cut short is renamed NAME.partial; later evidence errors are \
only counted: stats extract.errors)"
            );
        }
    }
}

/// `NAME.partial`: the name of a file cut short.
pub(super) fn partial_name(path: &std::path::Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

impl Drop for EvidenceFiles {
    /// However the thread ends (a panic too), nobody waits for an outcome
    /// that will not come.
    fn drop(&mut self) {
        self.shared.outcomes.close();
    }
}
