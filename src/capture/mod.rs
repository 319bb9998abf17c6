//! Capture files: pcap and pcapng read front to back into borrowed
//! [`RawPacket`]s, with the byte offset of every record for error messages.
//!
//! - [`CaptureFile`]: one open file; the format comes from the magic bytes.
//! - [`Timestamp`]: nanoseconds since the epoch, printed as RFC 3339 UTC.
//! - [`list_inputs`]: the files the user named (directories expanded), in the
//!   order of their first packet.
//! - [`CaptureError`]: why a file could not be read.
//! - [`LiveCapture`]: one network interface through libpcap, with [`LiveError`].

mod chunk;
mod endian;
mod error;
mod file;
mod frame;
mod inputs;
pub mod live;
mod pcap;
pub mod pcapng;
mod source;

pub use chunk::{Chunk, ChunkPacket, CHUNK_BYTES};
pub use error::CaptureError;
pub use file::{CaptureFile, CaptureFormat, RawPacket};
pub use frame::MAX_BLOCK;
pub use inputs::{is_capture, list_inputs, Inputs, SkipReason, Skipped, STDIN};
pub use live::{KernelStats, LiveCapture, LiveError, LiveOptions};
pub use source::Compression;

#[cfg(test)]
mod tests;
