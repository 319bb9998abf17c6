//! The extract thread: evidence batches in, pcapng files out.
//!
//! Per-flow files can be far more than the process may keep open (a scan
//! flags thousands of flows at once), so at most [`MAX_OPEN`] are open: the
//! least recently written is closed to open another, and reopened in append
//! mode when its flow sends more. What a closed file needs to go on (its
//! path and the link types it has interface blocks for) stays in memory
//! until its flow ends.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::classify::{Classifier, Verdict};
use crate::output::evidence::{file_name, flow_comment, verdict_comment, ExtractBy};
use crate::output::pcapng;

use super::{Counters, EvidenceBatch, Item, Packet, Shared};

/// Files kept open at once: far below the usual limit of 1024 descriptors.
pub(super) const MAX_OPEN: usize = 64;
/// Buffer per open file.
const FILE_BUFFER: usize = 32 << 10;

const APPLICATION: &str = concat!("portmatrix ", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FileKey {
    Flow(u64),
    Verdict(Verdict),
}

struct EvidenceFile {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    /// Interface `i` of the file has link type `interfaces[i]`.
    interfaces: Vec<u16>,
    /// Its key in the open files' LRU order, while open.
    last_use: u64,
    /// Writing failed once: its later packets are counted as errors.
    failed: bool,
}

pub(in crate::pipeline) struct EvidenceFiles {
    shared: Arc<Shared>,
    classifier: Arc<Classifier>,
    files: HashMap<FileKey, EvidenceFile>,
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
            open: BTreeMap::new(),
            clock: 0,
            reported: false,
        }
    }

    /// Write every batch until the workers hang up, then close every file.
    pub fn run(mut self, rx: Receiver<EvidenceBatch>) {
        for batch in rx {
            self.apply(&batch);
        }
        let keys: Vec<FileKey> = self.open.values().copied().collect();
        for key in keys {
            self.close(key);
        }
    }

    fn apply(&mut self, batch: &EvidenceBatch) {
        for item in &batch.items {
            match item {
                Item::Packet(p) => self.packet(p, batch),
                Item::End(id) => {
                    if self.shared.config.by == ExtractBy::Flow {
                        self.close(FileKey::Flow(*id));
                        self.files.remove(&FileKey::Flow(*id));
                    }
                }
            }
        }
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
        let result = self.with_file(key, |file, out, snaplen| {
            let mut written = 0;
            let interface = match file.iter().position(|&lt| lt == p.link_type) {
                Some(i) => i,
                None => {
                    written += pcapng::write_interface(out, p.link_type, snaplen)?;
                    file.push(p.link_type);
                    file.len() - 1
                }
            };
            let interface = u32::try_from(interface).unwrap_or(u32::MAX);
            written +=
                pcapng::write_packet(out, interface, p.ts, frame, p.orig_len, comment.as_deref())?;
            Ok(written)
        });
        if let Some(written) = result {
            let c = &self.shared.counters;
            Counters::add(&c.packets, 1);
            Counters::add(&c.bytes, written);
        }
    }

    /// Start a file (replacing one of the same name) with its section header.
    fn create(&mut self, key: FileKey, name: String, comment: &str) {
        let path = self.shared.config.dir.join(name);
        self.make_room();
        let created = File::create(&path).and_then(|f| {
            let mut out = BufWriter::with_capacity(FILE_BUFFER, f);
            let n = pcapng::write_section_header(&mut out, comment, APPLICATION)?;
            Ok((out, n))
        });
        self.clock += 1;
        let mut file = EvidenceFile {
            path,
            out: None,
            interfaces: Vec::new(),
            last_use: self.clock,
            failed: false,
        };
        match created {
            Ok((out, n)) => {
                file.out = Some(out);
                self.open.insert(self.clock, key);
                Counters::add(&self.shared.counters.files, 1);
                Counters::add(&self.shared.counters.bytes, n);
            }
            Err(e) => {
                file.failed = true;
                self.error(Some(&file.path), &e);
            }
        }
        self.files.insert(key, file);
    }

    /// Run `write` on the file's interfaces and open writer (reopened if it
    /// was closed to make room); count an error instead if that fails.
    fn with_file(
        &mut self,
        key: FileKey,
        write: impl FnOnce(&mut Vec<u16>, &mut BufWriter<File>, u32) -> io::Result<u64>,
    ) -> Option<u64> {
        let needs_open = self
            .files
            .get(&key)
            .is_some_and(|f| f.out.is_none() && !f.failed);
        if needs_open {
            self.make_room();
        }
        self.clock += 1;
        let clock = self.clock;
        let snaplen = self.shared.config.snaplen;
        let file = self.files.get_mut(&key)?;
        if file.failed {
            Counters::add(&self.shared.counters.errors, 1);
            return None;
        }
        if file.out.is_none() {
            match OpenOptions::new().append(true).open(&file.path) {
                Ok(f) => file.out = Some(BufWriter::with_capacity(FILE_BUFFER, f)),
                Err(e) => {
                    file.failed = true;
                    let path = file.path.clone();
                    self.error(Some(&path), &e);
                    return None;
                }
            }
        } else {
            self.open.remove(&file.last_use);
        }
        file.last_use = clock;
        self.open.insert(clock, key);
        let out = file.out.as_mut()?;
        match write(&mut file.interfaces, out, snaplen) {
            Ok(n) => Some(n),
            Err(e) => {
                file.failed = true;
                file.out = None;
                self.open.remove(&clock);
                let path = file.path.clone();
                self.error(Some(&path), &e);
                None
            }
        }
    }

    /// Close the least recently written file if as many as allowed are open.
    fn make_room(&mut self) {
        if self.open.len() >= MAX_OPEN {
            if let Some((_, key)) = self.open.pop_first() {
                self.close_file(key);
            }
        }
    }

    fn close(&mut self, key: FileKey) {
        if let Some(file) = self.files.get(&key) {
            self.open.remove(&file.last_use);
        }
        self.close_file(key);
    }

    /// Flush and close (not forget) a file already out of the LRU order.
    fn close_file(&mut self, key: FileKey) {
        let Some(file) = self.files.get_mut(&key) else {
            return;
        };
        if let Some(mut out) = file.out.take() {
            if let Err(e) = out.flush() {
                file.failed = true;
                let path = file.path.clone();
                self.error(Some(&path), &e);
            }
        }
    }

    fn error(&mut self, path: Option<&PathBuf>, e: &io::Error) {
        Counters::add(&self.shared.counters.errors, 1);
        if !self.reported {
            self.reported = true;
            let what = path.map_or_else(String::new, |p| format!(" {}", p.display()));
            crate::diag!(
                "portmatrix: error: cannot write the evidence file{what}: {e}; check the folder's \
space and permissions (later evidence errors are only counted: stats extract.errors)"
            );
        }
    }
}
