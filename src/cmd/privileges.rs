//! `live --user USER`: once the capture is open, give up root for good.
//!
//! Switching the uid is not enough on its own: a process that keeps
//! capabilities in its bounding set, or may gain privileges through `execve`
//! (a setuid binary, a file with capabilities), can become powerful again.
//! So, while still root, the bounding and ambient sets are emptied; then the
//! groups, the gid and the uid change; then `PR_SET_NO_NEW_PRIVS` is set.
//! Each step is checked afterwards, and any failure stops the run: going on
//! as root when the user asked otherwise is worse than not running.
//!
//! These are per-thread settings that new threads inherit, so the drop must
//! happen before the pipeline starts its threads; it refuses otherwise.

use std::path::Path;

use anyhow::{bail, Context, Result};
use caps::CapSet;
use nix::sys::prctl;
use nix::unistd::{access, geteuid, setgid, setgroups, setuid, AccessFlags, Uid, User};

/// Become `name` (its uid, its primary group, no other groups, no
/// capabilities, no way back) for the rest of the process.
pub fn drop_to(name: &str) -> Result<()> {
    if !geteuid().is_root() {
        bail!("--user {name} needs portmatrix to be started as root");
    }
    let user = User::from_name(name)
        .with_context(|| format!("cannot look up the user `{name}`"))?
        .with_context(|| format!("--user: there is no user `{name}`"))?;
    if user.uid.is_root() {
        bail!("--user {name}: that user is root (uid 0); name an unprivileged user, e.g. --user nobody");
    }
    let threads = std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count());
    if threads != 1 {
        bail!("cannot drop privileges: {threads} threads are already running and would keep them");
    }
    // Needs CAP_SETPCAP, so before the uid changes.
    caps::clear(None, CapSet::Bounding)
        .map_err(|e| anyhow::anyhow!("cannot empty the capability bounding set: {e}"))?;
    caps::clear(None, CapSet::Ambient)
        .map_err(|e| anyhow::anyhow!("cannot empty the ambient capabilities: {e}"))?;
    setgroups(&[user.gid]).context("cannot drop the supplementary groups")?;
    setgid(user.gid).with_context(|| format!("cannot switch to the group of `{name}`"))?;
    setuid(user.uid).with_context(|| format!("cannot switch to the user `{name}`"))?;
    prctl::set_no_new_privs().context("cannot set PR_SET_NO_NEW_PRIVS")?;

    // If anything could be regained, the drop did not happen: refuse to go on.
    if setuid(Uid::from_raw(0)).is_ok() {
        bail!("still able to regain root after switching to `{name}`; refusing to go on");
    }
    for set in [
        CapSet::Permitted,
        CapSet::Effective,
        CapSet::Bounding,
        CapSet::Ambient,
    ] {
        let left = caps::read(None, set)
            .map_err(|e| anyhow::anyhow!("cannot read the capabilities left: {e}"))?;
        if !left.is_empty() {
            bail!("capabilities {left:?} are left in the {set:?} set after switching to `{name}`; refusing to go on");
        }
    }
    if !prctl::get_no_new_privs().unwrap_or(false) {
        bail!("PR_SET_NO_NEW_PRIVS did not hold; refusing to go on");
    }
    Ok(())
}

/// After the drop, whether SIGHUP will be able to reopen `path` (the `-o`
/// file) as `name`: the reopen creates the file anew once logrotate moved it
/// away, which needs a folder `name` may write to, unless logrotate creates
/// the new file for it. `None` when it can; else the warning to print.
pub fn reopen_warning(path: &Path, name: &str) -> Option<String> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let writable = access(folder, AccessFlags::W_OK | AccessFlags::X_OK).is_ok();
    if writable {
        return None;
    }
    Some(format!(
        "running as `{name}`, which may not create files in {folder}: on SIGHUP, {file} can \
         be reopened only if it exists and `{name}` may write it (logrotate: `create 0640 \
         {name} GROUP`); or give the folder to that user (`chown {name} {folder}`)",
        folder = folder.display(),
        file = path.display(),
    ))
}
