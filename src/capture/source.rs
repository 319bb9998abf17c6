//! Where a capture's bytes come from: a plain file (read as it is), a
//! compressed file (`.gz`, `.zst`, told by its magic bytes, not its name)
//! or standard input, both decompressed on the fly: archives are mostly
//! compressed, and a temporary copy of a week of traffic would fill a disk.
//! Every source is read front to back through the same reader and limits
//! ([`super::MAX_BLOCK`] per record); offsets are in the decompressed bytes.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// gzip's magic (RFC 1952), then the deflate method byte.
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
/// A zstd frame's magic number, little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Compressed read buffer: large reads, few system calls.
const COMPRESSED_BUFFER: usize = 256 << 10;

/// How a stream of bytes is compressed, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    /// From the first bytes of a stream (`None`: not compressed, or not
    /// in a format read here).
    pub fn sniff(prefix: &[u8]) -> Option<Compression> {
        if prefix.starts_with(&GZIP_MAGIC) {
            Some(Compression::Gzip)
        } else if prefix.starts_with(&ZSTD_MAGIC) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }

    /// For messages: the tool that tests such a file.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// A capture's bytes, as the reader sees them.
pub(super) enum Input {
    File(File),
    /// Bytes already in memory (`CaptureFile::from_bytes`).
    Memory(io::Cursor<Vec<u8>>),
    /// Decompressed on the fly, or standard input: read once, front to back.
    Stream {
        reader: Box<dyn Read + Send>,
        compression: Option<Compression>,
        /// Compressed bytes read so far (for the progress bar), when the
        /// stream comes from a file.
        raw_read: Option<Arc<AtomicU64>>,
        /// From a file, which can be opened again (to look ahead).
        from_file: bool,
    },
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::File(file) => f.debug_tuple("File").field(file).finish(),
            Input::Memory(c) => f.debug_tuple("Memory").field(&c.get_ref().len()).finish(),
            Input::Stream { compression, .. } => f
                .debug_struct("Stream")
                .field("compression", compression)
                .finish(),
        }
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::File(f) => f.read(buf),
            Input::Memory(c) => c.read(buf),
            Input::Stream { reader, .. } => reader.read(buf),
        }
    }
}

impl Input {
    /// The compression of the stream, if any.
    pub fn compression(&self) -> Option<Compression> {
        match self {
            Input::Stream { compression, .. } => *compression,
            _ => None,
        }
    }

    /// Compressed bytes read so far, for a compressed file.
    pub fn raw_read(&self) -> Option<u64> {
        match self {
            Input::Stream {
                raw_read: Some(n), ..
            } => Some(n.load(Ordering::Relaxed)),
            _ => None,
        }
    }
}

/// `file`, opened: as it is, or through its decompressor when its first
/// bytes say it is compressed (it is then read from its start again).
pub(super) fn file_input(mut file: File) -> io::Result<Input> {
    use std::io::{Seek, SeekFrom};
    let mut prefix = [0u8; 4];
    let have = read_prefix(&mut file, &mut prefix)?;
    file.seek(SeekFrom::Start(0))?;
    let Some(compression) = Compression::sniff(&prefix[..have]) else {
        return Ok(Input::File(file));
    };
    let raw_read = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: file,
        read: Arc::clone(&raw_read),
    };
    Ok(Input::Stream {
        reader: decompress(compression, counted)?,
        compression: Some(compression),
        raw_read: Some(raw_read),
        from_file: true,
    })
}

/// A stream that cannot be read twice (standard input): its first bytes
/// are kept and given back before the rest, so no seek is needed.
pub(super) fn stream_input(mut reader: Box<dyn Read + Send>) -> io::Result<Input> {
    let mut prefix = [0u8; 4];
    let have = read_prefix(&mut reader, &mut prefix)?;
    let whole = io::Cursor::new(prefix[..have].to_vec()).chain(reader);
    let compression = Compression::sniff(&prefix[..have]);
    let reader: Box<dyn Read + Send> = match compression {
        Some(c) => decompress(c, whole)?,
        None => Box::new(whole),
    };
    Ok(Input::Stream {
        reader,
        compression,
        raw_read: None,
        from_file: false,
    })
}

fn decompress(
    compression: Compression,
    raw: impl Read + Send + 'static,
) -> io::Result<Box<dyn Read + Send>> {
    let buffered = BufReader::with_capacity(COMPRESSED_BUFFER, raw);
    Ok(match compression {
        // Multi-member: `pigz` and concatenated `.gz` files are one stream.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
    })
}

/// Up to `prefix.len()` bytes, fewer only at the end of the stream.
fn read_prefix(reader: &mut impl Read, prefix: &mut [u8]) -> io::Result<usize> {
    let mut have = 0;
    while have < prefix.len() {
        match reader.read(&mut prefix[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(have)
}

/// A reader that counts what it reads (compressed bytes, for progress).
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The first (decompressed) bytes of the file at `path`: up to 4, fewer if it is shorter.
pub(super) fn first_bytes(path: &std::path::Path) -> io::Result<([u8; 4], usize)> {
    let mut input = file_input(File::open(path)?)?;
    let mut magic = [0u8; 4];
    let have = read_prefix(&mut input, &mut magic)?;
    Ok((magic, have))
}
