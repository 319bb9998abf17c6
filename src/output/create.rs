//! Every file portmatrix writes is opened here, and never through a link.
//!
//! portmatrix often runs as root and writes into folders others can write to
//! (a shared evidence folder, `/tmp`). A symbolic link planted there under a
//! name portmatrix is about to use (evidence names are predictable: flow ids
//! are stable) would make a plain `File::create` overwrite the link's target.
//! So a file is either created new (`O_CREAT|O_EXCL|O_NOFOLLOW`: a link or
//! anything else already there makes it fail, never followed), or written
//! under an unpredictable temporary name and renamed over the target, which
//! replaces a link instead of writing through it. Appending to an existing
//! file (`live -o`) refuses a link and a file with other hard links.

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::libc;

/// Where a file lives on disk, to tell that a reopened name is still it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    pub fn of(file: &File) -> io::Result<Identity> {
        let m = file.metadata()?;
        Ok(Identity {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// Create `path`, which must not exist (not even as a dangling link).
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Create `path` afresh: whatever has that name (a file of an earlier run,
/// a planted link) is unlinked first, then the name is created new. If
/// something takes the name again in between, this fails: it never writes
/// through what it finds.
pub fn create_replacing(path: &Path) -> io::Result<File> {
    match create_new(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            create_new(path)
        }
        other => other,
    }
}

/// Open `path` to append, creating it if missing. A link at `path` is
/// refused (`O_NOFOLLOW`), and so is a regular file with other hard links,
/// which could be a planted second name of someone else's file. Devices and
/// pipes (`/dev/null`) are taken as they are. Readable too, so the caller
/// can look at what the file ends with.
pub fn open_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| explain_link(path, e))?;
    let m = file.metadata()?;
    if m.is_file() && m.nlink() > 1 {
        return Err(io::Error::other(format!(
            "{} has {} hard links: refusing to append to a file that may belong to someone \
else; remove it or choose another name",
            path.display(),
            m.nlink()
        )));
    }
    Ok(file)
}

/// Open `path`, which this run created as `identity`, again to append. Fails
/// if the name is now a link or another file.
pub fn reopen_append(path: &Path, identity: Identity) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| explain_link(path, e))?;
    if Identity::of(&file)? != identity {
        return Err(io::Error::other(format!(
            "{} was replaced by another file while portmatrix wrote it",
            path.display()
        )));
    }
    Ok(file)
}

/// `O_NOFOLLOW` on a link fails with ELOOP, whose text ("too many levels of
/// symbolic links") does not say what happened.
fn explain_link(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        io::Error::other(format!(
            "{} is a symbolic link: portmatrix does not write through links; remove it or \
choose another name",
            path.display()
        ))
    } else {
        e
    }
}

/// A file written under a temporary name beside `target` and renamed over
/// it by [`AtomicFile::commit`], so `target` is replaced whole or not at all
/// (a full disk leaves the old one as it was). Dropped without a commit, the
/// temporary file is removed. A device or a pipe (`-o /dev/stdout`) is
/// written to as it is: it cannot be replaced, and must not be.
#[derive(Debug)]
pub struct AtomicFile {
    /// The temporary file, or `None` when writing to a device or pipe.
    temp: Option<PathBuf>,
    target: PathBuf,
    file: File,
    committed: bool,
}

impl AtomicFile {
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        let special = std::fs::symlink_metadata(target)
            .is_ok_and(|m| !m.is_file() && !m.is_symlink() && !m.is_dir());
        let (temp, file) = if special {
            let file = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(target)?;
            (None, file)
        } else {
            let (temp, file) = create_hidden(target, "tmp")?;
            (Some(temp), file)
        };
        Ok(AtomicFile {
            temp,
            target: target.to_path_buf(),
            file,
            committed: false,
        })
    }

    /// Make the written bytes durable and put them at `target`.
    pub fn commit(mut self) -> io::Result<()> {
        match &self.temp {
            Some(temp) => {
                self.file.sync_all()?;
                std::fs::rename(temp, &self.target)?;
            }
            None => self.file.flush()?,
        }
        self.committed = true;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let (false, Some(temp)) = (self.committed, &self.temp) {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// Create a new hidden file beside `target`, `.NAME.RANDOM.SUFFIX`, with a
/// name nobody can guess in advance (so nobody can plant it); a clash is
/// retried with another name.
pub fn create_hidden(target: &Path, suffix: &str) -> io::Result<(PathBuf, File)> {
    let name = target
        .file_name()
        .map_or_else(|| "portmatrix".into(), |n| n.to_string_lossy().into_owned());
    let mut last = None;
    for _ in 0..16 {
        let temp = target.with_file_name(format!(".{name}.{:016x}.{suffix}", random()));
        match create_new(&temp) {
            Ok(f) => return Ok((temp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// 64 unpredictable bits: std seeds every `RandomState` from the OS's
/// random source; the time and process id keep names apart across calls.
fn random() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("portmatrix-create-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    fn planted(d: &Path, name: &str) -> (PathBuf, PathBuf) {
        let target = d.join(format!("{name}.target"));
        std::fs::write(&target, b"precious").expect("target");
        let link = d.join(name);
        symlink(&target, &link).expect("link");
        (link, target)
    }

    #[test]
    fn no_way_of_opening_writes_through_a_planted_link() {
        let d = dir("links");
        let (link, target) = planted(&d, "a");
        assert!(create_new(&link).is_err());
        let err = open_append(&link).expect_err("a link is refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        // Replacing unlinks the link itself and creates a file in its place.
        let mut f = create_replacing(&link).expect("replaced");
        f.write_all(b"new").expect("write");
        assert_eq!(std::fs::read(&target).expect("read"), b"precious");
        assert!(!std::fs::symlink_metadata(&link).expect("meta").is_symlink());
        // An atomic file renamed over a link replaces the link.
        let (link, target) = planted(&d, "b");
        let mut a = AtomicFile::create(&link).expect("atomic");
        a.write_all(b"report").expect("write");
        a.commit().expect("commit");
        assert_eq!(std::fs::read(&target).expect("read"), b"precious");
        assert_eq!(std::fs::read(&link).expect("read"), b"report");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn appending_refuses_a_second_hard_link_and_a_replaced_file() {
        let d = dir("hard");
        let target = d.join("shadow");
        std::fs::write(&target, b"x").expect("target");
        std::fs::hard_link(&target, d.join("events.json")).expect("hard link");
        assert!(open_append(&d.join("events.json")).is_err());
        let path = d.join("evidence.pcapng");
        let id = Identity::of(&create_new(&path).expect("create")).expect("id");
        assert!(reopen_append(&path, id).is_ok());
        // Moved away (so its inode number is not reused) and replaced.
        std::fs::rename(&path, d.join("moved")).expect("mv");
        std::fs::write(&path, b"other").expect("other");
        assert!(reopen_append(&path, id).is_err());
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn an_atomic_file_dropped_unfinished_leaves_the_old_one_and_no_temp() {
        let d = dir("atomic");
        let target = d.join("report.html");
        std::fs::write(&target, b"old").expect("old");
        let mut a = AtomicFile::create(&target).expect("atomic");
        a.write_all(b"half").expect("write");
        drop(a);
        assert_eq!(std::fs::read(&target).expect("read"), b"old");
        assert_eq!(std::fs::read_dir(&d).expect("ls").count(), 1);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_device_is_written_to_not_replaced() {
        let mut a = AtomicFile::create(Path::new("/dev/null")).expect("open /dev/null");
        a.write_all(b"discarded").expect("write");
        a.commit().expect("commit");
        let m = std::fs::symlink_metadata("/dev/null").expect("meta");
        assert!(!m.is_file(), "/dev/null must stay a device");
        // A full device fails: the caller reports it.
        let mut a = AtomicFile::create(Path::new("/dev/full")).expect("open /dev/full");
        assert!(a.write_all(b"x").and_then(|()| a.flush()).is_err());
        assert!(!std::fs::symlink_metadata("/dev/full")
            .expect("meta")
            .is_file());
    }
}
